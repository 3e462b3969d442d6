"""The ``Session`` stream of one event loop: batching, multiplexed receives, reconnection.

One :class:`Session` lives on one event loop and owns one stream at a time:

* **Batching.** Operations issued within one loop tick are written together by a writer
  task (grpc.aio costs about the same per frame whatever it carries), cut into frames by the
  framing policy all clients share (:func:`chanlayer._frames.split_frames`), so that no
  frame exceeds what the server decodes.
* **Receives.** Each waiting ``receive()`` call is one pending ``Receive`` on the server. Every
  ``Delivery`` goes into the layer's local per-channel buffer first
  (:class:`~chanlayer._state.LayerState`), and waiters take messages
  from that buffer. So a receive cancelled at any await point loses nothing: a message that was
  already on its way (``ReceiveCancelled.was_pending`` false) sits in the buffer for the next
  ``receive()`` of that channel. A message is handed to the future its ``receive()`` awaits
  (no coroutine of the session in between); one handed to a receive cancelled before it
  resumed goes back to the front of the buffer. The stream is opened with
  ``shared_deliveries``: a group message reaching many receives of this session comes once,
  with their receive ids; the members' next (standing) receives are built when the next
  frame is written, in one batch.
  Specific channels prefetch (``max_messages`` > 1) since they have a single reader;
  buffered messages past their deadline are dropped. While a specific channel's reader
  keeps up with a backlog, the next batches are asked for before it has taken the last one
  (see ``Session._reconcile``).
* **Sends** may return before their result while the channel is known to be far from full,
  and **group sends** once the session's last group send was accepted (the send window,
  :mod:`chanlayer._window`); their results still come back in order, and
  :meth:`Session.drain` waits for them before a flush, a unary call and a close.
* **Reconnection.** When the stream fails or the server says it is shutting down, the session
  reconnects with exponential backoff and resumes with its resume token; pending receives are
  registered again. Operations written but not acknowledged when the stream broke fail with
  :class:`~chanlayer.exceptions.ServerUnavailable` (they may or may not have been applied:
  they are never sent twice). Callers that wait longer than ``connect_timeout`` for a
  connection get ``ServerUnavailable`` instead of hanging.
* **Memberships.** The layer remembers the group memberships of its own specific channels.
  When the session holding them reopens and the server did not know it (``resumed`` false:
  the server restarted, or the lease ran out), a ``group_add`` for each is written before any
  other operation, so group members keep getting group messages without re-adding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chanlayer._frames import split_frames
from chanlayer._proto.v1 import channel_layer_pb2 as pb
from chanlayer._reconnect import CLOSE_WAIT, ReconnectingSession
from chanlayer._state import LayerState
from chanlayer._status import StatusCode
from chanlayer._timeout import wait_for
from chanlayer._transport import RemoteError, SessionStream, StreamTransport
from chanlayer._window import SendWindow
from chanlayer.exceptions import ServerUnavailable, error_from_reason

__all__ = ["ReconnectingSession", "Session"]

if TYPE_CHECKING:
    from collections.abc import Awaitable

logger = logging.getLogger("chanlayer")

#: How long a specific channel keeps one receive pending after a receive() returned, so that
#: the next message rides back with the ack of the send that caused it (one round trip).
_STANDING_DEMAND = 1.0
#: Most batches of ``prefetch`` a specific channel with a backlog holds and asks for at once
#: (see ``Session._reconcile``).
_BACKLOG_BATCHES = 4
#: Least seconds between two runs of the standing-demand timer, which looks at every channel:
#: a standing receive lasts between ``_STANDING_DEMAND`` and this much longer.
_TICK = 0.25
#: How many handed-over messages the session remembers the deadline of (for one given back
#: by a receive cancelled before it took it).
_HANDED = 16 * 1024


@dataclass
class _Op:
    """A send or group operation waiting for its ``OperationResult``."""

    operation: pb.SessionOperation
    #: None for a send in the window (its caller already returned).
    future: asyncio.Future[pb.OperationResult] | None
    #: The channel of a send, the group of a group send.
    channel: str | None
    written: bool = False
    #: The capacity a send is tracked with by the send window (0: untracked).
    capacity: int = 0
    #: A group send (its result tells the send window whether the next may return early).
    group: bool = False


@dataclass
class _Channel:
    """Per-channel receive state of one session."""

    #: The future of each waiting ``receive()`` call, oldest first, resolved with its message
    #: (and removed) when one is handed to it.
    waiters: deque[asyncio.Future[bytes]] = field(default_factory=deque)
    #: Receive ids pending on the server for this channel (cancelled ones excluded).
    active: set[int] = field(default_factory=set)
    #: Until when (monotonic) one receive stays pending without a waiter (specific channels);
    #: the session's standing tick withdraws it after that.
    standing_until: float = 0.0
    #: True while the channel's last delivery was full (more is likely queued).
    backlog: bool = False


class Session(ReconnectingSession):
    """The session stream of one event loop (see the module docs)."""

    def __init__(
        self,
        state: LayerState,
        loop: asyncio.AbstractEventLoop,
        transport: StreamTransport,
        *,
        primary: bool,
    ) -> None:
        super().__init__(state, loop, primary=primary)
        self._transport = transport
        self._next_id = 1
        self._outbox: list[pb.SessionOperation] = []
        self._ops: dict[int, _Op] = {}
        self._receives: dict[int, str] = {}
        self._cancelling: set[int] = set()
        self._channels: dict[str, _Channel] = {}
        #: Request ids of membership replays not acknowledged yet.
        self._replaying: set[int] = set()
        self._wake = asyncio.Event()
        self._stream: SessionStream | None = None
        self._window = SendWindow()
        #: The timer that withdraws standing receives whose time is up (see ``_on_tick``).
        self._tick: asyncio.TimerHandle | None = None
        #: (id of the future, deadline) of the last messages handed to receives.
        self._handed: deque[tuple[int, float]] = deque(maxlen=_HANDED)
        #: Channels served by a shared delivery whose demand is reconciled (their standing
        #: receive asked for) when the next frame is written (``_reconcile_due``).
        self._due: list[tuple[str, _Channel]] = []
        self._task = loop.create_task(self._run(), name="chanlayer-session")

    # ------------------------------------------------------------------ public API

    async def request(
        self, operation: pb.SessionOperation, channel: str | None = None
    ) -> pb.OperationResult:
        """Queue a send or group operation and wait for its result.

        Raises:
            The mapped server error, or ServerUnavailable.
        """
        self._raise_if_failed()
        request_id = self._new_id()
        kind = operation.WhichOneof("operation")
        getattr(operation, kind).request_id = request_id  # type: ignore[arg-type]
        future: asyncio.Future[pb.OperationResult] = self._loop.create_future()
        self._ops[request_id] = _Op(operation, future, channel)
        self._outbox.append(operation)
        if self._connected:
            self._wake.set()
        result = await future
        if result.HasField("error"):
            err = result.error
            raise error_from_reason(err.code, err.reason, err.message, channel=channel)
        return result

    async def send(self, channel: str, payload: bytes, capacity: int, expiry_ms: int) -> None:
        """Send a message on the stream; it may return before its result (the send window)."""
        self._raise_if_failed()
        tracked, windowed = self._window.admit(channel, capacity, self._connected)
        request_id = self._new_id()
        op = pb.SessionOperation(
            send=pb.SendOperation(
                request_id=request_id,
                channel=channel,
                message=payload,
                capacity=capacity,
                expiry_ms=expiry_ms,
            )
        )
        future = self._enqueue(request_id, op, channel, windowed, capacity=tracked)
        if future is None:
            return
        result = await future
        if result.HasField("error"):
            err = result.error
            raise error_from_reason(err.code, err.reason, err.message, channel=channel)

    def _enqueue(
        self,
        request_id: int,
        op: pb.SessionOperation,
        target: str,
        windowed: bool,
        *,
        capacity: int = 0,
        group: bool = False,
    ) -> asyncio.Future[pb.OperationResult] | None:
        """Queue ``op`` for the next frame.

        Returns None for an operation of the send window (its result is only tracked), else
        the future of its result.
        """
        future: asyncio.Future[pb.OperationResult] | None = None
        if not windowed:
            future = self._loop.create_future()
        self._ops[request_id] = _Op(op, future, target, capacity=capacity, group=group)
        self._outbox.append(op)
        if windowed or self._connected:
            self._wake.set()
        return future

    async def group_add(self, group: str, channel: str, expiry_s: int) -> None:
        """Add ``channel`` to ``group`` on the stream."""
        op = pb.SessionOperation(
            group_add=pb.GroupAddOperation(
                group=group, channel=channel, group_expiry_seconds=expiry_s
            )
        )
        await self.request(op)

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group`` on the stream."""
        op = pb.SessionOperation(
            group_discard=pb.GroupDiscardOperation(group=group, channel=channel)
        )
        await self.request(op)

    async def group_send(
        self, group: str, payload: bytes, capacity: int, expiry_ms: int
    ) -> tuple[int, int] | None:
        """Send to ``group`` on the stream; returns ``(delivered, dropped)``.

        Returns None at once, before the result, once the session's last group send was
        accepted (the send window, :meth:`SendWindow.admit_group`); members over capacity are
        then logged when the result comes, and a refusal is logged and raised by the next
        group send.
        """
        self._raise_if_failed()
        windowed = self._window.admit_group(self._connected)
        request_id = self._new_id()
        op = pb.SessionOperation(
            group_send=pb.GroupSendOperation(
                request_id=request_id,
                group=group,
                message=payload,
                capacity=capacity,
                channel_capacity=self._state.capacity_rules,
                expiry_ms=expiry_ms,
            )
        )
        future = self._enqueue(request_id, op, group, windowed, group=True)
        if future is None:
            return None
        result = await future
        if result.HasField("error"):
            err = result.error
            raise error_from_reason(err.code, err.reason, err.message)
        return result.delivered_count, result.dropped_count

    def clear_buffers(self) -> None:
        """Drop messages fetched ahead: this session buffers them in the layer state, which does."""

    def start_receive(self, channel: str) -> bytes | asyncio.Future[bytes]:
        """Begin a ``receive()``: the message when one is at hand, else a future of it.

        ``ChannelLayer.receive`` awaits the future itself (no coroutine of the session per
        message) and calls :meth:`abandon_receive` if it stops waiting.
        """
        if self._state.buffers:
            payload = self._state.pop_buffered(channel)
            if payload is not None:
                state = self._channels.get(channel)
                if (
                    state is not None
                    and state.backlog
                    and self._state.buffered_count(channel) <= self._state.prefetch >> 1
                ):
                    self._reconcile(channel, state)
                return payload
        if self._failure is not None or self._closing:
            self._raise_if_failed()
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel()
        waiter: asyncio.Future[bytes] = self._loop.create_future()
        state.waiters.append(waiter)
        self._reconcile(channel, state)
        return waiter

    def abandon_receive(self, channel: str, waiter: Awaitable[bytes], cancelled: bool) -> None:
        """Withdraw the future of a receive whose caller stopped waiting.

        ``cancelled``: the reader went away (a consumer exits this way), so the channel's
        standing demand ends too. A message already handed to the future goes back to the
        front of the channel's buffer, for the next receive.
        """
        future: asyncio.Future[bytes] = waiter  # type: ignore[assignment]
        payload = None
        if future.done() and not future.cancelled() and future.exception() is None:
            payload = future.result()
        state = self._channels.get(channel)
        if state is not None:
            with contextlib.suppress(ValueError):
                state.waiters.remove(future)
            if cancelled:
                state.standing_until = 0.0
        if payload is not None:
            key = id(future)
            deadline = next(
                (at for handed, at in reversed(self._handed) if handed == key),
                time.monotonic() + _STANDING_DEMAND,
            )
            buffer = self._state.buffers.get(channel)
            if buffer is None:
                buffer = self._state.buffers[channel] = deque()
            buffer.appendleft((deadline, payload))
            if state is not None:
                self._serve(channel, state)
        if state is not None:
            self._reconcile(channel, state)
            self._forget_if_idle(channel, state)

    async def receive(self, channel: str) -> bytes:
        """Return the next message of ``channel``, from the buffer or the server."""
        waiter = self.start_receive(channel)
        if isinstance(waiter, bytes):
            return waiter
        try:
            return await waiter
        except BaseException as exc:
            self.abandon_receive(channel, waiter, isinstance(exc, asyncio.CancelledError))
            raise

    async def drain(self, timeout: float) -> None:
        """Wait, at most ``timeout`` seconds, until the send window is empty.

        Returns at once when the stream has ended (it failed, or was cancelled): no more
        results come on it.
        """
        if self._stream is not None and self._stream.ended():
            self._window.log_lost()
            return
        await self._window.drain(timeout)

    async def _send_close(self) -> bool:
        if self._stream is None:
            return False
        # Through the writer: a second write while it writes would break the stream, and
        # deliveries already on their way would be lost with it.
        self._outbox.append(pb.SessionOperation(close=pb.CloseOperation()))
        self._wake.set()
        return True

    # ------------------------------------------------------------------ receive bookkeeping

    def _new_id(self) -> int:
        value = self._next_id
        self._next_id += 1
        return value

    def _keep_standing(self, state: _Channel, now: float) -> None:
        """Keep one receive pending on a specific channel for a while after a message."""
        state.standing_until = now + _STANDING_DEMAND
        if self._tick is None:
            self._tick = self._loop.call_later(_STANDING_DEMAND, self._on_tick)

    def _on_tick(self) -> None:
        """Withdraw the standing receives whose time is up; one timer for every channel."""
        self._tick = None
        now = time.monotonic()
        following = 0.0
        for channel, state in list(self._channels.items()):
            until = state.standing_until
            if not until:
                continue
            if until <= now:
                state.standing_until = 0.0
                self._reconcile(channel, state)
                self._forget_if_idle(channel, state)
            elif not following or until < following:
                following = until
        if following:
            self._tick = self._loop.call_later(max(following - now, _TICK), self._on_tick)

    def _forget_if_idle(self, channel: str, state: _Channel) -> None:
        if (
            not state.waiters
            and not state.active
            and not state.standing_until
            and self._channels.get(channel) is state
        ):
            del self._channels[channel]

    def _serve(self, channel: str, state: _Channel) -> bool:
        """Hand buffered messages of ``channel`` to its waiters, oldest first; True if any."""
        waiters = state.waiters
        served = False
        while waiters:
            waiter = waiters[0]
            if waiter.done():  # cancelled; its receive() withdraws it
                waiters.popleft()
                continue
            item = self._state.pop_buffered_item(channel)
            if item is None:
                break
            waiters.popleft()
            waiter.set_result(item[1])
            self._handed.append((id(waiter), item[0]))
            served = True
        return served

    def _reconcile_due(self) -> None:
        """Reconcile the channels a shared delivery served, before a frame is written.

        Their standing receives are not urgent (see ``_reconcile``): built here, they go out
        with the frame being written, as they would have had they been built at once.
        """
        due, self._due = self._due, []
        channels = self._channels
        for channel, state in due:
            if channels.get(channel) is state:
                self._reconcile(channel, state)
                self._forget_if_idle(channel, state)

    def _reconcile(self, channel: str, state: _Channel) -> None:
        """Make the server-side demand of ``channel`` match its local waiters.

        A standing receive (no waiter yet) is not urgent: it waits in the outbox for the next
        frame written for another reason, typically the send whose message it will catch.
        While a specific channel has a backlog (its last delivery was full), receives go out
        at once when the reader has taken all but half a batch of what is buffered, enough to
        bring what is buffered and asked for to :data:`_BACKLOG_BATCHES` batches of
        ``prefetch``: the next batches are on their way while the reader takes the rest, and
        a reader that stops reading holds at most that many. Standing receives are not
        cancelled while the demand stands.
        """
        if not self._connected:
            return
        waiting = 0
        for waiter in state.waiters:
            if not waiter.done():
                waiting += 1
        active = state.active
        if waiting and len(active) == waiting and not state.backlog:
            # The common case: each waiter has its receive, and a standing one is not due.
            if self._outbox:
                self._wake.set()
            return
        want = keep = waiting
        backlog = False
        if state.standing_until and state.standing_until > time.monotonic():
            prefetch = self._state.prefetch
            buffered = self._state.buffered_count(channel)
            if state.backlog:
                keep = max(waiting, _BACKLOG_BATCHES)
                if buffered <= prefetch >> 1:
                    backlog = True
                    want = max(waiting, _BACKLOG_BATCHES - (buffered + prefetch - 1) // prefetch)
            else:
                if waiting == 0 and buffered <= prefetch:
                    want = 1
                keep = max(waiting, 1)
        if want <= len(active) <= keep:  # the common case: nothing to change
            if waiting and self._outbox:
                self._wake.set()
            return
        urgent = waiting > 0 or backlog
        if len(active) < want:
            max_messages = self._state.max_messages(channel)
            outbox = self._outbox
            while len(active) < want:
                receive_id = self._next_id
                self._next_id = receive_id + 1
                active.add(receive_id)
                self._receives[receive_id] = channel
                outbox.append(
                    pb.SessionOperation(
                        receive=pb.ReceiveOperation(
                            receive_id=receive_id, channel=channel, max_messages=max_messages
                        )
                    )
                )
        while len(active) > keep:
            receive_id = max(active)
            active.discard(receive_id)
            self._cancelling.add(receive_id)
            self._outbox.append(
                pb.SessionOperation(cancel=pb.CancelOperation(receive_id=receive_id))
            )
            urgent = True
        if urgent and self._outbox:
            self._wake.set()

    async def _serve_once(self) -> None:
        remaining = self._state.connect_timeout - (time.monotonic() - self._down_since)
        await self._transport.wait_ready(max(remaining, 0.5))
        stream = self._transport.open_session()
        self._stream = stream
        if self.primary:
            prefix, resume_token = self._state.client_prefix, self._state.resume_token
        else:
            prefix, resume_token = self.client_prefix, self._own_token
        self._had_session = bool(resume_token)
        open_op = pb.OpenOperation(
            namespace=self._state.prefix,
            client_prefix=prefix,
            resume_token=resume_token,
            client_name=self._state.client_name,
            shared_deliveries=True,
        )
        await stream.write(pb.SessionRequest(operations=[pb.SessionOperation(open=open_op)]))
        frame = await stream.read()
        if frame is None or not frame.events or not frame.events[0].HasField("opened"):
            raise RemoteError(
                StatusCode.UNAVAILABLE.value, "", "the session stream ended before opened"
            )
        self._on_opened(frame.events[0].opened)
        writer = self._loop.create_task(self._write_loop(stream), name="chanlayer-writer")
        try:
            self._dispatch(frame.events[1:])
            while True:
                frame = await stream.read()
                if frame is None:
                    return
                self._dispatch(frame.events)
        except asyncio.CancelledError:
            if not self._closing:
                await self._finish_sends(stream)
            raise
        finally:
            writer.cancel()
            with contextlib.suppress(BaseException):
                await writer

    async def _finish_sends(self, stream: SessionStream) -> None:
        """Serve ``stream`` until every send that returned early has its result.

        For a task cancelled other than by :meth:`close`: its event loop is ending
        (``asyncio.run`` cancels every task once its main coroutine returns), and the sends
        that returned must still reach the server, as :meth:`close` would have them. The
        queued frames go out through a new writer (the loop's end cancelled the old one)
        and the results are read, for at most ``CLOSE_WAIT`` seconds.
        """
        if self._window.size == 0:
            return
        writer = self._loop.create_task(self._write_loop(stream), name="chanlayer-writer")
        self._wake.set()
        deadline = self._loop.time() + CLOSE_WAIT
        try:
            while self._window.size > 0:
                remaining = deadline - self._loop.time()
                if remaining <= 0:
                    break
                frame = await wait_for(stream.read(), remaining)
                if frame is None:
                    break
                self._dispatch(frame.events)
        except (asyncio.TimeoutError, RemoteError):
            pass
        finally:
            writer.cancel()
            with contextlib.suppress(BaseException):
                await writer

    def _on_opened(self, opened: pb.SessionOpened) -> None:
        self.client_prefix = opened.client_prefix
        self.resumed = opened.resumed
        self.max_message_bytes = opened.max_message_bytes or None
        if self.primary:
            self._state.resume_token = opened.resume_token
        else:
            self._own_token = opened.resume_token
            if opened.client_prefix != self._state.client_prefix:
                logger.warning(
                    "chanlayer server chose prefix %r instead of %r",
                    opened.client_prefix,
                    self._state.client_prefix,
                )
        if opened.max_message_bytes:
            self._state.max_message_bytes = opened.max_message_bytes
        self._connected = True
        if self.primary and ((self._had_session and not opened.resumed) or self._replaying):
            # The server lost the session (a restart, or the lease ran out): its memberships
            # went with it. Restore them before anything else, so no group message is missed.
            self._replay_memberships()
        # Ops queued while disconnected go out now, then the receives of current waiters.
        for channel, state in list(self._channels.items()):
            self._reconcile(channel, state)
        self._wake.set()

    def _replay_memberships(self) -> None:
        """Put a ``group_add`` for each remembered own membership at the head of the outbox."""
        self._replaying.clear()
        replay = []
        for group, channel, expiry in self._state.memberships_to_restore():
            request_id = self._new_id()
            self._replaying.add(request_id)
            replay.append(
                pb.SessionOperation(
                    group_add=pb.GroupAddOperation(
                        request_id=request_id,
                        group=group,
                        channel=channel,
                        group_expiry_seconds=expiry,
                    )
                )
            )
        if replay:
            logger.info("chanlayer: restoring %d group memberships", len(replay))
            self._outbox[:0] = replay

    async def _write_loop(self, stream: SessionStream) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._due:
                self._reconcile_due()
            if not self._outbox:
                continue
            operations, self._outbox = self._outbox, []
            frames = split_frames(operations, self._state.max_message_bytes)
            for index, frame in enumerate(frames):
                for operation in frame:
                    kind = operation.WhichOneof("operation")
                    if kind in ("send", "group_add", "group_discard", "group_send"):
                        op = self._ops.get(getattr(operation, kind).request_id)
                        if op is not None:
                            op.written = True
                try:
                    await stream.write(pb.SessionRequest(operations=frame))
                except RemoteError:
                    # What was not written stays queued for the next stream.
                    self._outbox[:0] = [o for rest in frames[index + 1 :] for o in rest]
                    stream.cancel()
                    return
                except asyncio.CancelledError:
                    # This frame is written all the same (the stream's writes outlive their
                    # caller); the next ones wait for the next writer.
                    self._outbox[:0] = [o for rest in frames[index + 1 :] for o in rest]
                    raise

    def _dispatch(self, events: Any) -> None:
        for event in events:
            kind = event.WhichOneof("event")
            if kind == "result":
                self._on_result(event.result)
            elif kind == "delivery":
                self._on_delivery(event.delivery)
            elif kind == "shared_delivery":
                self._on_shared_delivery(event.shared_delivery)
            elif kind == "cancelled":
                self._cancelling.discard(event.cancelled.receive_id)
                self._receives.pop(event.cancelled.receive_id, None)
            elif kind == "receive_failed":
                self._on_receive_failed(event.receive_failed)
            elif kind == "closing":
                reason = event.closing.reason
                if reason == pb.SESSION_CLOSE_REASON_RESUMED_ELSEWHERE:
                    # Another loop of this layer took the client prefix over.
                    self.primary = False
                logger.info("chanlayer session closing: %s", pb.SessionCloseReason.Name(reason))
            elif kind == "opened":
                logger.warning("unexpected second 'opened' on a chanlayer session")

    def _on_result(self, result: pb.OperationResult) -> None:
        if result.request_id in self._replaying:
            self._replaying.discard(result.request_id)
            if result.HasField("error"):
                logger.warning("chanlayer: restoring a membership failed: %s", result.error)
            return
        op = self._ops.pop(result.request_id, None)
        if op is None:
            return
        future = op.future
        if op.capacity:
            self._window.on_result(op.channel or "", op.capacity, result, future is None)
        elif op.group:
            self._window.on_group_result(op.channel or "", result, future is None)
        if future is not None and not future.done():
            future.set_result(result)

    def _on_delivery(self, delivery: pb.Delivery) -> None:
        channel = delivery.channel or self._receives.get(delivery.receive_id, "")
        self._receives.pop(delivery.receive_id, None)
        self._cancelling.discard(delivery.receive_id)
        messages = delivery.messages
        self._state.buffer_messages(channel, messages)
        state = self._channels.get(channel)
        if state is not None:
            state.active.discard(delivery.receive_id)
            specific = "!" in channel
            state.backlog = specific and 1 < len(messages) >= self._state.prefetch
            if self._serve(channel, state) and specific:
                self._keep_standing(state, time.monotonic())
            self._reconcile(channel, state)
            if not specific:
                self._forget_if_idle(channel, state)

    def _on_shared_delivery(self, shared: pb.SharedDelivery) -> None:
        """One message for several receives (a group_send reaching channels of this session).

        Each member's waiting receive is handed the message (the same ``bytes``) at once; a
        specific channel keeps its demand standing, and the members' next receives are built
        in one batch when the next frame is written (``_reconcile_due``).
        """
        deadline = time.monotonic() + shared.expires_in_ms / 1000.0
        message = shared.message
        receives, cancelling, channels = self._receives, self._cancelling, self._channels
        buffers = self._state.buffers
        handed = self._handed
        due = self._due
        standing = time.monotonic() + _STANDING_DEMAND
        for receive_id in shared.receive_ids:
            channel = receives.pop(receive_id, None)
            if channel is None:
                continue
            cancelling.discard(receive_id)
            state = channels.get(channel)
            if state is None:
                buffer = buffers.get(channel)
                if buffer is None:
                    buffer = buffers[channel] = deque()
                buffer.append((deadline, message))
                continue
            state.active.discard(receive_id)
            state.backlog = False
            waiters = state.waiters
            if buffers and channel in buffers:
                # Older messages first.
                buffers[channel].append((deadline, message))
                self._serve(channel, state)
            else:
                while waiters:
                    waiter = waiters.popleft()
                    if not waiter.done():
                        waiter.set_result(message)
                        handed.append((id(waiter), deadline))
                        break
                else:
                    buffer = buffers[channel] = deque()
                    buffer.append((deadline, message))
            if "!" in channel:
                state.standing_until = standing
            due.append((channel, state))
        if due and self._tick is None:
            self._tick = self._loop.call_later(_STANDING_DEMAND, self._on_tick)

    def _on_receive_failed(self, failed: pb.ReceiveFailed) -> None:
        channel = self._receives.pop(failed.receive_id, None)
        if failed.receive_id in self._cancelling:
            self._cancelling.discard(failed.receive_id)
            return
        if channel is None:
            return
        state = self._channels.get(channel)
        if state is None:
            return
        state.active.discard(failed.receive_id)
        err = failed.error
        exc = error_from_reason(err.code, err.reason, err.message, channel=channel)
        waiters = state.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_exception(exc)
                break

    def _teardown_stream(self) -> None:
        """Forget the stream's server-side state after it ended."""
        was_connected = self._connected
        self._connected = False
        if self._stream is not None:
            self._stream.cancel()
            self._stream = None
        if was_connected:
            self._down_since = time.monotonic()
        self._receives.clear()
        self._cancelling.clear()
        self._window.stream_ended()
        for state in self._channels.values():
            state.active.clear()
        lost = ServerUnavailable(
            "the connection to the chanlayer server was lost before the operation was "
            "acknowledged; it may or may not have been applied"
        )
        for request_id, op in list(self._ops.items()):
            if op.written:
                del self._ops[request_id]
                if op.capacity or op.group:
                    self._window.lost(
                        op.channel or "", windowed=op.future is None, written=True, group=op.group
                    )
                if op.future is not None and not op.future.done():
                    op.future.set_exception(lost)
        self._window.log_lost()
        # Only unwritten send and group operations survive; receives are re-registered.
        self._outbox = [
            o
            for o in self._outbox
            if o.WhichOneof("operation") in ("send", "group_add", "group_discard", "group_send")
            and not (o.HasField("group_add") and o.group_add.request_id in self._replaying)
        ]
        if self._closing:
            self._closed.set()

    def _fail_waiters(self, exc: BaseException) -> None:
        """Fail every caller waiting on this session (the session keeps reconnecting)."""
        for state in self._channels.values():
            waiters = state.waiters
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(exc)
        for request_id, op in list(self._ops.items()):
            del self._ops[request_id]
            if op.capacity or op.group:
                self._window.lost(
                    op.channel or "",
                    windowed=op.future is None,
                    written=op.written,
                    group=op.group,
                )
            if op.future is not None and not op.future.done():
                op.future.set_exception(exc)
        self._outbox.clear()
        self._window.log_lost()

    def _finish(self, exc: BaseException) -> None:
        """Fail everything for good: the session is unusable from now on."""
        if self._failure is None:
            self._failure = exc
        self._fail_waiters(exc)
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        self._closed.set()
