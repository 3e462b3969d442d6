"""The native transport: the session stream in Rust (the ``chanlayer_native`` extension).

Importing this module raises ``ImportError`` when the extension is not installed (the layer then
uses the grpc.aio transport: :mod:`chanlayer._transport`, :mod:`chanlayer._session`), and
:class:`~chanlayer._native_version.NativeVersionMismatch` when it is not the layer's version (the
layer refuses to start). This module uses neither ``grpc`` nor :mod:`chanlayer.core`: the layer
builds a :class:`NativeSession` on a :class:`NativeTransport` and hands it the
:class:`~chanlayer._state.LayerState` it shares.

:class:`NativeTransport` is the connection of one event loop. For a plaintext target the
extension speaks HTTP/2 on the loop's own thread: it registers its socket with the loop and
reads and writes when the socket is ready, so a round trip costs one write, one wakeup and one
read. With TLS, its tonic channel, unary calls and session streams run on a tokio thread of the
extension; what completes there is queued, and the loop is woken through a socket it watches
(``loop.add_reader``). Either way one wakeup of the loop resolves every future completed since
the previous one. ``CHANLAYER_NATIVE_IO=threaded`` puts plaintext targets on the tokio thread
too.

:class:`NativeSession` is the native twin of :class:`chanlayer._session.Session`, with the same
rules (see that module): batching per loop iteration, receives multiplexed on the stream with
local buffers and standing demand, reconnection with resume tokens, memberships restored after
a server restart. The per-message work (acknowledgements, deliveries, waiters, buffers) is done
by the extension's ``Engine``; this class drives the stream's life: connecting, opening,
reconnecting with backoff, failing callers after ``connect_timeout``, closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import time
import urllib.parse
from typing import Any

import chanlayer_native as _ext
from google.protobuf.message import Message

from chanlayer._native_version import check_native_version
from chanlayer._proto.v1 import channel_layer_pb2 as pb
from chanlayer._session import ReconnectingSession
from chanlayer._state import LayerState
from chanlayer._status import StatusCode
from chanlayer._timeout import wait_for
from chanlayer._transport import RemoteError, TransportConfig, unix_socket_path
from chanlayer.exceptions import ChannelFull, ServerUnavailable, error_from_reason

logger = logging.getLogger("chanlayer")

check_native_version(_ext)

__all__ = ["NativeSession", "NativeTransport", "native_uri"]

_RESUMED_ELSEWHERE = pb.SESSION_CLOSE_REASON_RESUMED_ELSEWHERE


def native_uri(config: TransportConfig) -> str | None:
    """The URI the extension connects to, or None for targets it cannot reach.

    ``host:port``, ``dns:///host:port`` and ``unix:path`` (a Unix domain socket, without TLS)
    are supported; other gRPC target schemes (``unix-abstract:``, ``ipv4:``...) are left to
    grpc.aio, as is TLS without a CA bundle to trust (when the system's cannot be found).
    """
    target = config.target
    path = unix_socket_path(target)
    if path is not None:
        return None if config.tls else f"unix:{path}"
    if target.startswith("dns:///"):
        target = target[len("dns:///") :]
    elif ":/" in target or target.startswith(
        ("unix:", "unix-abstract:", "ipv4:", "ipv6:", "dns:", "vsock:")
    ):
        return None
    if config.tls and config.tls_ca is None and _system_roots() is None:
        return None
    return f"{'https' if config.tls else 'http'}://{target}"


def _system_roots() -> bytes | None:
    """The PEM bundle of the system's trusted roots, as OpenSSL finds it."""
    paths = ssl.get_default_verify_paths()
    for path in (paths.cafile, paths.openssl_cafile):
        if path and os.path.isfile(path):
            with open(path, "rb") as fh:
                return fh.read()
    return None


def _make_error(code: int, reason: str, message: str, channel: str | None) -> Exception:
    exc = error_from_reason(code, reason, message, channel=channel)
    if isinstance(exc, ChannelFull) and message and hasattr(exc, "add_note"):
        # ChannelFull carries only the channel, as Channels' layers raise it; the server's
        # explanation (or the send window's, for a refusal that came late) goes in a note.
        exc.add_note(message)
    return exc


class NativeTransport:
    """:class:`~chanlayer._transport.Transport` over the extension, for the running loop."""

    def __init__(self, config: TransportConfig) -> None:
        uri = native_uri(config)
        if uri is None:
            raise ValueError(
                f"the native transport cannot reach {config.target!r}"
                + (" (no CA bundle to verify the server with)" if config.tls else "")
            )
        self._config = config
        self._loop = asyncio.get_running_loop()
        ca = config.tls_ca
        if config.tls and ca is None:
            ca = _system_roots()
        self.connection = _ext.Connection(
            self._loop,
            uri,
            config.token,
            ca,
            config.tls_cert,
            config.tls_key,
            config.tls_server_name,
            threaded=os.environ.get("CHANLAYER_NATIVE_IO") == "threaded",
        )
        #: The socket's path, for a ``unix:`` target.
        self._unix_path = uri[len("unix:") :] if uri.startswith("unix:") else None
        parts = urllib.parse.urlsplit(uri)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 443
        self._fd = self.connection.fileno()
        if not self.connection.direct:
            self._loop.add_reader(self._fd, self.connection.drain)
        self._closed = False

    async def wait_ready(self, timeout: float) -> None:
        connection = self.connection
        if connection.ready:
            return
        if connection.direct:
            ok = await self._connect(timeout)
        else:
            ok = await connection.wait_ready(timeout)
        if not ok:
            raise ServerUnavailable(
                f"the chanlayer server at {self._config.target} is unreachable "
                f"(no connection within {timeout:g} s)",
                code=StatusCode.UNAVAILABLE.value,
            )

    async def _connect(self, timeout: float) -> bool:
        """Connect the direct back end, retrying with backoff until ``timeout``."""
        loop = self._loop
        deadline = loop.time() + timeout
        backoff = 0.1
        while True:
            if self._unix_path is not None:
                # No name to resolve: one non-blocking connect to the socket's path. A Unix
                # socket connects within the call, so this yields to the loop once first, as
                # the TCP path does while it resolves the host: without it, a loop that
                # asyncio.run closes right after a receive left the session task waiting
                # forever on its stream's end (tests/test_loops.py over a Unix socket).
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.sleep(0)
                    connected = self.connection.connect_unix(self._unix_path)
                    if await wait_for(connected, max(deadline - loop.time(), 0.001)):
                        return True
            else:
                with contextlib.suppress(OSError, asyncio.TimeoutError):
                    infos = await wait_for(
                        loop.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM),
                        max(deadline - loop.time(), 0.001),
                    )
                    for *_, sockaddr in infos:
                        left = deadline - loop.time()
                        if left <= 0:
                            break
                        address = str(sockaddr[0]).split("%", 1)[0]
                        connected = self.connection.connect(address, int(sockaddr[1]))
                        if await wait_for(connected, left):
                            return True
            left = deadline - loop.time()
            if left <= 0:
                return False
            await asyncio.sleep(min(backoff, left))
            backoff = min(backoff * 2, 1.0)

    async def unary(self, method: str, request: Message, timeout: float) -> Any:
        result = await self.connection.unary(method, request.SerializeToString(), timeout)
        if result.__class__ is tuple:
            raise RemoteError(*result)
        return getattr(pb, f"{method}Response").FromString(result)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.connection.direct and not self._loop.is_closed():
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._fd)
        self.connection.close()


