"""Settings of the chat example for the WebSocket benchmark: the same app on any layer.

``BENCH_LAYER`` picks the channel layer (``chanlayer``, ``redis-core``, ``redis-pubsub`` or
``nats``) and ``BENCH_CHANLAYER``, ``BENCH_REDIS`` and ``BENCH_NATS`` give the servers'
addresses. The periodic room-count refresh of each connection is turned off (one hour), so
that the only traffic measured is the chat's broadcast.
"""

import os

from mysite.settings import *  # noqa: F403

DEBUG = False
CHAT_ROOM_COUNT_REFRESH = 3600.0
_layer = os.environ["BENCH_LAYER"]
_capacity = 10_000
if _layer == "chanlayer":
    _config = {"target": os.environ["BENCH_CHANLAYER"], "capacity": _capacity}
    _backend = "chanlayer.ChannelLayer"
elif _layer in ("redis-core", "redis-pubsub"):
    _host, _port = os.environ["BENCH_REDIS"].rsplit(":", 1)
    _config = {"hosts": [(_host, int(_port))], "capacity": _capacity}
    _backend = "peers.RedisCore" if _layer == "redis-core" else "peers.RedisPubSub"
elif _layer == "nats":
    _config = {"servers": os.environ["BENCH_NATS"], "capacity": _capacity}
    _backend = "peers.Nats"
else:
    raise ValueError(f"unknown BENCH_LAYER {_layer!r}")
CHANNEL_LAYERS = {"default": {"BACKEND": _backend, "CONFIG": _config}}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
