"""The version check of the native transport: ``chanlayer_native`` must be the layer's version.

``chanlayer`` and ``chanlayer-native`` are released together, and the first requires the second
at exactly its own version (``pyproject.toml``). An extension of another version (installed by
hand, or left behind by an upgrade of one of the two) is refused when :mod:`chanlayer._native`
imports it, with what to install instead.
"""

from __future__ import annotations

import types

from chanlayer._version import __version__


class NativeVersionMismatch(ImportError):
    """The installed ``chanlayer_native`` is not the version of this ``chanlayer``."""


def check_native_version(ext: types.ModuleType) -> None:
    """Refuse an extension of another version than the layer's.

    Raises:
        NativeVersionMismatch: the versions differ.
    """
    found = getattr(ext, "__version__", "unknown")
    if found != __version__:
        raise NativeVersionMismatch(
            f"chanlayer {__version__} needs chanlayer-native {__version__}, but "
            f"chanlayer-native {found} is installed ({getattr(ext, '__file__', '?')}): install "
            f"matching versions (pip install 'chanlayer-native=={__version__}'), or uninstall "
            "chanlayer-native to use the grpc.aio transport"
        )
