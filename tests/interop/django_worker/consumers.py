"""The worker's consumer: answers ``echo.request`` messages of the normal channel ``interop-echo``.

A request is ``{"type": "echo.request", "text": <str>, "reply_channel": <channel>}``; the answer,
sent to ``reply_channel``, is ``{"type": "echo.reply", "text": <the same str>, "handled_by":
"django-runworker", "pid": <the worker's pid>}``.
"""

from __future__ import annotations

import os
from typing import Any

from channels.consumer import AsyncConsumer


class EchoConsumer(AsyncConsumer):
    """Replies to every request on the channel it was asked to reply on."""

    async def echo_request(self, message: dict[str, Any]) -> None:
        """Send the request's text back to its ``reply_channel``."""
        await self.channel_layer.send(
            message["reply_channel"],
            {
                "type": "echo.reply",
                "text": message["text"],
                "handled_by": "django-runworker",
                "pid": os.getpid(),
            },
        )
