"""``chanlayer.ChannelLayer``: the Django Channels layer backed by a chanlayer server.

Configuration mirrors channels_redis (same keys, meanings and defaults) plus the connection
settings of the gRPC server; see the package README for every key.

Per event loop, the layer keeps one connection (a :class:`~chanlayer._transport.Transport`) and
at most one session stream, like channels_redis keeps one set of pools per loop, and cleans them
up when the loop closes. The layer picks the session type that fits its transport
(:class:`~chanlayer._session.Session` on grpc.aio, :class:`~chanlayer._native.NativeSession` on
the extension) and gives every session the one :class:`~chanlayer._state.LayerState` they share
(settings, resume token, spare sessions, memberships, messages fetched ahead). Sessions and
transports never import this module. A loop opens its session on its first
``receive()``; until then its sends and group operations are unary calls, which is what
short-lived ``async_to_sync`` loops want. Once a loop has a session, its operations ride on it.

The layer's ``client_prefix`` (a random 128-bit hex string made at construction, as in
channels_redis) names its specific channels. One session at a time holds it: the first loop to
open a session. When that loop closes, its session detaches and the next loop resumes it with
the resume token, keeping the specific channels and their queued messages. Receiving on a
specific channel of this layer from a second loop while the first still holds the session
raises ``RuntimeError``, as channels_redis does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar, cast, overload

import msgpack
from channels.exceptions import MessageTooLarge
from channels.layers import BaseChannelLayer

from chanlayer._choice import choose_transport, log_choice
from chanlayer._loops import LoopState, ThreadState, register, track_layer, unregister
from chanlayer._proto.v1 import channel_layer_pb2 as pb
from chanlayer._session import Session
from chanlayer._state import LayerState, capacity_rules
from chanlayer._transport import (
    GrpcTransport,
    RemoteError,
    Transport,
    TransportConfig,
    unix_socket_path,
)
from chanlayer._version import __version__
from chanlayer.exceptions import ChanlayerError, error_from_reason
from chanlayer.serializers import MsgPackSerializer, registry

if TYPE_CHECKING:
    from chanlayer._native import NativeSession

    AnySession: TypeAlias = Session | NativeSession

logger = logging.getLogger("chanlayer")

#: The spec's minimum message size: larger messages take the unary path until the server's
#: limit is known.
_SPEC_MESSAGE_BYTES = 1024 * 1024
#: A loop that made this many unary calls opens a session stream for the next ones: a loop
#: that only sends (a worker, a long-lived thread) then pays per message what a receiving
#: loop pays, while short-lived ``async_to_sync`` loops stay on unary calls.
_SESSION_AFTER_UNARY = 8
#: Channel names validated lately (the validation is a regex match): at most this many.
_VALID_NAMES_CACHE = 4096
#: A message received twice in a row is decoded once when it is at most this large and
#: ``_FLAT`` (see ``ChannelLayer.deserialize``).
_REPEAT_CACHE_BYTES = 16 * 1024
#: Value types whose dicts ``dict.copy()`` copies as fully as decoding again would.
_FLAT = frozenset({str, bytes, int, float, bool, type(None)})


T = TypeVar("T")


#: Most messages one receive on a specific channel fetches ahead by default. A consumer that
#: keeps up with a steady stream takes a batch per round trip: 16 gave about 75 000 messages/s
#: through one producer and one consumer on the native transport, 64 about 138 000
#: (docs/benchmarks/PREFETCH.md).
DEFAULT_PREFETCH = 64


def default_prefetch(capacity: int, channel_capacity: Mapping[Any, int] | None) -> int:
    """:data:`DEFAULT_PREFETCH`, or the smallest configured capacity when that is lower."""
    capacities = [int(capacity), *(int(c) for c in (channel_capacity or {}).values())]
    return max(1, min(DEFAULT_PREFETCH, *capacities))


class _Shared(Generic[T]):
    """A setting of the layer kept in its :class:`LayerState`, read and written as an attribute."""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, layer: None, owner: type[Any] | None = None) -> _Shared[T]: ...
    @overload
    def __get__(self, layer: ChannelLayer, owner: type[Any] | None = None) -> T: ...
    def __get__(self, layer: ChannelLayer | None, owner: type[Any] | None = None) -> T | _Shared[T]:
        if layer is None:
            return self
        value: T = getattr(layer._state, self._name)
        return value

    def __set__(self, layer: ChannelLayer, value: T) -> None:
        setattr(layer._state, self._name, value)


class ChannelLayer(BaseChannelLayer):  # type: ignore[misc]
    """A Django Channels channel layer on a chanlayer gRPC server.

    Args:
        target: The server address, ``host:port`` (gRPC target syntax), or
            ``unix:/path/to/chanlayer.sock`` for a server listening on a Unix domain socket
            (``chanlayer --listen unix:PATH``; no TLS there).
        prefix: The namespace of this application's channels and groups on the server
            (channels_redis' key prefix).
        expiry: Seconds a message may wait unread before it is dropped.
        group_expiry: Seconds a group membership lasts after the last ``group_add``.
        capacity: Default capacity of a channel (messages).
        channel_capacity: Per-channel capacities: a mapping of glob strings or compiled regexes
            to capacities; the first match wins.
        symmetric_encryption_keys: Fernet keys (a list): key 0 encrypts, all decrypt.
        serializer_format: A format of :data:`chanlayer.serializers.registry`.
        random_prefix_length: Accepted for compatibility with channels_redis; must stay 0 for
            messages to be readable by other chanlayer clients, and defaults to 0.
        token: A bearer token sent in the ``authorization`` metadata of every call.
        token_file: A file holding the token (read once, at construction).
        tls: Use TLS (implied by any ``tls_*`` file).
        tls_ca_file: PEM roots to verify the server with (default: the system's).
        tls_cert_file: PEM client certificate chain, for mutual TLS.
        tls_key_file: PEM client private key, for mutual TLS.
        tls_server_name: The name to verify the server certificate against.
        connect_timeout: Seconds a call waits for the server before raising
            :class:`~chanlayer.exceptions.ServerUnavailable`.
        call_timeout: Deadline of unary calls, in seconds.
        prefetch: Most messages one receive on a specific channel may fetch ahead (1
            disables). Default: :data:`DEFAULT_PREFETCH`, or the smallest capacity this layer
            is configured with (``capacity`` and the ``channel_capacity`` values) when that
            is lower, so that one batch is never larger than a channel's capacity.
        normal_prefetch: Most messages one receive on a normal channel may fetch ahead, of
            those already queued there (the default, 1, fetches one at a time). Messages
            fetched ahead wait in this process for its next ``receive()`` of the channel;
            :meth:`close` and :meth:`close_pools` hand them back to the channel, a crash loses
            them.
        transport: ``"native"`` (the ``chanlayer-native`` extension), ``"grpc"`` (grpc.aio) or
            ``"auto"``: native when the extension is installed and can reach ``target``,
            else grpc. Defaults to ``$CHANLAYER_TRANSPORT``, else ``"auto"``.
    """

    extensions = ["groups", "flush"]

    #: The server address.
    target: _Shared[str] = _Shared()
    #: The namespace of this application's channels and groups.
    prefix: _Shared[str] = _Shared()
    #: Names this layer's specific channels; proposed to the server as the session prefix.
    client_prefix: _Shared[str] = _Shared()
    #: Sent to the server when a session opens.
    client_name: _Shared[str] = _Shared()
    connect_timeout: _Shared[float] = _Shared()
    prefetch: _Shared[int] = _Shared()
    normal_prefetch: _Shared[int] = _Shared()

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        prefix: str = "asgi",
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: Mapping[Any, int] | None = None,
        symmetric_encryption_keys: Iterable[str | bytes] | None = None,
        serializer_format: str = "msgpack",
        random_prefix_length: int = 0,
        token: str | None = None,
        token_file: str | None = None,
        tls: bool = False,
        tls_ca_file: str | None = None,
        tls_cert_file: str | None = None,
        tls_key_file: str | None = None,
        tls_server_name: str | None = None,
        connect_timeout: float = 10.0,
        call_timeout: float = 30.0,
        prefetch: int | None = None,
        normal_prefetch: int = 1,
        transport: str | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            name = next(iter(unknown))
            hint = (
                ": chanlayer connects to a chanlayer server, given as target='HOST:PORT', not "
                "to Redis (replace CONFIG['hosts'] with CONFIG['target'])"
                if name == "hosts"
                else ""
            )
            raise TypeError(f"ChannelLayer() got an unexpected keyword argument {name!r}{hint}")
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        if not isinstance(prefix, str):
            raise TypeError("Prefix must be unicode")
        if token is not None and token_file is not None:
            raise TypeError("Pass either token or token_file, not both")
        self._state = LayerState(
            target=target,
            prefix=prefix,
            client_prefix=uuid.uuid4().hex,
            client_name=f"chanlayer-py/{__version__}",
            connect_timeout=float(connect_timeout),
            prefetch=max(1, int(prefetch))
            if prefetch is not None
            else default_prefetch(capacity, channel_capacity),
            normal_prefetch=max(1, int(normal_prefetch)),
            capacity_rules=capacity_rules(channel_capacity or {}),
        )
        self.group_expiry = group_expiry
        self.call_timeout = float(call_timeout)
        self.channel_capacity = self.compile_capacities(channel_capacity or {})
        self._serializer = registry.get_serializer(
            serializer_format,
            symmetric_encryption_keys=symmetric_encryption_keys,
            random_prefix_length=random_prefix_length,
            expiry=expiry,
        )
        # Plain msgpack (the default) skips the serializer's layers: the same bytes.
        plain = type(self._serializer) is MsgPackSerializer and (
            self._serializer.crypter is None and self._serializer.random_prefix_length <= 0
        )
        self._pack: Callable[[Any], bytes] = msgpack.packb if plain else self._serializer.serialize
        self._unpack: Callable[[bytes], Any] = (
            msgpack.unpackb if plain else self._serializer.deserialize
        )
        if token_file is not None:
            token = Path(token_file).read_text().strip()
        use_tls = bool(tls or tls_ca_file or tls_cert_file or tls_key_file)
        if unix_socket_path(target) is not None and use_tls:
            raise ValueError(
                f"target {target!r} is a Unix socket, where the server serves no TLS: "
                "drop tls and the tls_* files (the socket file's permissions decide who connects)"
            )
        self._transport_config = TransportConfig(
            target=target,
            token=token or None,
            tls=use_tls,
            tls_ca=Path(tls_ca_file).read_bytes() if tls_ca_file else None,
            tls_cert=Path(tls_cert_file).read_bytes() if tls_cert_file else None,
            tls_key=Path(tls_key_file).read_bytes() if tls_key_file else None,
            tls_server_name=tls_server_name,
        )
        self._transport_choice = choose_transport(
            transport or os.environ.get("CHANLAYER_TRANSPORT") or "auto",
            self._transport_config,
        )
        self._transport_logged = False
        #: The transport in use: "native" or "grpc".
        self.transport = self._transport_choice.transport
        self._native = self.transport == "native"
        self._expiry_ms = max(1, round(float(expiry) * 1000))
        self._group_expiry_s = max(1, int(group_expiry))
        self._states: dict[asyncio.AbstractEventLoop, LoopState] = {}
        track_layer(self, self._states)
        self._thread = ThreadState()
        self._valid_names: set[str] = set()
        self._lock = threading.Lock()
        #: The session holding the client prefix, if any.
        self._primary: AnySession | None = None
        #: The last message decoded, and a private copy of what it decoded to once it came
        #: twice in a row (None before, or when it holds containers).
        self._last_decoded: tuple[bytes, dict[str, Any] | None] | None = None

    ### Serialization ###

    def serialize(self, message: dict[str, Any]) -> bytes:
        """Encode (and encrypt) a message."""
        return self._pack(message)

    def deserialize(self, message: bytes) -> dict[str, Any]:
        """Decode (and decrypt) a message.

        A group_send to many channels of this process delivers the same bytes to each:
        from the second time in a row on, a message whose values are all scalars is decoded
        once and each receiver gets its own copy of the dict (a copy holds nothing shared
        that a receiver could change). Messages with lists or dicts inside are decoded
        every time.
        """
        last = self._last_decoded
        if last is not None and last[0] == message:
            if last[1] is not None:
                return last[1].copy()
            decoded: dict[str, Any] = self._unpack(message)
            if type(decoded) is dict and all(type(v) in _FLAT for v in decoded.values()):
                self._last_decoded = (message, decoded.copy())
            return decoded
        decoded = self._unpack(message)
        if len(message) <= _REPEAT_CACHE_BYTES:
            self._last_decoded = (message, None)
        return decoded

    ### Channel layer API ###

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Send ``message`` to ``channel``.

        Raises:
            ChannelFull: the channel holds ``capacity`` unexpired messages.
            MessageTooLarge: the encoded message exceeds the server's limit.
            TypeError: the channel name is invalid.
        """
        if not isinstance(message, dict):
            raise AssertionError("message is not a dict")
        self.require_valid_channel_name(channel)
        if "__asgi_channel__" in message:
            raise AssertionError("'__asgi_channel__' is a reserved key")
        payload = self.serialize(message)
        capacity = self.get_capacity(channel)
        session = self._stream_for(len(payload))
        if session is not None:
            await session.send(channel, payload, capacity, self._expiry_ms)
            return
        request = pb.SendRequest(
            namespace=self.prefix,
            channel=channel,
            message=payload,
            capacity=capacity,
            expiry_ms=self._expiry_ms,
        )
        await self._unary("Send", request, channel=channel)

    async def receive(self, channel: str) -> dict[str, Any]:
        """Return the next message of ``channel``, waiting for one.

        Safe to cancel at any point: a message already on its way is kept for the next
        ``receive()`` of the channel.

        Raises:
            AssertionError: ``channel`` is a process-specific channel of another layer
                ("Wrong client prefix", as channels_redis raises it).
            TypeError: the channel name is invalid.
        """
        self.require_valid_channel_name(channel)
        if "!" in channel and not self._is_own_specific(channel):
            # channels_redis' check, before any network call: only the layer that made a
            # process-specific channel (new_channel) receives on it.
            raise AssertionError("Wrong client prefix")
        session = self._session_for_receive(channel)
        # Awaited here rather than through a session coroutine: one frame less per message,
        # which counts when thousands of receives wake at once (a group_send).
        waiter = session.start_receive(channel)
        if isinstance(waiter, bytes):
            return self.deserialize(waiter)
        try:
            payload = await waiter
        except BaseException as exc:
            session.abandon_receive(channel, waiter, isinstance(exc, asyncio.CancelledError))
            raise
        return self.deserialize(payload)

    async def new_channel(self, prefix: str = "specific") -> str:
        """Return a new process-specific channel name, ``{prefix}.{client_prefix}!{random}``."""
        return f"{prefix}.{self._state.client_prefix}!{uuid.uuid4().hex}"

    ### Groups extension ###

    async def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group`` (or refresh its membership)."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        if self._is_own_specific(channel):
            self._state.remember_membership(group, channel, self._group_expiry_s)
        try:
            session = self._stream_for(0)
            if session is not None:
                await session.group_add(group, channel, self._group_expiry_s)
                return
            request = pb.GroupAddRequest(
                namespace=self.prefix,
                group=group,
                channel=channel,
                group_expiry_seconds=self._group_expiry_s,
            )
            await self._unary("GroupAdd", request)
        except AttributeError as exc:  # Channels would report it as a missing groups extension
            raise ChanlayerError(f"group_add failed: {exc!r}") from exc

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``; nothing happens if it is not a member."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        self._state.forget_membership(group, channel)
        try:
            session = self._stream_for(0)
            if session is not None:
                await session.group_discard(group, channel)
                return
            request = pb.GroupDiscardRequest(namespace=self.prefix, group=group, channel=channel)
            await self._unary("GroupDiscard", request)
        except AttributeError as exc:  # Channels would report it as a missing groups extension
            raise ChanlayerError(f"group_discard failed: {exc!r}") from exc

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Send ``message`` to every member of ``group``; full members are skipped."""
        if not isinstance(message, dict):
            raise AssertionError("Message is not a dict")
        self.require_valid_group_name(group)
        payload = self.serialize(message)
        session = self._stream_for(len(payload))
        if session is not None:
            sent = await session.group_send(group, payload, self.capacity, self._expiry_ms)
            if sent is None:
                # Returned before its result (the send window): the session logs the members
                # over capacity when it comes.
                return
            delivered, dropped = sent
            total = delivered + dropped
        else:
            request = pb.GroupSendRequest(
                namespace=self.prefix,
                group=group,
                message=payload,
                capacity=self.capacity,
                channel_capacity=self._state.capacity_rules,
                expiry_ms=self._expiry_ms,
            )
            response = await self._unary("GroupSend", request)
            dropped = response.dropped
            total = response.delivered + dropped
        if dropped:
            logger.info("%s of %s channels over capacity in group %s", dropped, total, group)

    ### Flush extension ###

    async def flush(self) -> None:
        """Remove every channel, message and group of this layer's namespace."""
        self._state.forget_namespace()
        state = self._states.get(asyncio.get_running_loop())
        if state is not None and state.session is not None:
            # Sends that returned before their result go first: none may land after.
            await state.session.drain(self.call_timeout)
            state.session.clear_buffers()
        await self._unary("Flush", pb.FlushRequest(namespace=self.prefix))

    async def close(self) -> None:
        """Close this event loop's session and connection.

        The session is released: the server removes this layer's specific channels and their
        group memberships at once instead of after the lease grace period. Messages this layer
        fetched ahead on normal channels and has not returned from ``receive()`` yet are handed
        back to their channels first, for other consumers. The layer stays usable; the next
        call reconnects.
        """
        loop = asyncio.get_running_loop()
        if loop not in self._states and self._normal_buffered():
            self._loop_state()  # a connection to hand the messages back on
        state = self._states.pop(loop, None)
        if state is None:
            return
        unregister(state)
        state.alive = False
        was_primary = state.session is not None and state.session is self._primary
        await state.aclose(release=True, before_transport=self._hand_back)
        with self._lock:
            if was_primary:
                self._primary = None
                self._state.release_client_prefix()

    async def close_pools(self) -> None:
        """Close this event loop's connection, keeping everything on the server.

        channels_redis' coroutine of the same name, called before an event loop goes away
        (an ``async_to_sync`` helper, a test). The session is detached, not released: this
        layer's specific channels, their queued messages and group memberships stay on the
        server, and the next call, on this loop or another, reconnects and resumes them.
        Messages fetched ahead on normal channels are handed back first, as by
        :meth:`close`. Other loops keep their connections (each closes with its loop).
        """
        state = self._forget_loop(asyncio.get_running_loop())
        if state is None:
            return
        unregister(state)
        await state.aclose(release=False, before_transport=self._hand_back)

    async def wait_received(self) -> None:
        """Wait until this loop's sends that returned early have the server's answer.

        channels_redis' coroutine of the same name waits for its background clean-up tasks;
        here the only background work is the send window (sends that returned early).
        """
        state = self._states.get(asyncio.get_running_loop())
        if state is not None and state.session is not None:
            await state.session.drain(self.call_timeout)

    ### Introspection (beyond the Channels spec) ###

    async def group_size(self, group: str) -> int:
        """Return how many unexpired members ``group`` has."""
        self.require_valid_group_name(group)
        response = await self._unary(
            "GetGroup", pb.GetGroupRequest(namespace=self.prefix, group=group)
        )
        return int(response.member_count)

    async def group_members(self, group: str) -> list[str]:
        """Return the channels of ``group``, in name order."""
        self.require_valid_group_name(group)
        members: list[str] = []
        token = ""
        while True:
            response = await self._unary(
                "ListGroupMembers",
                pb.ListGroupMembersRequest(
                    namespace=self.prefix, group=group, page_size=1000, page_token=token
                ),
            )
            members.extend(m.channel for m in response.members)
            token = response.next_page_token
            if not token:
                return members

    async def channel_depth(self, channel: str) -> int:
        """Return how many unexpired messages wait in ``channel`` on the server."""
        self.require_valid_channel_name(channel)
        response = await self._unary(
            "GetChannel", pb.GetChannelRequest(namespace=self.prefix, channel=channel)
        )
        return int(response.queued_messages)

    async def channel_info(self, channel: str) -> dict[str, int | str]:
        """Return ``GetChannel`` for ``channel``: queued messages and bytes, waiting receives."""
        self.require_valid_channel_name(channel)
        response = await self._unary(
            "GetChannel", pb.GetChannelRequest(namespace=self.prefix, channel=channel)
        )
        return {f.name: getattr(response, f.name) for f in response.DESCRIPTOR.fields}

    async def server_stats(self) -> dict[str, int]:
        """Return the server's counters and gauges (``GetServerStats``) as a dict."""
        response = await self._unary("GetServerStats", pb.GetServerStatsRequest())
        return {f.name: int(getattr(response, f.name)) for f in response.DESCRIPTOR.fields}

    ### Internals ###

    def _loop_state(self) -> LoopState:
        state = self._thread.state
        # A loop runs in one thread at a time, and its _thread_id is that thread's while it
        # runs: this is the running loop without asking asyncio (which costs a getpid()).
        if (
            state is not None
            and state.alive
            and getattr(state.loop, "_thread_id", None) == threading.get_ident()
        ):
            return state
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = LoopState(self._make_transport(), loop, weakref.ref(self))
            self._states[loop] = state
            register(state)
        self._thread.state = state
        return state

    def require_valid_channel_name(self, name: str, receive: bool = False) -> bool:
        """Channels' check (``TypeError`` with its text), remembered for names seen lately."""
        if not receive and name in self._valid_names:
            return True
        valid: bool = super().require_valid_channel_name(name, receive)
        if not receive:
            if len(self._valid_names) >= _VALID_NAMES_CACHE:
                self._valid_names.clear()
            self._valid_names.add(name)
        return valid

    def _make_transport(self) -> Transport:
        if not self._transport_logged:
            # The layer's first connection: say which transport it uses and why.
            self._transport_logged = True
            log_choice(self._transport_choice, self._transport_config.target)
        if self._native:
            from chanlayer._native import NativeTransport

            return NativeTransport(self._transport_config)
        return GrpcTransport(self._transport_config)

    def _stream_for(self, payload_size: int) -> AnySession | None:
        """Return this loop's session if operations should ride on it, else None (unary).

        Raises:
            MessageTooLarge: the payload exceeds the server's known limit.
        """
        limit = self._state.max_message_bytes
        if limit is not None and payload_size > limit:
            raise MessageTooLarge(f"message of {payload_size} bytes exceeds {limit}")
        state = self._loop_state()
        session = state.session
        if session is None or not session.usable:
            state.unary_ops += 1
            if state.unary_ops >= _SESSION_AFTER_UNARY:
                self._open_session(state)
            return None
        if limit is None and payload_size > _SPEC_MESSAGE_BYTES:
            return None
        return session

    def _open_session(self, state: LoopState) -> AnySession:
        """Start the session of a loop; it holds the client prefix unless a live one does."""
        with self._lock:
            owner = self._primary
            primary = owner is None or not owner.usable
            session = self._make_session(state, primary=primary)
            if primary:
                self._primary = session
        state.session = session
        state.unary_ops = 0
        return session

    def _make_session(self, state: LoopState, *, primary: bool) -> AnySession:
        """The session type of the layer's transport, on the loop's connection."""
        if self._native:
            from chanlayer._native import NativeSession, NativeTransport

            native = cast(NativeTransport, state.transport)
            return NativeSession(self._state, state.loop, native, primary=primary)
        grpc_aio = cast(GrpcTransport, state.transport)
        return Session(self._state, state.loop, grpc_aio, primary=primary)

    def _session_for_receive(self, channel: str) -> AnySession:
        state = self._loop_state()
        session = state.session
        if session is None or not session.usable:
            session = self._open_session(state)
        if not session.primary and self._is_own_specific(channel):
            raise RuntimeError(
                "Two event loops are trying to receive() on one channel layer at once!"
            )
        return session

    def _is_own_specific(self, channel: str) -> bool:
        """Whether ``channel`` is a process-specific channel of this layer.

        Its owner is the part of the name before ``!`` after the last ``.``, as the server
        reads it: ``new_channel()`` makes ``{prefix}.{client_prefix}!{random}``.
        """
        head, bang, _ = channel.partition("!")
        prefix = self._state.client_prefix
        return bool(bang) and (head == prefix or head.endswith("." + prefix))

    def _normal_buffered(self) -> bool:
        return any("!" not in channel for channel in self._state.buffers)

    async def _hand_back(self, state: LoopState) -> None:
        """Send the messages fetched ahead on normal channels back to their channels.

        They go to the back of the queue with what is left of their expiry, and may exceed
        the channel's capacity by their number (they were in the channel before).
        """
        if not self._normal_buffered():
            return
        await state.transport.wait_ready(self.connect_timeout)
        for channel in [c for c in self._state.buffers if "!" not in c]:
            messages = self._state.take_buffered(channel)
            capacity = self.get_capacity(channel) + len(messages)
            lost = 0
            for expires_in_ms, payload in messages:
                request = pb.SendRequest(
                    namespace=self.prefix,
                    channel=channel,
                    message=payload,
                    capacity=capacity,
                    expiry_ms=expires_in_ms,
                )
                try:
                    await state.transport.unary("Send", request, self.call_timeout)
                except RemoteError as err:
                    lost += 1
                    logger.debug("chanlayer: handing a message back failed: %s", err)
            if lost:
                logger.warning(
                    "chanlayer: %d message(s) fetched ahead on %s could not be handed back",
                    lost,
                    channel,
                )

    async def _unary(self, method: str, request: Any, *, channel: str | None = None) -> Any:
        state = self._loop_state()
        if state.session is not None:
            # Sends of this loop that returned before their result reach the server first,
            # so a unary call (introspection, flush) sees them.
            await state.session.drain(self.call_timeout)
        transport = state.transport
        await transport.wait_ready(self.connect_timeout)
        try:
            return await transport.unary(method, request, self.call_timeout)
        except RemoteError as err:
            raise error_from_reason(err.code, err.reason, err.message, channel=channel) from None

    def _forget_loop(self, loop: asyncio.AbstractEventLoop) -> LoopState | None:
        state = self._states.pop(loop, None)
        if state is not None:
            state.alive = False
        if state is not None and state.session is not None:
            with self._lock:
                if self._primary is state.session:
                    self._primary = None
        return state
