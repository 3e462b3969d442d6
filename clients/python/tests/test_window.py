"""Sends that complete before their result (the send window), and
receives on normal channels that fetch what is already queued (``normal_prefetch``)."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading

import pytest
from channels.exceptions import ChannelFull

from chanlayer import ChannelLayer
from chanlayer.exceptions import ChanlayerError


async def _open_session(layer: ChannelLayer) -> None:
    """Open the running loop's session stream (a loop opens it on its first receive)."""
    name = await layer.new_channel()
    await layer.send(name, {"type": "open"})
    await layer.receive(name)


async def test_capacity_stays_exact_on_a_session(make_layer: type[ChannelLayer]) -> None:
    layer = make_layer(capacity=100)
    await _open_session(layer)
    for i in range(100):
        await layer.send("window.full", {"type": "m", "n": i})
    with pytest.raises(ChannelFull):
        await layer.send("window.full", {"type": "m", "n": 100})
    got = [(await layer.receive("window.full"))["n"] for _ in range(100)]
    assert got == list(range(100))
    await layer.flush()
    await layer.close()


async def test_a_producer_and_a_consumer_lose_nothing(make_layer: type[ChannelLayer]) -> None:
    layer = make_layer()
    await _open_session(layer)
    channel = await layer.new_channel()
    count = 3000
    received: list[int] = []

    async def consume() -> None:
        for _ in range(count):
            received.append((await layer.receive(channel))["n"])

    consumer = asyncio.create_task(consume())
    for i in range(count):
        await layer.send(channel, {"type": "m", "n": i})
    await asyncio.wait_for(consumer, 30)
    assert received == list(range(count))
    await layer.close()


async def test_a_late_refusal_is_logged_and_raised_by_the_next_send(
    make_layer: type[ChannelLayer], caplog: pytest.LogCaptureFixture
) -> None:
    layer = make_layer(capacity=10)
    other = make_layer(capacity=10)
    await _open_session(layer)
    await layer.send("window.race", {"type": "first"})  # acknowledged: 9 places free
    for _ in range(9):  # another sender fills the channel meanwhile
        await other.send("window.race", {"type": "other"})
    with caplog.at_level(logging.WARNING, logger="chanlayer"):
        await layer.send("window.race", {"type": "early"})  # returns before it is refused
        await asyncio.sleep(0.2)
    assert "window.race was refused after send() had returned" in caplog.text
    with pytest.raises(ChannelFull) as refused:
        await layer.send("window.race", {"type": "reported"})
    assert refused.value.args == ("window.race",)
    if sys.version_info >= (3, 11):
        assert "refused after send() had returned" in " ".join(refused.value.__notes__)
    with pytest.raises(ChannelFull):  # the channel is still full: an ordinary refusal
        await layer.send("window.race", {"type": "plain"})
    assert await other.channel_depth("window.race") == 10
    await layer.flush()
    await layer.close()
    await other.close()


def test_sends_reach_the_server_when_the_loop_ends(
    make_layer: type[ChannelLayer], caplog: pytest.LogCaptureFixture
) -> None:
    """asyncio.run() cancels every task, the session's among them, as the sends' frame is
    being written: the frame is written all the same, and the results read."""
    sender = make_layer(capacity=1000)

    async def produce() -> None:
        await _open_session(sender)
        for i in range(500):
            await sender.send("window.shutdown", {"type": "m", "n": i})

    thread = threading.Thread(target=asyncio.run, args=(produce(),))
    with caplog.at_level(logging.WARNING, logger="chanlayer"):
        thread.start()
        thread.join(30)
    assert not thread.is_alive()
    # Every result came: none is reported lost or unsent.
    assert [r.getMessage() for r in caplog.records if r.name == "chanlayer"] == []

    async def check() -> None:
        reader = make_layer(capacity=1000)
        assert await reader.channel_depth("window.shutdown") == 500
        got = [(await reader.receive("window.shutdown"))["n"] for _ in range(500)]
        assert got == list(range(500))
        await reader.flush()
        await reader.close()

    asyncio.run(check())


async def test_introspection_sees_every_send_that_returned(
    make_layer: type[ChannelLayer],
) -> None:
    layer = make_layer(capacity=1000)
    await _open_session(layer)
    for i in range(300):
        await layer.send("window.depth", {"type": "m", "n": i})
    assert await layer.channel_depth("window.depth") == 300
    await layer.flush()
    await layer.close()


async def test_flush_comes_after_every_send(make_layer: type[ChannelLayer]) -> None:
    layer = make_layer(capacity=1000)
    await _open_session(layer)
    for i in range(300):
        await layer.send("window.flush", {"type": "m", "n": i})
    await layer.flush()
    await asyncio.sleep(0.1)
    assert await layer.channel_depth("window.flush") == 0
    await layer.close()