class NativeSession(ReconnectingSession):
    """The session stream of one event loop, on the native transport (see the module docs)."""

    def __init__(
        self,
        state: LayerState,
        loop: asyncio.AbstractEventLoop,
        transport: NativeTransport,
        *,
        primary: bool,
    ) -> None:
        super().__init__(state, loop, primary=primary)
        self._transport = transport
        rules = [
            (
                rule.glob if rule.HasField("glob") else None,
                rule.regex if rule.HasField("regex") else None,
                rule.capacity,
            )
            for rule in state.capacity_rules
        ]
        self._engine = _ext.Engine(
            transport.connection, state.prefetch, rules, _make_error, state.normal_prefetch
        )
        self._task = loop.create_task(self._run(), name="chanlayer-session")

    # ------------------------------------------------------------------ public API

    def send(self, channel: str, payload: bytes, capacity: int, expiry_ms: int) -> Any:
        """Queue a send; the awaitable raises the mapped server error."""
        if self._failure is not None or self._closing:
            self._raise_if_failed()
        return self._engine.send(channel, payload, capacity, expiry_ms)

    def group_add(self, group: str, channel: str, expiry_s: int) -> Any:
        """Queue a group_add; returns an awaitable."""
        if self._failure is not None or self._closing:
            self._raise_if_failed()
        return self._engine.group_add(group, channel, expiry_s)

    def group_discard(self, group: str, channel: str) -> Any:
        """Queue a group_discard; returns an awaitable."""
        if self._failure is not None or self._closing:
            self._raise_if_failed()
        return self._engine.group_discard(group, channel)

    def group_send(self, group: str, payload: bytes, capacity: int, expiry_ms: int) -> Any:
        """Queue a group_send; the awaitable gives ``(delivered, dropped)``."""
        if self._failure is not None or self._closing:
            self._raise_if_failed()
        return self._engine.group_send(group, payload, capacity, expiry_ms)

    def start_receive(self, channel: str) -> Any:
        """The next message of ``channel`` when one is at hand, else a future of it.

        ``ChannelLayer.receive`` awaits the future itself (one coroutine less per message)
        and calls :meth:`abandon_receive` if it stops waiting.
        """
        if self._state.buffers:
            payload = self._state.pop_buffered(channel)
            if payload is not None:
                return payload
        if self._failure is not None or self._closing:
            self._raise_if_failed()
        return self._engine.receive(channel)

    def abandon_receive(self, channel: str, waiter: Any, cancelled: bool) -> None:
        """Withdraw the future of a receive whose caller stopped waiting.

        ``cancelled``: the reader went away (a consumer exits this way), so the channel's
        standing demand ends too. A message already handed to the future is kept.
        """
        self._engine.abandon(channel, waiter, cancelled)

    async def receive(self, channel: str) -> bytes:
        """Return the next message of ``channel``, from a buffer or the server."""
        waiter = self.start_receive(channel)
        if isinstance(waiter, bytes):
            return waiter
        try:
            return await waiter  # type: ignore[no-any-return]
        except BaseException as exc:
            self.abandon_receive(channel, waiter, isinstance(exc, asyncio.CancelledError))
            raise

    def clear_buffers(self) -> None:
        """Drop the messages fetched ahead (flush)."""
        self._engine.clear_buffers()

    async def close(self, *, release: bool) -> None:
        """End the session (see :meth:`ReconnectingSession.close`) and free its engine."""
        await super().close(release=release)
        self._engine.close()
        self._log_window_lost()

    async def _send_close(self) -> bool:
        return bool(self._engine.write_close())

    async def drain(self, timeout: float) -> None:
        """Wait, at most ``timeout`` seconds, until the send window is empty.

        The window holds the sends that returned before their result came.
        """
        drained = self._engine.drain()
        if drained is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await wait_for(asyncio.shield(drained), timeout)
        self._log_window_lost()

    def _log_window_lost(self) -> None:
        lost, unsent = self._engine.take_window_lost()
        if lost:
            logger.warning(
                "chanlayer: the connection was lost before the server acknowledged %d "
                "message(s) whose send() had already returned; they may or may not have "
                "been delivered",
                lost,
            )
        if unsent:
            logger.warning(
                "chanlayer: %d message(s) whose send() had already returned were dropped "
                "before they could be written (the session closed or failed)",
                unsent,
            )

    # ------------------------------------------------------------------ the stream

    async def _serve_once(self) -> None:
        remaining = self._state.connect_timeout - (time.monotonic() - self._down_since)
        await self._transport.wait_ready(max(remaining, 0.5))
        if self.primary:
            prefix, resume_token = self._state.client_prefix, self._state.resume_token
        else:
            prefix, resume_token = self.client_prefix, self._own_token
        self._had_session = bool(resume_token)
        opened, ended = self._engine.start(
            self._state.prefix, prefix, resume_token, self._state.client_name
        )
        answer = await opened
        if answer[0] != "opened":
            raise RemoteError(*answer)
        self._on_opened(*answer[1:])
        failure = await ended
        reason = self._engine.take_closing()
        if reason is not None:
            if reason == _RESUMED_ELSEWHERE:
                # Another loop of this layer took the client prefix over.
                self.primary = False
            name = pb.SessionCloseReason.Name(pb.SessionCloseReason.ValueType(reason))
            logger.info("chanlayer session closing: %s", name)
        if failure is not None:
            raise RemoteError(*failure)

    def _on_opened(
        self, client_prefix: str, resume_token: str, resumed: bool, max_message_bytes: int
    ) -> None:
        self.client_prefix = client_prefix
        self.resumed = resumed
        self.max_message_bytes = max_message_bytes or None
        if self.primary:
            self._state.resume_token = resume_token
        else:
            self._own_token = resume_token
            if client_prefix != self._state.client_prefix:
                logger.warning(
                    "chanlayer server chose prefix %r instead of %r",
                    client_prefix,
                    self._state.client_prefix,
                )
        if max_message_bytes:
            self._state.max_message_bytes = max_message_bytes
        self._connected = True
        replay: list[tuple[str, str, int]] = []
        if self.primary and ((self._had_session and not resumed) or self._engine.replay_incomplete):
            # The server lost the session (a restart, or the lease ran out): its memberships
            # went with it. Restore them before anything else, so no group message is missed.
            replay = self._state.memberships_to_restore()
            if replay:
                logger.info("chanlayer: restoring %d group memberships", len(replay))
        for future in self._engine.activate(replay):
            future.add_done_callback(_log_restore)

    def _teardown_stream(self) -> None:
        """Forget the stream's server-side state after it ended."""
        was_connected = self._connected
        self._connected = False
        if was_connected:
            self._down_since = time.monotonic()
        self._engine.teardown(
            ServerUnavailable(
                "the connection to the chanlayer server was lost before the operation was "
                "acknowledged; it may or may not have been applied"
            )
        )
        self._log_window_lost()
        if self._closing:
            self._closed.set()

    def _fail_waiters(self, exc: BaseException) -> None:
        self._engine.fail_all(exc)

    def _finish(self, exc: BaseException) -> None:
        """Fail everything for good: the session is unusable from now on."""
        if self._failure is None:
            self._failure = exc
        self._engine.fail_all(exc)
        self._log_window_lost()
        # Messages fetched ahead stay with the layer state, for the next session of a loop.
        now = time.monotonic()
        for channel, messages in self._engine.take_buffers():
            self._state.keep_buffered(channel, [(now + left, data) for left, data in messages])
        self._closed.set()


def _log_restore(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.warning("chanlayer: restoring a membership failed: %s", future.exception())
