"""The per-loop state of a layer, and the one ``loop.close`` hook per event loop.

A :class:`~chanlayer.core.ChannelLayer` keeps one :class:`LoopState` (a connection and at most
one session) per event loop it is used on, as channels_redis keeps one set of pools per loop.
When a loop closes, the states of every layer used on it must be closed first, while the loop
can still run their coroutines. This module patches ``loop.close`` **once per loop**, whatever
the number of layers, and the patched method puts the original back when it runs: a loop
closes through one extra frame, never a chain of them.

The hook holds the loop states, not the layers: a layer is referenced weakly
(:attr:`LoopState.layer`), so a layer dropped by the application is garbage-collected while
its loop lives on. :func:`track_layer` arranges for the loop states of a collected layer to be
closed (their session released) on their loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import types
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chanlayer._native import NativeSession
    from chanlayer._session import Session
    from chanlayer._transport import Transport

logger = logging.getLogger("chanlayer")


class LoopState:
    """The connection and session of one layer on one event loop.

    Attributes:
        transport: The loop's connection to the server.
        loop: The event loop.
        layer: A weak reference to the layer that owns this state.
        session: The loop's session stream, once it has one.
        unary_ops: Unary sends and group operations made while the loop had no session.
        alive: False once the state was closed or its loop forgotten.
    """

    def __init__(
        self, transport: Transport, loop: asyncio.AbstractEventLoop, layer: weakref.ref[Any]
    ) -> None:
        self.transport = transport
        self.loop = loop
        self.layer = layer
        self.session: Session | NativeSession | None = None
        self.unary_ops = 0
        self.alive = True

    async def aclose(
        self,
        *,
        release: bool,
        before_transport: Callable[[LoopState], Any] | None = None,
    ) -> None:
        """Close the session, then the connection.

        Args:
            release: Release the session (the server drops its specific channels at once)
                rather than detach it (resumable within the lease grace period).
            before_transport: A coroutine function run between the two, while the
                connection is still open (the layer hands messages back with it).
        """
        try:
            if self.session is not None:
                await self.session.close(release=release)
            if before_transport is not None:
                try:
                    await before_transport(self)
                except Exception:
                    logger.exception("chanlayer: closing a loop's connection")
        finally:
            # Even when cancelled (a loop shutting down cancels every task): a grpc.aio
            # channel left open on a closed loop breaks the channels of later loops.
            await self.transport.close()


class ThreadState(threading.local):
    """The loop state a layer last used on this thread (saves ``get_running_loop()``)."""

    state: LoopState | None = None


class _LoopHook:
    """The states to close before one loop closes, and the ``close`` the hook replaced."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.states: dict[LoopState, None] = {}
        self.original_close = loop.close


#: The hooked loops. A loop is forgotten when it closes (or is collected unclosed).
_hooks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopHook] = (
    weakref.WeakKeyDictionary()
)
_hooks_lock = threading.Lock()
#: Close tasks of collected layers' states, kept until they finish.
_closing: set[asyncio.Task[None]] = set()


def register(state: LoopState) -> None:
    """Close ``state`` before its loop closes (patching ``loop.close`` if not done yet)."""
    loop = state.loop
    with _hooks_lock:
        hook = _hooks.get(loop)
        if hook is None:
            hook = _hooks[loop] = _LoopHook(loop)
            loop.close = types.MethodType(_close_loop, loop)  # type: ignore[method-assign]
        hook.states[state] = None


def unregister(state: LoopState) -> None:
    """Forget ``state`` (the layer closed it itself)."""
    with _hooks_lock:
        hook = _hooks.get(state.loop)
        if hook is not None:
            hook.states.pop(state, None)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """The patched ``loop.close``: close every registered state, then the loop.

    Sessions are detached, not released: the layers live on, and another loop may resume
    them (``async_to_sync`` makes a new loop per call).
    """
    with _hooks_lock:
        hook = _hooks.pop(loop, None)
    if hook is None:  # closed already through the hook
        type(loop).close(loop)
        return
    # Put the replaced close back first: whatever happens next, the hook runs once.
    if getattr(hook.original_close, "__func__", None) is type(loop).close:
        with contextlib.suppress(AttributeError):
            del loop.close
    else:
        loop.close = hook.original_close  # type: ignore[method-assign]
    states = list(hook.states)
    for state in states:
        layer = state.layer()
        if layer is not None:
            layer._forget_loop(loop)
        state.alive = False
    if states and not loop.is_closed() and not loop.is_running():
        with contextlib.suppress(Exception):
            loop.run_until_complete(_close_states(states))
    hook.original_close()


async def _close_states(states: list[LoopState]) -> None:
    await asyncio.gather(*(s.aclose(release=False) for s in states), return_exceptions=True)


def track_layer(layer: Any, states: dict[asyncio.AbstractEventLoop, LoopState]) -> None:
    """When ``layer`` is garbage-collected, close its ``states`` on their loops.

    Their sessions are released: nothing can receive on a collected layer's channels. A state
    whose loop is not running stays registered and is closed with its loop.
    """
    finalizer = weakref.finalize(layer, _layer_collected, states)
    finalizer.atexit = False


def _layer_collected(states: dict[asyncio.AbstractEventLoop, LoopState]) -> None:
    for loop, state in list(states.items()):
        if not state.alive or loop.is_closed() or not loop.is_running():
            continue
        states.pop(loop, None)
        unregister(state)
        state.alive = False
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(_spawn_close, state)


def _spawn_close(state: LoopState) -> None:
    task = state.loop.create_task(state.aclose(release=True), name="chanlayer-close")
    _closing.add(task)
    task.add_done_callback(_closing.discard)
