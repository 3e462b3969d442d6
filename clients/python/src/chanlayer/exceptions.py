"""Exceptions of the chanlayer client, and the one mapping from server errors to exceptions.

Errors the Channels contract defines keep their Channels types: a full channel raises
``channels.exceptions.ChannelFull``, an oversized message ``MessageTooLarge`` and a bad name a
``TypeError`` with Channels' exact text. Everything else is a :class:`ChanlayerError`. The mapping
reads the machine-readable ``reason`` of the server's ``google.rpc.ErrorInfo`` (or of a session
``ErrorDetail``), never the message text.
"""

from __future__ import annotations

from channels.exceptions import ChannelFull, MessageTooLarge
from channels.layers import BaseChannelLayer

from chanlayer._status import StatusCode

__all__ = [
    "ChanlayerError",
    "ChanlayerTimeout",
    "ChannelFull",
    "ClientPrefixInUse",
    "MessageTooLarge",
    "ServerUnavailable",
    "error_from_reason",
]

#: The ``ErrorInfo.domain`` of the server's errors.
ERROR_DOMAIN = "chanlayer.dev"


class ChanlayerError(Exception):
    """A server error without a Channels equivalent.

    Attributes:
        code: The canonical gRPC status code, as a number (0 when unknown).
        reason: The server's machine-readable reason, for example ``PERMISSION_DENIED``.
    """

    def __init__(self, message: str, *, code: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class ServerUnavailable(ChanlayerError, ConnectionError):
    """The server cannot be reached (within ``connect_timeout``) or the connection was lost."""


class ChanlayerTimeout(ChanlayerError, TimeoutError):
    """A call did not complete within its deadline."""


class ClientPrefixInUse(ChanlayerError):
    """Another live session of the namespace holds this layer's client prefix."""


def error_from_reason(
    code: int, reason: str, message: str, *, channel: str | None = None
) -> Exception:
    """Build the exception for a server error.

    Args:
        code: The canonical gRPC status code number (see :class:`~chanlayer._status.StatusCode`).
        reason: The ``ErrorInfo``/``ErrorDetail`` reason ("" when the server sent none).
        message: The human-readable text, only used as the exception's message.
        channel: The channel of a send, carried by ``ChannelFull``.
    """
    exc: Exception
    if reason == "CHANNEL_FULL":
        exc = ChannelFull(channel) if channel is not None else ChannelFull()
        return exc
    if reason == "MESSAGE_TOO_LARGE":
        exc = MessageTooLarge(message)
        return exc
    if reason == "INVALID_CHANNEL_NAME":
        return TypeError(BaseChannelLayer.invalid_name_error.format("Channel"))
    if reason == "INVALID_GROUP_NAME":
        return TypeError(BaseChannelLayer.invalid_name_error.format("Group"))
    if reason == "CLIENT_PREFIX_IN_USE":
        return ClientPrefixInUse(message, code=code, reason=reason)
    if code in (StatusCode.RESOURCE_EXHAUSTED, StatusCode.OUT_OF_RANGE) and not reason:
        # gRPC's own frame-size limit, hit before the server could look at the message.
        exc = MessageTooLarge(message)
        return exc
    if code == StatusCode.UNAVAILABLE:
        return ServerUnavailable(message, code=code, reason=reason)
    if code == StatusCode.DEADLINE_EXCEEDED:
        return ChanlayerTimeout(message, code=code, reason=reason)
    return ChanlayerError(message or reason, code=code, reason=reason)
