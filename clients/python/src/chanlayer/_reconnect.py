"""``ReconnectingSession``: the reconnection loop both transports' session types share.

A session (:class:`chanlayer._session.Session` on grpc.aio, :class:`chanlayer._native.NativeSession`
on the extension) serves one stream at a time; when it ends, this loop serves the next one
with jittered exponential back-off, fails what waits once the server has been unreachable for
``connect_timeout``, and stops for good on a refusal that reconnecting cannot cure. Closing
waits for sends that returned early (``drain``) and, when asked, releases the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from chanlayer._state import LayerState
from chanlayer._status import StatusCode
from chanlayer._timeout import wait_for
from chanlayer._transport import RemoteError
from chanlayer.exceptions import ServerUnavailable, error_from_reason

logger = logging.getLogger("chanlayer")

_INITIAL_BACKOFF = 0.05
_MAX_BACKOFF = 2.0
CLOSE_WAIT = 2.0

#: Status codes after which reconnecting cannot help.
_PERMANENT_CODES = {
    StatusCode.INVALID_ARGUMENT,
    StatusCode.UNAUTHENTICATED,
    StatusCode.PERMISSION_DENIED,
    StatusCode.ALREADY_EXISTS,
    StatusCode.UNIMPLEMENTED,
    StatusCode.FAILED_PRECONDITION,
}


class ReconnectingSession:
    """The reconnection loop both transports' sessions share.

    The stream is served again after it ends, with jittered exponential back-off, until the
    session is closed, refused for good, or the server has been unreachable for the layer's
    ``connect_timeout`` (then what waits fails with ``ServerUnavailable``, and the loop
    keeps trying for later calls). What the sessions of one layer share (settings, resume
    token, spare sessions, memberships, buffers) is the :class:`LayerState` they are given.

    Subclasses provide ``_serve_once`` (one stream, from open to end), ``_teardown_stream``,
    ``_fail_waiters`` and ``_finish``.
    """

    _task: asyncio.Task[None]

    def __init__(
        self, state: LayerState, loop: asyncio.AbstractEventLoop, *, primary: bool
    ) -> None:
        self._state = state
        self._loop = loop
        #: True when this session holds the layer's client prefix (its specific channels).
        self.primary = primary
        self.client_prefix = ""
        #: The resume token of a session that does not hold the layer's prefix.
        self._own_token = ""
        if not primary:
            spare = state.take_spare_session()
            if spare is not None:
                self.client_prefix, self._own_token = spare
        self.max_message_bytes: int | None = None
        #: True when the last stream resumed an earlier stream's session.
        self.resumed = False
        #: True when the current stream proposed a resume token (an earlier session existed).
        self._had_session = False
        self._connected = False
        self._closing = False
        self._closed = asyncio.Event()
        self._failure: BaseException | None = None
        self._down_since = time.monotonic()

    @property
    def usable(self) -> bool:
        """False once the session has been closed or failed for good."""
        return not self._closing and self._failure is None and not self._task.done()

    @property
    def connected(self) -> bool:
        """True while a stream is open."""
        return self._connected

    async def close(self, *, release: bool) -> None:
        """End the session.

        Args:
            release: Send ``close`` so the server releases the session's specific channels
                and memberships at once; otherwise just end the stream (the session stays
                resumable within the lease grace period).
        """
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        if self._connected:
            await self.drain(CLOSE_WAIT)
        if release and self._connected:
            with contextlib.suppress(Exception):
                if await self._send_close():
                    await wait_for(self._closed.wait(), CLOSE_WAIT)
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
        self._finish(ServerUnavailable("the channel layer session was closed"))
        if not release and not self.primary and self._own_token:
            self._state.keep_spare_session(self.client_prefix, self._own_token)

    async def _send_close(self) -> bool:
        """Write the ``close`` operation; False when there is no stream to write it on."""
        raise NotImplementedError

    async def drain(self, timeout: float) -> None:
        """Wait, at most ``timeout`` seconds, until sends that returned early have a result."""

    async def _serve_once(self) -> None:
        raise NotImplementedError

    def _teardown_stream(self) -> None:
        raise NotImplementedError

    def _fail_waiters(self, exc: BaseException) -> None:
        raise NotImplementedError

    def _finish(self, exc: BaseException) -> None:
        raise NotImplementedError

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closing:
            raise ServerUnavailable("the channel layer session was closed")

    async def _run(self) -> None:
        backoff = _INITIAL_BACKOFF
        while not self._closing:
            try:
                await self._serve_once()
                backoff = _INITIAL_BACKOFF
            except RemoteError as err:
                if err.code in _PERMANENT_CODES:
                    exc = error_from_reason(err.code, err.reason, err.message)
                    logger.error("chanlayer session refused: %s", err)
                    self._finish(exc)
                    return
                logger.warning("chanlayer session stream failed: %s", err)
            except ServerUnavailable as err:
                logger.warning("%s", err)
            except asyncio.CancelledError:
                if not self._closing:
                    # The loop is shutting down (asyncio.run cancels every task): let sends
                    # that already returned reach the server before the stream goes.
                    with contextlib.suppress(BaseException):
                        await self.drain(CLOSE_WAIT)
                raise
            except Exception:
                logger.exception("chanlayer session stream failed")
            finally:
                self._teardown_stream()
            if self._closing:
                break
            if time.monotonic() - self._down_since >= self._state.connect_timeout:
                self._fail_waiters(
                    ServerUnavailable(
                        f"the chanlayer server at {self._state.target} is unreachable "
                        f"(no session within {self._state.connect_timeout:g} s)"
                    )
                )
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, _MAX_BACKOFF)
