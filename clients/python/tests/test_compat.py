"""channels_redis' public API beyond the spec: close_pools, wait_received, and the rule that
only the layer that made a process-specific channel receives on it."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync

from chanlayer import ChannelLayer


def test_double_receive_with_close_pools(make_layer: type[ChannelLayer]) -> None:
    """channels_redis' test: sends and receives on separate loops, each closing its pools."""
    layer = make_layer(capacity=3)

    async def send_and_close(channel: str, message: dict[str, str]) -> None:
        await layer.send(channel, message)
        await layer.close_pools()

    name_1 = async_to_sync(layer.new_channel)()
    name_2 = async_to_sync(layer.new_channel)()
    async_to_sync(send_and_close)(name_1, {"type": "test.message.1"})
    async_to_sync(send_and_close)(name_2, {"type": "test.message.2"})

    async def listen(channel: str, kind: str) -> None:
        assert (await layer.receive(channel))["type"] == kind
        await layer.close_pools()

    async_to_sync(listen)(name_2, "test.message.2")
    async_to_sync(listen)(name_1, "test.message.1")
    assert layer._states == {}
    async_to_sync(layer.flush)()


async def test_close_pools_keeps_channels_messages_and_groups(
    make_layer: type[ChannelLayer],
) -> None:
    """The session is detached, not released: what it holds on the server stays."""
    layer = make_layer()
    sender = make_layer()
    name = await layer.new_channel()
    await layer.group_add("pools", name)
    await sender.send(name, {"type": "direct"})
    assert (await layer.receive(name))["type"] == "direct"  # opens the session
    await sender.send(name, {"type": "queued"})
    await layer.close_pools()
    assert layer._states == {}
    await sender.group_send("pools", {"type": "group"})
    assert await sender.group_size("pools") == 1
    # The layer reconnects on its next call and resumes the session.
    assert (await asyncio.wait_for(layer.receive(name), 5))["type"] == "queued"
    assert (await asyncio.wait_for(layer.receive(name), 5))["type"] == "group"
    await layer.close_pools()
    await layer.close_pools()  # nothing left to close: a no-op
    await layer.close()
    await sender.close()


async def test_flush_then_close_pools(make_layer: type[ChannelLayer]) -> None:
    """What channels_redis' fixtures do at teardown, on a layer with and without a session."""
    for receive_first in (False, True):
        layer = make_layer()
        await layer.send("pools.flush", {"type": "m"})
        if receive_first:
            assert (await layer.receive("pools.flush"))["type"] == "m"
        await layer.flush()
        await layer.close_pools()
        assert layer._states == {}


async def test_wait_received(make_layer: type[ChannelLayer]) -> None:
    layer = make_layer()
    await layer.wait_received()  # no connection yet
    name = await layer.new_channel()
    for n in range(20):
        await layer.send(name, {"type": "m", "n": n})
    await layer.wait_received()
    assert await layer.channel_depth(name) == 20
    assert [(await layer.receive(name))["n"] for _ in range(20)] == list(range(20))
    await layer.close()


def test_channels_redis_attributes(make_layer: type[ChannelLayer]) -> None:
    layer = make_layer(expiry=7, group_expiry=9, capacity=5, channel_capacity={"tiny": 1})
    assert layer.extensions == ["groups", "flush"]
    assert (layer.expiry, layer.group_expiry, layer.capacity) == (7, 9, 5)
    assert layer.get_capacity("tiny") == 1
    assert layer.get_capacity("other") == 5
    assert len(layer.client_prefix) == 32


async def test_receive_on_a_foreign_client_prefix_asserts_before_connecting() -> None:
    """channels_redis raises AssertionError("Wrong client prefix"); no call is made."""
    layer = ChannelLayer(target="127.0.0.1:1", connect_timeout=0.2)
    with pytest.raises(AssertionError, match="Wrong client prefix"):
        await layer.receive("not-client-prefix!local_part")
    with pytest.raises(AssertionError, match="Wrong client prefix"):
        await layer.receive(f"specific.x{layer.client_prefix}!local_part")
    with pytest.raises(TypeError):  # name validation comes first, as in channels_redis
        await layer.receive("=+135!")
    assert layer._states == {}


async def test_receive_on_another_layers_channel_asserts(make_layer: type[ChannelLayer]) -> None:
    owner = make_layer()
    thief = make_layer()
    name = await owner.new_channel()
    other = await owner.new_channel(prefix="custom-prefix")
    await thief.send(name, {"type": "for-owner"})
    await thief.send(other, {"type": "for-owner-too"})
    for channel in (name, other):
        with pytest.raises(AssertionError, match="Wrong client prefix"):
            await thief.receive(channel)
    assert (await asyncio.wait_for(owner.receive(name), 5))["type"] == "for-owner"
    assert (await asyncio.wait_for(owner.receive(other), 5))["type"] == "for-owner-too"
    # A bare "<client_prefix>!..." name is the owner's too.
    bare = f"{owner.client_prefix}!bare"
    await thief.send(bare, {"type": "bare"})
    assert (await asyncio.wait_for(owner.receive(bare), 5))["type"] == "bare"
    await owner.close()
    await thief.close()


@pytest.mark.parametrize("specific", [True, False])
async def test_local_buffers_are_bounded_by_prefetch(
    make_layer: type[ChannelLayer], specific: bool
) -> None:
    """What channels_redis' receive_buffer capacity bound (its #212) guards against: a reader
    that stops reading never pulls a backlog into the process. Messages leave the server only
    for a receive, at most ``prefetch`` (``normal_prefetch``) at a time."""
    layer = make_layer(capacity=1000, prefetch=16, normal_prefetch=8)
    name = await layer.new_channel() if specific else "bounded.normal"
    for n in range(500):
        await layer.send(name, {"type": "m", "n": n})
    assert (await layer.receive(name))["n"] == 0
    await asyncio.sleep(0.2)
    assert await layer.channel_depth(name) >= 500 - (16 if specific else 8)
    await layer.close()
