"""Run a grpc.aio read or write that the end of ``asyncio.run`` does not cut short.

grpc.aio cancels a whole call when the task awaiting one of its reads or writes is cancelled
(``grpc/aio/_call.py``: ``_read`` and ``_write`` call ``self.cancel()`` on
``CancelledError``), and ``asyncio.run`` cancels every task of its loop once the main
coroutine returns. A session stream was then cut in the middle of writing the frame of the
sends that had just returned, and the frame was lost now and then, with the results that
would have told.

:func:`detach` steps a coroutine on the running loop as a task would (each step when the
future it waits on is done), but as a plain chain of callbacks that ``asyncio.all_tasks``
does not list, so ``asyncio.run`` does not cancel it. The caller awaits the returned future
through ``asyncio.shield``: cancelling the caller leaves the read or write running, and the
stream's own end (``cancel()``, the channel's close) still ends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def detach(coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """Start ``coro`` on the running loop outside the task registry; return its result's future."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    future.add_done_callback(_retrieve)
    _Stepper(coro, future, loop).step(None, None)
    return future


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark the outcome as seen: a caller that stopped waiting leaves it unread."""
    if not future.cancelled():
        future.exception()


class _Stepper:
    __slots__ = ("_coro", "_future", "_loop")

    def __init__(
        self,
        coro: Coroutine[Any, Any, Any],
        future: asyncio.Future[Any],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._coro = coro
        self._future = future
        self._loop = loop

    def step(self, value: Any, exc: BaseException | None) -> None:
        try:
            yielded = self._coro.send(value) if exc is None else self._coro.throw(exc)
        except StopIteration as stop:
            if not self._future.done():
                self._future.set_result(stop.value)
            return
        except asyncio.CancelledError:
            self._future.cancel()
            return
        except BaseException as err:  # the coroutine's failure is its future's
            if not self._future.done():
                self._future.set_exception(err)
            return
        if yielded is None:  # a bare yield: step again on the next iteration
            self._loop.call_soon(self.step, None, None)
        elif getattr(yielded, "_asyncio_future_blocking", False):
            yielded._asyncio_future_blocking = False
            yielded.add_done_callback(self._wake)
        else:
            error = RuntimeError(f"a detached coroutine yielded {yielded!r}, not a future")
            self._loop.call_soon(self.step, None, error)

    def _wake(self, awaited: asyncio.Future[Any]) -> None:
        try:
            value = awaited.result()
        except BaseException as err:  # thrown into the coroutine, as a task does
            self.step(None, err)
        else:
            self.step(value, None)
