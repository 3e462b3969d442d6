"""chanlayer: a Django Channels channel layer backed by the chanlayer gRPC server.

Use it with one setting::

    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chanlayer.ChannelLayer",
            "CONFIG": {"target": "127.0.0.1:50051"},
        }
    }
"""

from chanlayer._version import __version__
from chanlayer.core import ChannelLayer
from chanlayer.exceptions import (
    ChanlayerError,
    ChanlayerTimeout,
    ClientPrefixInUse,
    ServerUnavailable,
)

__all__ = [
    "ChanlayerError",
    "ChanlayerTimeout",
    "ChannelLayer",
    "ClientPrefixInUse",
    "ServerUnavailable",
    "__version__",
]
