"""``LayerState``: what a layer's sessions share, owned by the layer and handed to each session.

One :class:`~chanlayer.core.ChannelLayer` runs one session per event loop (see
:mod:`chanlayer._session` and :mod:`chanlayer._native`). What outlives a session, or is shared
by the sessions of one layer, lives here and nowhere else:

* the settings a session opens with: namespace, client prefix and name, ``connect_timeout``,
  prefetch limits and the ``channel_capacity`` rules sent with a group send;
* the resume token of the session holding the client prefix, and the detached sessions that
  hold no specific channel (spares, for the next loop to resume);
* the group memberships of the layer's own specific channels, replayed when the server lost
  them;
* the messages fetched ahead, per channel, until a ``receive()`` takes them;
* the largest message the server accepts, once a session learned it.

This module imports no other module of the package but the generated messages: the layer and
the sessions import it, never each other through it.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from chanlayer._proto.v1 import channel_layer_pb2 as pb

#: At most this many channel_capacity rules travel with a group_send.
MAX_CAPACITY_RULES = 64
#: Seconds between sweeps of expired messages out of the prefetch buffers.
_SWEEP_INTERVAL = 10.0


def capacity_rules(channel_capacity: Mapping[Any, int]) -> list[pb.CapacityRule]:
    """The ``channel_capacity`` setting as the rules a group send carries.

    Raises:
        TypeError: a key is neither a glob string nor a compiled regex.
        ValueError: more than :data:`MAX_CAPACITY_RULES` patterns.
    """
    rules = []
    for pattern, cap in channel_capacity.items():
        if isinstance(pattern, str):
            rules.append(pb.CapacityRule(glob=pattern, capacity=int(cap)))
        elif hasattr(pattern, "pattern"):
            rules.append(pb.CapacityRule(regex=str(pattern.pattern), capacity=int(cap)))
        else:
            raise TypeError(f"channel_capacity keys must be globs or regexes, not {pattern!r}")
    if len(rules) > MAX_CAPACITY_RULES:
        raise ValueError(f"channel_capacity may hold at most {MAX_CAPACITY_RULES} patterns")
    return rules


class LayerState:
    """The state a layer's sessions share (see the module docs).

    Attributes:
        target: The server address, for error messages.
        prefix: The namespace of the layer's channels and groups.
        client_prefix: Names the layer's specific channels; the session prefix it proposes.
        client_name: Sent when a session opens.
        connect_timeout: Seconds a session may stay disconnected before its callers fail.
        prefetch: Most messages one receive on a specific channel may fetch ahead.
        normal_prefetch: Most messages one receive on a normal channel may fetch ahead.
        capacity_rules: The ``channel_capacity`` rules sent with each group send.
        resume_token: The token of the session holding ``client_prefix`` ("" before one
            opened, or after it was released).
        max_message_bytes: The server's message size limit, once a session learned it.
        buffers: The messages fetched ahead, per channel: (monotonic deadline, payload),
            oldest first. Empty when none is buffered (a cheap test on the receive path).
    """

    def __init__(
        self,
        *,
        target: str,
        prefix: str,
        client_prefix: str,
        client_name: str,
        connect_timeout: float,
        prefetch: int,
        normal_prefetch: int,
        capacity_rules: list[pb.CapacityRule],
    ) -> None:
        self.target = target
        self.prefix = prefix
        self.client_prefix = client_prefix
        self.client_name = client_name
        self.connect_timeout = connect_timeout
        self.prefetch = prefetch
        self.normal_prefetch = normal_prefetch
        self.capacity_rules = capacity_rules
        self.resume_token = ""
        self.max_message_bytes: int | None = None
        self.buffers: dict[str, deque[tuple[float, bytes]]] = {}
        self._last_sweep = time.monotonic()
        #: (client prefix, resume token) of detached sessions that hold no specific channels of
        #: this layer, for the next loop to resume instead of opening one more session.
        self._spare_sessions: list[tuple[str, str]] = []
        #: Group memberships of this layer's own specific channels: (group, channel) -> the
        #: monotonic time the membership expires. Replayed when a server lost them (restart).
        self._memberships: dict[tuple[str, str], float] = {}

    ### Sessions ###

    def take_spare_session(self) -> tuple[str, str] | None:
        """Return (client prefix, resume token) of a detached spare session, or None."""
        if self._spare_sessions:
            with contextlib.suppress(IndexError):
                return self._spare_sessions.pop()
        return None

    def keep_spare_session(self, client_prefix: str, resume_token: str) -> None:
        """Keep a detached session that holds no specific channel, for the next loop."""
        self._spare_sessions.append((client_prefix, resume_token))

    def release_client_prefix(self) -> None:
        """The session holding the client prefix was released: forget its token and groups."""
        self.resume_token = ""
        self._memberships.clear()

    def max_messages(self, channel: str) -> int:
        """The most messages one receive of ``channel`` may fetch."""
        return self.prefetch if "!" in channel else self.normal_prefetch

    ### Memberships of the layer's own specific channels ###

    def remember_membership(self, group: str, channel: str, expiry_s: float) -> None:
        """Record (or refresh) that ``channel`` is in ``group`` for ``expiry_s`` seconds."""
        self._memberships[(group, channel)] = time.monotonic() + expiry_s

    def forget_membership(self, group: str, channel: str) -> None:
        """Forget a membership (``group_discard``)."""
        self._memberships.pop((group, channel), None)

    def memberships_to_restore(self) -> list[tuple[str, str, int]]:
        """Return (group, channel, expiry seconds) for each unexpired own membership."""
        now = time.monotonic()
        restore = []
        for (group, channel), deadline in list(self._memberships.items()):
            remaining = deadline - now
            if remaining <= 0:
                self._memberships.pop((group, channel), None)
            else:
                restore.append((group, channel, max(1, int(remaining))))
        return restore

    def forget_namespace(self) -> None:
        """The namespace was flushed: drop buffered messages and remembered memberships."""
        self.buffers.clear()
        self._memberships.clear()

    ### Messages fetched ahead ###

    def buffer_messages(self, channel: str, messages: Iterable[pb.DeliveredMessage]) -> None:
        """Queue delivered messages for the next receives of ``channel``."""
        now = time.monotonic()
        buffer = self.buffers.get(channel)
        if buffer is None:
            buffer = self.buffers[channel] = deque()
        for item in messages:
            buffer.append((now + item.expires_in_ms / 1000.0, item.message))
        if now - self._last_sweep > _SWEEP_INTERVAL:
            self._sweep(now)

    def keep_buffered(self, channel: str, messages: list[tuple[float, bytes]]) -> None:
        """Put messages a closed session had fetched ahead (deadline, payload) first."""
        buffer = self.buffers.get(channel)
        if buffer is None:
            buffer = self.buffers[channel] = deque()
        buffer.extendleft(reversed(messages))

    def pop_buffered(self, channel: str) -> bytes | None:
        """Take the oldest unexpired buffered message of ``channel``, or None."""
        item = self.pop_buffered_item(channel)
        return None if item is None else item[1]

    def pop_buffered_item(self, channel: str) -> tuple[float, bytes] | None:
        """Take the oldest unexpired buffered message of ``channel``: (deadline, payload)."""
        buffer = self.buffers.get(channel)
        if buffer is None:
            return None
        now = time.monotonic()
        found = None
        while buffer:
            item = buffer.popleft()
            if item[0] > now:
                found = item
                break
        if not buffer:
            self.buffers.pop(channel, None)
        return found

    def take_buffered(self, channel: str) -> list[tuple[int, bytes]]:
        """Take every unexpired buffered message of ``channel``: (ms left, payload)."""
        buffer = self.buffers.pop(channel, None)
        if not buffer:
            return []
        now = time.monotonic()
        return [
            (max(1, int((deadline - now) * 1000)), data)
            for deadline, data in buffer
            if deadline > now
        ]

    def buffered_count(self, channel: str) -> int:
        """How many messages of ``channel`` are buffered (expired ones included)."""
        buffer = self.buffers.get(channel)
        return len(buffer) if buffer else 0

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        for name, buffer in list(self.buffers.items()):
            while buffer and buffer[0][0] <= now:
                buffer.popleft()
            if not buffer:
                self.buffers.pop(name, None)
