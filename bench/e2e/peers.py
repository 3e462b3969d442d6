"""The peers' layers with the one call the chat example uses beyond the Channels spec.

The chat example reads the room size with chanlayer's ``group_size``. channels_redis core
answers it from its group sorted set (``ZCARD``, what it stores anyway); channels_redis
pubsub and channels-nats keep no server-side group and answer 0, so their room count stays
at 0 while the chat itself works the same.
"""

from __future__ import annotations

from channels_nats import NatsChannelLayer
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer


class RedisCore(RedisChannelLayer):
    """channels_redis core with ``group_size``."""

    async def group_size(self, group: str) -> int:
        """Return the group's member count (``ZCARD`` of its sorted set)."""
        key = self._group_key(group)
        connection = self.connection(self.consistent_hash(group))
        return int(await connection.zcard(key))


class RedisPubSub(RedisPubSubChannelLayer):
    """channels_redis pubsub with a ``group_size`` of 0 (it keeps no server-side group)."""

    async def group_size(self, group: str) -> int:
        """Return 0: pub/sub groups have no server-side member list."""
        return 0


class Nats(NatsChannelLayer):
    """channels-nats with a ``group_size`` of 0 (it keeps no server-side group)."""

    async def group_size(self, group: str) -> int:
        """Return 0: NATS groups have no server-side member list."""
        return 0
