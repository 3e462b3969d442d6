"""The send window of the grpc.aio session: sends that complete before their result.

The rule is the native transport's (the ``session`` module of ``clients/python/native``): a
send to a channel whose last acknowledgement, less than :data:`ROOM_FRESH` seconds old, said
that even with every send still in flight at least half of its capacity stays free, returns
at once, as channels-nats publishes, while its operation goes out in order as usual. A send
whose room is unknown, stale or close to full waits for the server, so ``ChannelFull`` stays
exact for a single sender and near capacity. If a windowed send is refused after all (other
senders filled the channel), the next send to that channel raises the refusal and is not
sent. At most :data:`WINDOW_LIMIT` sends are in the window; :meth:`SendWindow.drain` waits
until it is empty (before a flush, a unary call, and when the session closes).

Group sends use the same window: a ``group_send`` returns at once, as channels-nats
publishes, once the session's last group send was accepted (a group send never raises
``ChannelFull``: members over capacity are dropped, and logged when the result comes). The
first group send of a stream, and every one after a refusal, waits for its result. A group
send refused after it returned (the server could not take it: a cluster's backplane down, a
``channel_capacity`` rule the server rejects) is logged when the refusal comes, and the next
group send of the session raises it and is not sent.

This module knows nothing of streams: :class:`chanlayer._session.Session` tells it what
happened to each tracked send (:meth:`~SendWindow.admit`, :meth:`~SendWindow.on_result`,
:meth:`~SendWindow.lost`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from chanlayer._proto.v1 import channel_layer_pb2 as pb
from chanlayer._timeout import wait_for
from chanlayer.exceptions import ChannelFull, error_from_reason

logger = logging.getLogger("chanlayer")

#: At most this many sends complete before their result.
WINDOW_LIMIT = 1024
#: Seconds that what an acknowledgement said about a channel's room may be relied on.
ROOM_FRESH = 0.1
#: At most this many channels' room is remembered.
ROOMS_LIMIT = 4096
#: The capacity the server applies to a send made with capacity 0.
_DEFAULT_CAPACITY = 100


class _Room:
    """What the session knows of how full a channel it sends to is."""

    __slots__ = ("free", "inflight", "known_at", "refused", "refused_count")

    def __init__(self) -> None:
        #: Free places at the last acknowledgement: capacity less the messages it reported.
        self.free = 0
        #: When (monotonic) that acknowledgement came; 0.0 before one reported it.
        self.known_at = 0.0
        #: Sends to the channel written or queued and not acknowledged yet.
        self.inflight = 0
        #: The first refusal of a windowed send not reported yet, and how many there were.
        self.refused: pb.ErrorDetail | None = None
        self.refused_count = 0


class SendWindow:
    """The rooms of the channels one session sends to, and the sends in its window."""

    def __init__(self) -> None:
        self._rooms: dict[str, _Room] = {}
        #: Sends that completed before their result and have no result yet.
        self.size = 0
        #: The last group send of the stream was accepted: the next may return at once.
        self._group_ok = False
        #: The first refusal of a windowed group send not reported yet, its group and count.
        self._group_refused: tuple[str, pb.ErrorDetail] | None = None
        self._group_refused_count = 0
        self._drained: asyncio.Event | None = None
        #: Windowed sends whose stream broke before their result / that were never written.
        self._lost = 0
        self._unsent = 0

    def admit(self, channel: str, capacity: int, open_: bool) -> tuple[int, bool]:
        """A send to ``channel`` is made: returns (tracked capacity or 0, windowed).

        ``open_``: the session is connected. Raises the mapped refusal (ChannelFull) of an
        earlier windowed send to ``channel`` instead; that send is then not made.
        """
        limit = capacity or _DEFAULT_CAPACITY
        room = self._rooms.get(channel)
        if room is None:
            if len(self._rooms) >= ROOMS_LIMIT:
                self._sweep()
                if len(self._rooms) >= ROOMS_LIMIT:
                    return 0, False
            room = self._rooms[channel] = _Room()
        if room.refused is not None:
            refused, count = room.refused, room.refused_count
            room.refused, room.refused_count = None, 0
            raise _refusal(channel, refused, count)
        room.inflight += 1
        windowed = (
            open_
            and self.size < WINDOW_LIMIT
            and room.known_at != 0.0
            and time.monotonic() - room.known_at < ROOM_FRESH
            and room.free - room.inflight >= (limit + 1) // 2
        )
        if windowed:
            self.size += 1
        return limit, windowed

    def admit_group(self, open_: bool) -> bool:
        """A group send is made: True when it returns before its result.

        ``open_``: the session is connected. Raises the mapped refusal of an earlier windowed
        group send instead; that group send is then not made.
        """
        if self._group_refused is not None:
            (group, refused), count = self._group_refused, self._group_refused_count
            self._group_refused, self._group_refused_count = None, 0
            raise _group_refusal(group, refused, count)
        windowed = open_ and self._group_ok and self.size < WINDOW_LIMIT
        if windowed:
            self.size += 1
        return windowed

    def on_group_result(self, group: str, result: pb.OperationResult, windowed: bool) -> None:
        """The result of a group send came (``windowed``: its caller already returned)."""
        if result.HasField("error"):
            self._group_ok = False
            if windowed:
                if self._group_refused is None:
                    self._group_refused = (group, result.error)
                    logger.warning(
                        "chanlayer: a message to group %s was refused after group_send() had "
                        "returned (%s); the next group_send() raises the refusal",
                        group,
                        result.error.message,
                    )
                self._group_refused_count += 1
        else:
            self._group_ok = True
            dropped = result.dropped_count
            if windowed and dropped:
                # What ChannelLayer.group_send logs when it waits for the result.
                logger.info(
                    "%s of %s channels over capacity in group %s",
                    dropped,
                    result.delivered_count + dropped,
                    group,
                )
        if windowed:
            self._settle()

    def stream_ended(self) -> None:
        """The stream ended: the next group send waits for its result again."""
        self._group_ok = False

    def on_result(
        self, channel: str, capacity: int, result: pb.OperationResult, windowed: bool
    ) -> None:
        """The result of a tracked send (``capacity`` > 0) came."""
        room = self._rooms.get(channel)
        if room is not None:
            if room.inflight > 0:
                room.inflight -= 1
            if result.HasField("error"):
                room.free = 0
                room.known_at = time.monotonic()
                if windowed:
                    if room.refused is None:
                        room.refused = result.error
                        logger.warning(
                            "chanlayer: a message to %s was refused after send() had "
                            "returned (%s); the next send() to it raises the refusal",
                            channel,
                            result.error.message,
                        )
                    room.refused_count += 1
            elif result.HasField("queued"):
                room.free = max(capacity - result.queued, 0)
                room.known_at = time.monotonic()
        if windowed:
            self._settle()

    def lost(self, channel: str, *, windowed: bool, written: bool, group: bool = False) -> None:
        """A tracked send or group send left without a result (stream broke, session failed)."""
        room = None if group else self._rooms.get(channel)
        if room is not None and room.inflight > 0:
            room.inflight -= 1
        if windowed:
            if written:
                self._lost += 1
            else:
                self._unsent += 1
            self._settle()

    async def drain(self, timeout: float) -> None:
        """Wait, at most ``timeout`` seconds, until no send is in the window."""
        if self.size > 0:
            if self._drained is None:
                self._drained = asyncio.Event()
            with contextlib.suppress(asyncio.TimeoutError):
                await wait_for(self._drained.wait(), timeout)
        self.log_lost()

    def log_lost(self) -> None:
        """Warn of windowed sends that may not have arrived, once."""
        lost, unsent = self._lost, self._unsent
        self._lost = self._unsent = 0
        if lost:
            logger.warning(
                "chanlayer: the connection was lost before the server acknowledged %d "
                "message(s) whose send() or group_send() had already returned; they may or "
                "may not have been delivered",
                lost,
            )
        if unsent:
            logger.warning(
                "chanlayer: %d message(s) whose send() or group_send() had already returned "
                "were dropped before they could be written (the session closed or failed)",
                unsent,
            )

    def _settle(self) -> None:
        self.size -= 1
        if self.size <= 0:
            self.size = 0
            if self._drained is not None:
                self._drained.set()
                self._drained = None

    def _sweep(self) -> None:
        now = time.monotonic()
        for name, room in list(self._rooms.items()):
            if room.inflight == 0 and room.refused is None and now - room.known_at >= ROOM_FRESH:
                del self._rooms[name]


def _refusal(channel: str, error: pb.ErrorDetail, count: int) -> BaseException:
    message = (
        f"{error.message} ({count} earlier message(s) to this channel were refused after "
        "send() had returned; this message was not sent)"
    )
    exc = error_from_reason(error.code, error.reason, message, channel=channel)
    if isinstance(exc, ChannelFull) and hasattr(exc, "add_note"):
        exc.add_note(message)
    return exc


def _group_refusal(group: str, error: pb.ErrorDetail, count: int) -> BaseException:
    message = (
        f"{error.message} ({count} group_send() call(s) of this session were refused after "
        f"they had returned, the first to group {group}; this message was not sent)"
    )
    return error_from_reason(error.code, error.reason, message)
