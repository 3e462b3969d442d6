"""The transport contract, and its grpc.aio implementation: the only module that talks to gRPC.

The layer's logic (:mod:`chanlayer.core`, :mod:`chanlayer._session`) sees the narrow
:class:`Transport` and :class:`SessionStream` protocols, :class:`RemoteError` and the generated
message types, never ``grpc`` itself; status codes are compared as
:class:`~chanlayer._status.StatusCode`. The native transport (:mod:`chanlayer._native`, over the
``chanlayer_native`` extension) implements the same :class:`Transport` protocol. Which session
type runs on a transport is the layer's choice (:mod:`chanlayer.core`), not the transport's.

One transport serves one event loop: ``grpc.aio`` channels are bound to the loop that made them.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from chanlayer._detached import detach
from chanlayer._proto.v1 import channel_layer_pb2 as pb
from chanlayer._proto.v1 import channel_layer_pb2_grpc as pb_grpc
from chanlayer._timeout import wait_for
from chanlayer.exceptions import ERROR_DOMAIN, ServerUnavailable

ResponseT = TypeVar("ResponseT", bound=Message)

_STATUS_DETAILS_KEY = "grpc-status-details-bin"
#: Seconds a closing transport waits for each of its cancelled streams to end.
_STREAM_END_WAIT = 1.0


class RemoteError(Exception):
    """A call or stream ended with a non-OK status.

    Attributes:
        code: The canonical status code number.
        reason: The ``ErrorInfo`` reason of domain ``chanlayer.dev``, or "".
        message: The status message.
    """

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{reason or code}: {message}")
        self.code = code
        self.reason = reason
        self.message = message


class SessionStream(Protocol):
    """One ``Session`` stream: frames of operations out, frames of events in."""

    async def write(self, request: pb.SessionRequest) -> None:
        """Send one frame. Raises :class:`RemoteError` when the stream has failed."""

    async def read(self) -> pb.SessionResponse | None:
        """Return the next frame, or None at the end of the stream.

        Raises:
            RemoteError: the stream ended with an error status.
        """

    def cancel(self) -> None:
        """End the stream now (idempotent)."""

    def ended(self) -> bool:
        """True once the stream has ended: no more frames come on it."""


class Transport(Protocol):
    """What the layer needs from a connection to the server."""

    async def wait_ready(self, timeout: float) -> None:
        """Wait until the server is reachable.

        Raises:
            ServerUnavailable: not reachable within ``timeout`` seconds.
        """

    async def unary(self, method: str, request: Message, timeout: float) -> Any:
        """Call the unary RPC ``method`` (for example ``"Send"``) and return its response.

        Raises:
            RemoteError: the call failed.
        """

    async def close(self) -> None:
        """Close the connection and end every call on it."""


class StreamTransport(Transport, Protocol):
    """A transport whose session streams are driven by :class:`chanlayer._session.Session`."""

    def open_session(self) -> SessionStream:
        """Start a ``Session`` stream (call :meth:`wait_ready` first)."""


@dataclass(frozen=True)
class TransportConfig:
    """Connection settings shared by every loop's transport."""

    target: str
    token: str | None = None
    tls: bool = False
    tls_ca: bytes | None = None
    tls_cert: bytes | None = None
    tls_key: bytes | None = None
    tls_server_name: str | None = None


def unix_socket_path(target: str) -> str | None:
    """The path of a ``unix:`` target (gRPC's naming: ``unix:path``, ``unix:///abs/path``).

    None for any other target. Raises ValueError for ``unix:`` with no path, or with an
    authority (``unix://host/path``), which gRPC's naming does not allow.
    """
    if not target.startswith("unix:"):
        return None
    path = target[len("unix:") :]
    if path.startswith("//"):
        path = path[2:]
        if not path.startswith("/"):
            raise ValueError(
                f"{target!r}: a Unix socket target is unix:/absolute/path, "
                "unix:///absolute/path or unix:relative/path"
            )
    if not path:
        raise ValueError(f"{target!r} names no socket path (unix:/run/chanlayer/chanlayer.sock)")
    return path


def _channel_options(config: TransportConfig) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", -1),
        ("grpc.max_receive_message_length", -1),
        # Reconnect quickly after a server restart: the layer adds its own backoff on top.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.enable_retries", 0),
    ]
    if config.tls_server_name:
        options.append(("grpc.ssl_target_name_override", config.tls_server_name))
    if unix_socket_path(config.target) is not None:
        # grpcio names a unix: target's calls with the socket's path, percent-encoded, as
        # their :authority, which the server's HTTP/2 refuses as malformed (RST_STREAM
        # PROTOCOL_ERROR); grpc-go and grpc-js say "localhost", and so does this.
        options.append(("grpc.default_authority", "localhost"))
    return options


