"""The layer on a server listening on a Unix domain socket (``--listen unix:PATH``), on the
transport of the run (``CHANLAYER_TRANSPORT``; the native one speaks HTTP/2 over the socket on
the loop's thread, or on its tokio thread with ``CHANLAYER_NATIVE_IO=threaded``)."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator

import pytest
from channels.layers import ChannelLayerManager
from django.test import override_settings

from chanlayer import ChannelLayer, ServerUnavailable

from .conftest import Server


@pytest.fixture(scope="module")
def unix_server() -> Iterator[Server]:
    srv = Server("--auth-token", "sock-token", unix=True)
    srv.start()
    yield srv
    srv.stop()


def _layer(server: Server, **config: object) -> ChannelLayer:
    config.setdefault("target", server.target)
    config.setdefault("prefix", f"u{os.urandom(4).hex()}")
    config.setdefault("token", "sock-token")
    config.setdefault("connect_timeout", 5)
    return ChannelLayer(**config)  # type: ignore[arg-type]


def _expected_transport() -> str:
    forced = os.environ.get("CHANLAYER_TRANSPORT")
    if forced in ("native", "grpc"):
        return forced
    try:
        import chanlayer._native  # noqa: F401
    except ImportError:
        return "grpc"
    return "native"


async def test_send_receive_and_groups_over_the_socket(unix_server: Server) -> None:
    assert unix_server.socket_path is not None
    mode = stat.S_IMODE(os.stat(unix_server.socket_path).st_mode)
    assert mode == 0o660
    layer = _layer(unix_server)
    assert layer.transport == _expected_transport()
    await layer.send("normal", {"type": "m", "n": 1})
    assert (await layer.receive("normal"))["n"] == 1

    members = [await layer.new_channel() for _ in range(3)]
    for member in members:
        await layer.group_add("room", member)
    await layer.group_send("room", {"type": "g", "text": "hi"})
    for member in members:
        assert (await layer.receive(member))["text"] == "hi"
    await layer.group_discard("room", members[0])
    await layer.group_send("room", {"type": "g", "text": "again"})
    for member in members[1:]:
        assert (await layer.receive(member))["text"] == "again"

    # Many messages in flight on the socket at once.
    target = members[1]
    await asyncio.gather(*(layer.send(target, {"type": "b", "n": n}) for n in range(50)))
    got = [(await layer.receive(target))["n"] for _ in range(50)]
    assert sorted(got) == list(range(50))
    await layer.flush()
    await layer.close()


async def test_the_django_setting_names_the_socket(unix_server: Server) -> None:
    config = {
        "target": f"unix://{unix_server.socket_path}",
        "prefix": f"dj{os.urandom(4).hex()}",
        "token": "sock-token",
    }
    with override_settings(
        CHANNEL_LAYERS={"default": {"BACKEND": "chanlayer.ChannelLayer", "CONFIG": config}}
    ):
        layer = ChannelLayerManager().make_backend("default")
    assert isinstance(layer, ChannelLayer)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "django"})
    assert (await layer.receive(channel))["type"] == "django"
    await layer.flush()
    await layer.close()


async def test_the_token_applies_over_the_socket(unix_server: Server) -> None:
    layer = _layer(unix_server, token="wrong")
    with pytest.raises(Exception, match=r"(?i)token"):
        await layer.send("c", {"type": "m"})
    await layer.close()


async def test_an_absent_socket_is_unavailable(tmp_path: os.PathLike[str]) -> None:
    layer = ChannelLayer(target=f"unix:{tmp_path}/missing.sock", connect_timeout=0.5)
    with pytest.raises(ServerUnavailable):
        await layer.send("c", {"type": "m"})
    await layer.close()


async def test_a_killed_server_comes_back_on_the_same_socket() -> None:
    """Killed, the server leaves its socket file; the next one replaces it, and the layer
    reconnects by itself."""
    server = Server(unix=True)
    server.start()
    try:
        layer = ChannelLayer(target=server.target, connect_timeout=15)
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "before"})
        assert (await layer.receive(channel))["type"] == "before"
        await asyncio.to_thread(server.stop, kill=True)
        assert server.socket_path is not None
        assert await asyncio.to_thread(os.path.exists, server.socket_path), "left by SIGKILL"
        await asyncio.to_thread(server.start)
        await layer.send("after-restart", {"type": "after"})
        assert (await layer.receive("after-restart"))["type"] == "after"
        await layer.close()
        await asyncio.to_thread(server.stop)
        removed = not await asyncio.to_thread(os.path.exists, server.socket_path)
        assert removed, "removed at a clean shutdown"
    finally:
        server.stop()
