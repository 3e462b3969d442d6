"""Django Channels end to end: consumers with groups, and runworker on a normal channel."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from chanlayer import ChannelLayer

from .conftest import Server


class ChatConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    groups = ["chat-room"]

    async def receive_json(self, content: dict[str, str], **kwargs: object) -> None:
        await self.channel_layer.group_send(
            "chat-room", {"type": "chat.message", "text": content["text"]}
        )

    async def chat_message(self, event: dict[str, str]) -> None:
        await self.send_json({"text": event["text"]})


@pytest.fixture
def layer_settings(server: Server) -> Iterator[dict[str, object]]:
    config = {"target": server.target, "prefix": f"dj{os.urandom(4).hex()}"}
    with override_settings(
        CHANNEL_LAYERS={"default": {"BACKEND": "chanlayer.ChannelLayer", "CONFIG": config}}
    ):
        yield config


@pytest.fixture
async def django_layer(layer_settings: dict[str, object]) -> AsyncIterator[ChannelLayer]:
    layer = get_channel_layer()
    assert isinstance(layer, ChannelLayer)
    yield layer
    await layer.flush()
    await layer.close()


async def test_consumer_groups_through_websocket_communicator(django_layer: ChannelLayer) -> None:
    app = ChatConsumer.as_asgi()
    alice = WebsocketCommunicator(app, "/ws/chat/")
    bob = WebsocketCommunicator(app, "/ws/chat/")
    assert (await alice.connect())[0]
    assert (await bob.connect())[0]
    assert await django_layer.group_size("chat-room") == 2

    await alice.send_json_to({"text": "hello"})
    assert await alice.receive_json_from(timeout=5) == {"text": "hello"}
    assert await bob.receive_json_from(timeout=5) == {"text": "hello"}

    await bob.disconnect()
    assert await django_layer.group_size("chat-room") == 1

    # A sync caller (a view or a signal) on another thread, through async_to_sync.
    def from_view() -> None:
        async_to_sync(django_layer.group_send)(
            "chat-room", {"type": "chat.message", "text": "from a view"}
        )

    thread = threading.Thread(target=from_view)
    thread.start()
    await asyncio.to_thread(thread.join, 10)
    assert await alice.receive_json_from(timeout=5) == {"text": "from a view"}
    assert await alice.receive_nothing(timeout=0.2)
    await alice.disconnect()
    assert await django_layer.group_size("chat-room") == 0


WORKER_APP = """
from channels.consumer import AsyncConsumer
from channels.routing import ChannelNameRouter, ProtocolTypeRouter


class Doubler(AsyncConsumer):
    async def task_double(self, message):
        await self.channel_layer.send(
            message["reply_to"], {"type": "task.done", "value": message["value"] * 2}
        )


application = ProtocolTypeRouter(
    {"channel": ChannelNameRouter({"worker-tasks": Doubler.as_asgi()})}
)
"""

WORKER_SETTINGS = """
import os

SECRET_KEY = "test"
INSTALLED_APPS = ["channels"]
ASGI_APPLICATION = "workerapp.application"
USE_TZ = True
CHANNEL_LAYERS = {{
    "default": {{
        "BACKEND": "chanlayer.ChannelLayer",
        "CONFIG": {{"target": {target!r}, "prefix": {prefix!r}}},
    }}
}}
"""


async def test_runworker_consumes_a_normal_channel(
    tmp_path: Path, layer_settings: dict[str, object], django_layer: ChannelLayer
) -> None:
    (tmp_path / "workerapp.py").write_text(textwrap.dedent(WORKER_APP))
    (tmp_path / "workersettings.py").write_text(WORKER_SETTINGS.format(**layer_settings))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "DJANGO_SETTINGS_MODULE": "workersettings"}
    worker = subprocess.Popen(  # noqa: ASYNC220 (started once, before any awaiting)
        [sys.executable, "-m", "django", "runworker", "worker-tasks"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        reply_to = await django_layer.new_channel()
        for value in (1, 2, 3):
            await django_layer.send(
                "worker-tasks", {"type": "task.double", "value": value, "reply_to": reply_to}
            )
        results = []
        for _ in range(3):
            message = await asyncio.wait_for(django_layer.receive(reply_to), 30)
            results.append(message["value"])
        assert results == [2, 4, 6]
    finally:
        worker.terminate()
        try:
            output, _ = await asyncio.to_thread(worker.communicate, timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
    assert b"Traceback" not in output, output.decode(errors="replace")