async def test_normal_channel_readers_share_without_duplicates(
    make_layer: type[ChannelLayer],
) -> None:
    sender = make_layer(capacity=1000)
    readers = [make_layer(capacity=1000) for _ in range(3)]
    count = 600
    got: list[list[int]] = [[] for _ in readers]
    stop = asyncio.Event()

    async def read(index: int) -> None:
        while True:
            message = await readers[index].receive("window.shared")
            got[index].append(message["n"])
            if sum(len(g) for g in got) == count:
                stop.set()

    tasks = [asyncio.create_task(read(i)) for i in range(len(readers))]
    for i in range(count):
        await sender.send("window.shared", {"type": "m", "n": i})
    await asyncio.wait_for(stop.wait(), 30)
    await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    every = sorted(n for g in got for n in g)
    assert every == list(range(count))
    for g in got:  # one writer: each reader sees its share in order
        assert g == sorted(g)
    for layer in [sender, *readers]:
        await layer.close()


async def test_normal_prefetch_one_fetches_one_at_a_time(make_layer: type[ChannelLayer]) -> None:
    first = make_layer(normal_prefetch=1)
    second = make_layer(normal_prefetch=1)
    for i in range(3):
        await first.send("window.one", {"type": "m", "n": i})
    assert (await first.receive("window.one"))["n"] == 0
    assert await first.channel_depth("window.one") == 2
    assert (await second.receive("window.one"))["n"] == 1
    assert (await second.receive("window.one"))["n"] == 2
    await first.close()
    await second.close()


def _grpc_only(layer: ChannelLayer) -> None:
    if layer.transport != "grpc":
        pytest.skip("group sends return before their result on the grpc.aio transport only")


async def test_a_group_send_and_a_send_that_follows_it_arrive_in_order(
    make_layer: type[ChannelLayer],
) -> None:
    """One client's group_send then send to a member: the member gets them in that order,
    whether or not the group_send returned before its result (one stream, in order)."""
    layer = make_layer(capacity=1000)
    await _open_session(layer)
    member = await layer.new_channel()
    await layer.group_add("window.order", member)
    for i in range(200):
        await layer.group_send("window.order", {"type": "g", "n": i})
        await layer.send(member, {"type": "s", "n": i})
    got = [await layer.receive(member) for _ in range(400)]
    expected = [{"type": kind, "n": i} for i in range(200) for kind in ("g", "s")]
    assert got == expected
    await layer.flush()
    await layer.close()


async def test_a_flush_after_group_sends_that_returned_early_sees_them(
    make_layer: type[ChannelLayer],
) -> None:
    """flush() waits for the group sends of its loop first: none lands after it."""
    layer = make_layer()
    await _open_session(layer)
    member = await layer.new_channel()
    await layer.group_add("window.flush", member)
    for i in range(50):
        await layer.group_send("window.flush", {"type": "g", "n": i})
    await layer.flush()
    assert await layer.channel_depth(member) == 0
    await layer.close()


async def test_group_sends_return_before_their_result_once_one_was_accepted(
    make_layer: type[ChannelLayer], caplog: pytest.LogCaptureFixture
) -> None:
    layer = make_layer(capacity=1)
    _grpc_only(layer)
    await _open_session(layer)
    member = await layer.new_channel()
    await layer.group_add("window.group", member)
    session = layer._states[asyncio.get_running_loop()].session
    assert session is not None
    await layer.group_send("window.group", {"type": "first"})  # waits: nothing known yet
    assert session._window.size == 0  # type: ignore[union-attr]
    with caplog.at_level(logging.INFO, logger="chanlayer"):
        await layer.group_send("window.group", {"type": "second"})  # the member is full
        assert session._window.size == 1  # type: ignore[union-attr]
        await layer.wait_received()
    # Members over capacity are still logged, when the result comes.
    assert "1 of 1 channels over capacity in group window.group" in caplog.text
    assert (await layer.receive(member))["type"] == "first"
    await layer.flush()
    await layer.close()


async def test_a_late_group_send_refusal_is_logged_and_raised_by_the_next_group_send(
    make_layer: type[ChannelLayer], caplog: pytest.LogCaptureFixture
) -> None:
    """A group send the server refuses after it returned: a warning when the refusal comes,
    the next group send raises it (and is not sent), and the one after waits again."""
    layer = make_layer()
    _grpc_only(layer)
    await _open_session(layer)
    member = await layer.new_channel()
    await layer.group_add("window.refused", member)
    await layer.group_send("window.refused", {"type": "accepted"})
    # A capacity above the server's --max-capacity (1 000 000 by default) is refused.
    layer.capacity = 2_000_000
    session = layer._states[asyncio.get_running_loop()].session
    with caplog.at_level(logging.WARNING, logger="chanlayer"):
        await layer.group_send("window.refused", {"type": "early"})  # returns before it
        assert session._window.size == 1  # type: ignore[union-attr]
        await layer.wait_received()
    assert "group window.refused was refused after group_send() had returned" in caplog.text
    layer.capacity = 100
    with pytest.raises(ChanlayerError) as refused:
        await layer.group_send("window.refused", {"type": "reported"})
    assert refused.value.reason == "LIMIT_EXCEEDED"
    assert "this message was not sent" in str(refused.value)
    layer.capacity = 2_000_000
    with pytest.raises(ChanlayerError):  # waits for its result again: an ordinary refusal
        await layer.group_send("window.refused", {"type": "plain"})
    layer.capacity = 100
    await layer.group_send("window.refused", {"type": "after"})
    got = [(await layer.receive(member))["type"] for _ in range(2)]
    assert got == ["accepted", "after"]
    await layer.flush()
    await layer.close()
