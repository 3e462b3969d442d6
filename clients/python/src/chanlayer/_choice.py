"""Which transport a layer uses, and why.

``chanlayer`` depends on ``chanlayer-native`` (the extension of :mod:`chanlayer._native`, the
same version) on the platforms that have wheels of it: CPython on Linux x86_64 and aarch64, and
on macOS (see ``pyproject.toml``). There ``"auto"`` expects the native transport, and falling
back to grpc.aio is a warning, since the layer is then several times slower; elsewhere grpc.aio
is the expected transport. The choice is logged once per layer, at its first connection, by
:func:`log_choice`.

A ``chanlayer_native`` of another version than the layer's is refused when it is imported
(:class:`~chanlayer._native_version.NativeVersionMismatch`), whatever the mode: the two are released
together and a mix of versions is a broken install, not a reason to fall back.
"""

from __future__ import annotations

import logging
import platform
import sys
from typing import TYPE_CHECKING, NamedTuple

from chanlayer._native_version import NativeVersionMismatch

if TYPE_CHECKING:
    from chanlayer._transport import TransportConfig

logger = logging.getLogger("chanlayer")

#: True where ``pip install chanlayer`` brings the native transport (the marker of the
#: ``chanlayer-native`` requirement in ``pyproject.toml``).
NATIVE_EXPECTED = platform.python_implementation() == "CPython" and (
    (sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64"))
    or sys.platform == "darwin"
)


class Choice(NamedTuple):
    """The transport a layer uses (``"native"`` or ``"grpc"``), why, and how loudly to say so."""

    transport: str
    reason: str
    level: int = logging.INFO


def choose_transport(mode: str, config: TransportConfig) -> Choice:
    """Resolve the ``transport`` setting to "native" or "grpc", with the reason.

    Raises:
        ValueError: an unknown mode, or "native" for a target the extension cannot reach.
        ImportError: "native" without the extension installed, or (any mode) an extension of
            another version than the layer's.
    """
    if mode not in ("auto", "native", "grpc"):
        raise ValueError(f"transport must be 'auto', 'native' or 'grpc', not {mode!r}")
    if mode == "grpc":
        return Choice("grpc", "grpc.aio, as the transport setting asks")
    try:
        from chanlayer._native import native_uri
    except ImportError as exc:
        if mode == "native" or isinstance(exc, NativeVersionMismatch):
            raise
        if NATIVE_EXPECTED:
            return Choice(
                "grpc",
                f"grpc.aio, because the native transport cannot be imported ({exc}); it is "
                "expected on this platform and several times faster: "
                "pip install chanlayer-native (or set transport='grpc' to silence this)",
                logging.WARNING,
            )
        return Choice(
            "grpc",
            f"grpc.aio: no native transport is published for {sys.platform} "
            f"{platform.machine()} {platform.python_implementation()}",
        )
    if native_uri(config) is None:
        if mode == "native":
            raise ValueError(f"the native transport cannot reach {config.target!r}")
        return Choice(
            "grpc",
            f"grpc.aio, because the native transport cannot reach {config.target!r} "
            "(a target scheme or TLS setting only grpc.aio supports)",
        )
    if mode == "native":
        return Choice("native", "native (chanlayer-native), as the transport setting asks")
    return Choice("native", "native (chanlayer-native), installed and able to reach the target")


def log_choice(choice: Choice, target: str) -> None:
    """Log which transport a layer uses and why (once per layer, at its first connection)."""
    logger.log(choice.level, "chanlayer layer for %s: transport %s", target, choice.reason)
