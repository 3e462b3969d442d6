"""The chat consumer: the tutorial's ``ChatConsumer`` plus a live count of the room.

The group protocol is the tutorial's, shared with gateways written in other languages:
every connection of room ``<room>`` is a member of group ``chat_<room>``, and a chat message
is ``group_send`` as ``{"type": "chat_message", "message": <text>}``.

The room count comes from chanlayer's group introspection (``group_size``). After a
connection joins or leaves, it sends ``{"type": "room_count", "count": <n>}`` to the group
so that every page updates at once. Each connection also reads the size again every
``CHAT_ROOM_COUNT_REFRESH`` seconds: when a gateway process dies, nobody leaves the group
explicitly, and chanlayer removes the dead process's memberships when its lease runs out.
That periodic read renews the connection's own membership first (``group_add`` is
idempotent), which keeps it clear of ``group_expiry`` and puts it back in the group after
a restart of a chanlayer server that kept its state in memory.

Messages to the browser are JSON: ``{"message": <text>}`` as in the tutorial,
``{"room_count": <n>}`` and ``{"error": <text>}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chat import room_group_name

logger = logging.getLogger(__name__)


class ChatConsumer(AsyncWebsocketConsumer):
    """One browser connection to one room."""

    room_name = ""
    room_group_name = ""
    _last_count: int | None = None
    _refresher: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        """Join the room's group, accept the socket and tell the room its new size."""
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group_name = room_group_name(self.room_name)
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()
        await self._broadcast_room_count()
        self._refresher = asyncio.create_task(self._refresh_room_count())

    async def disconnect(self, code: int) -> None:
        """Leave the room's group and tell the others its new size."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if not self.room_group_name:
            return
        try:
            await self.channel_layer.group_discard(self.room_group_name, self.channel_name)
        except ConnectionError:
            # chanlayer is unreachable: the membership goes with this process's lease.
            logger.warning("could not leave %s: chanlayer is unreachable", self.room_group_name)
            return
        await self._broadcast_room_count()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Send a message typed in the page to everyone in the room."""
        try:
            message = json.loads(text_data or "")["message"]
        except (ValueError, KeyError, TypeError):
            await self.send(text_data=json.dumps({"error": 'expected {"message": <text>}'}))
            return
        if not isinstance(message, str):
            await self.send(text_data=json.dumps({"error": "a message is a string"}))
            return
        try:
            await self.channel_layer.group_send(
                self.room_group_name, {"type": "chat_message", "message": message}
            )
        except ConnectionError:
            await self.send(text_data=json.dumps({"error": "not sent: the server is away"}))

    async def chat_message(self, event: dict[str, Any]) -> None:
        """Forward a room message to the page."""
        await self._send_to_page({"message": event["message"]})

    async def room_count(self, event: dict[str, Any]) -> None:
        """Forward a new room size to the page."""
        await self._send_count(int(event["count"]))

    async def _send_count(self, count: int) -> None:
        if count != self._last_count:
            self._last_count = count
            await self._send_to_page({"room_count": count})

    async def _send_to_page(self, payload: dict[str, Any]) -> None:
        """Send to the page; a page that went away meanwhile is left to ``disconnect``.

        An error here would end the consumer before ``disconnect`` leaves the group, and its
        refresher would keep the membership alive.
        """
        try:
            await self.send(text_data=json.dumps(payload))
        except Exception as exc:  # daphne raises autobahn's Disconnected
            logger.debug("not sent to %s: the socket is closed (%s)", self.room_name, exc)

    async def _broadcast_room_count(self) -> None:
        try:
            count = await self.channel_layer.group_size(self.room_group_name)
            await self.channel_layer.group_send(
                self.room_group_name, {"type": "room_count", "count": count}
            )
        except ConnectionError:
            logger.warning("room count of %s not sent: chanlayer is unreachable", self.room_name)

    async def _refresh_room_count(self) -> None:
        interval = settings.CHAT_ROOM_COUNT_REFRESH
        while True:
            await asyncio.sleep(interval)
            try:
                await self.channel_layer.group_add(self.room_group_name, self.channel_name)
                count = await self.channel_layer.group_size(self.room_group_name)
            except Exception as exc:
                # Keep counting once the server is back (a restart, say).
                logger.warning("room count of %s not refreshed: %s", self.room_name, exc)
                continue
            await self._send_count(count)
