"""Bearer tokens: sent on unary calls and on the session stream; a wrong one is refused."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from chanlayer import ChanlayerError, ChannelLayer

from .conftest import Server

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def auth_server() -> Iterator[Server]:
    srv = Server("--auth-token", TOKEN)
    srv.start()
    yield srv
    srv.stop()


async def test_token_is_sent_on_every_path(auth_server: Server) -> None:
    layer = ChannelLayer(target=auth_server.target, prefix="auth-ok", token=TOKEN)
    try:
        name = await layer.new_channel()
        await layer.send(name, {"type": "unary"})  # before any session: a unary call
        assert (await layer.receive(name))["type"] == "unary"  # opens the session stream
        await layer.send(name, {"type": "stream"})  # rides on the stream
        assert (await layer.receive(name))["type"] == "stream"
        await layer.group_add("g", name)
        assert await layer.group_size("g") == 1
        await layer.flush()
    finally:
        await layer.close()


async def test_wrong_token_is_refused(auth_server: Server) -> None:
    layer = ChannelLayer(target=auth_server.target, prefix="auth-bad", token="wrong")
    try:
        with pytest.raises(ChanlayerError) as info:
            await layer.send("somewhere", {"type": "x"})
        assert info.value.code == grpc.StatusCode.UNAUTHENTICATED.value[0]
        assert info.value.reason == "TOKEN_INVALID"
    finally:
        await layer.close()