def _status_error(err: grpc.aio.AioRpcError) -> RemoteError:
    """Turn a failed call into a :class:`RemoteError`, reading ``google.rpc.ErrorInfo``."""
    code = err.code().value[0]
    reason = ""
    for key, value in err.trailing_metadata() or ():
        if key != _STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except Exception:  # a malformed trailer must not hide the status itself
            break
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if (
                detail.Is(info.DESCRIPTOR)
                and detail.Unpack(info)
                and info.domain in (ERROR_DOMAIN, "")
            ):
                reason = info.reason
                break
    return RemoteError(code, reason, err.details() or "")


class _GrpcSessionStream:
    """A ``Session`` call whose reads and writes a cancelled caller leaves running.

    Each read and write runs detached (:mod:`chanlayer._detached`): a caller cancelled while
    it waits (``asyncio.run`` ending) does not cancel the call with it. A frame handed to
    :meth:`write` is written even if its caller is cancelled, before the next one; a read
    whose caller was cancelled is the next read's.
    """

    def __init__(self, call: Any) -> None:
        self._call = call
        self._writing: asyncio.Future[None] | None = None
        self._reading: asyncio.Future[Any] | None = None

    async def write(self, request: pb.SessionRequest) -> None:
        self._writing = detach(self._write_after(self._writing, request))
        try:
            await asyncio.shield(self._writing)
        except grpc.aio.AioRpcError as err:
            raise _status_error(err) from None
        except (grpc.aio.UsageError, asyncio.InvalidStateError) as err:
            raise RemoteError(grpc.StatusCode.UNAVAILABLE.value[0], "", str(err)) from None

    async def _write_after(
        self, previous: asyncio.Future[None] | None, request: pb.SessionRequest
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait((previous,))
        await self._call.write(request)

    async def read(self) -> pb.SessionResponse | None:
        if self._reading is None:
            self._reading = detach(self._call.read())
        reading = self._reading
        try:
            frame = await asyncio.shield(reading)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.CANCELLED:
                return None
            raise _status_error(err) from None
        finally:
            if reading.done():
                self._reading = None
        if frame is grpc.aio.EOF:
            return None
        return frame  # type: ignore[no-any-return]

    def cancel(self) -> None:
        self._call.cancel()

    def ended(self) -> bool:
        return bool(self._call.done())

    def settled(self) -> bool:
        """True once the call has ended and its last read and write have come back."""
        return self.ended() and all(f is None or f.done() for f in (self._reading, self._writing))

    async def settle(self, timeout: float) -> None:
        """Wait, at most ``timeout`` seconds for each, until :meth:`settled`."""
        with contextlib.suppress(Exception, asyncio.TimeoutError):
            await wait_for(self._call.code(), timeout)
        pending = [f for f in (self._reading, self._writing) if f is not None and not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)


class GrpcTransport:
    """:class:`Transport` over one ``grpc.aio`` channel."""

    def __init__(self, config: TransportConfig) -> None:
        self._config = config
        options = _channel_options(config)
        if config.tls:
            creds = grpc.ssl_channel_credentials(
                root_certificates=config.tls_ca,
                private_key=config.tls_key,
                certificate_chain=config.tls_cert,
            )
            self._channel = grpc.aio.secure_channel(config.target, creds, options=options)
        else:
            self._channel = grpc.aio.insecure_channel(config.target, options=options)
        self._stub = pb_grpc.ChannelLayerServiceStub(self._channel)
        #: Session streams not settled yet.
        self._streams: list[_GrpcSessionStream] = []
        self._metadata: tuple[tuple[str, str], ...] | None = (
            (("authorization", f"Bearer {config.token}"),) if config.token else None
        )

    async def wait_ready(self, timeout: float) -> None:
        if self._channel.get_state(try_to_connect=True) == grpc.ChannelConnectivity.READY:
            return
        try:
            await wait_for(self._channel.channel_ready(), timeout)
        except asyncio.TimeoutError:
            raise ServerUnavailable(
                f"the chanlayer server at {self._config.target} is unreachable "
                f"(no connection within {timeout:g} s)",
                code=grpc.StatusCode.UNAVAILABLE.value[0],
            ) from None

    def open_session(self) -> SessionStream:
        stream = _GrpcSessionStream(self._stub.Session(metadata=self._metadata))
        self._streams = [s for s in self._streams if not s.settled()]
        self._streams.append(stream)
        return stream

    async def unary(self, method: str, request: Message, timeout: float) -> Any:
        rpc = getattr(self._stub, method)
        try:
            return await rpc(request, timeout=timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as err:
            raise _status_error(err) from None

    async def close(self) -> None:
        """Close the channel, and wait (briefly) until its streams have settled.

        Closing cancels the streams, but their ends come later, through grpc.aio's poller,
        each of their pending operations apart (the status, the last read, the last write):
        one that comes after the loop closed is reported on the next loop that uses grpc.aio
        ("Event loop is closed"). So the loop waits for all of them here.
        """
        streams, self._streams = self._streams, []
        await self._channel.close(grace=None)
        for stream in streams:
            await stream.settle(_STREAM_END_WAIT)
