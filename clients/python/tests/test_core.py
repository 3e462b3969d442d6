"""The channel-layer contract against the real server (ported from channels_redis' test_core)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re

import pytest
from channels.exceptions import ChannelFull, MessageTooLarge

from chanlayer import ChannelLayer
from chanlayer.core import DEFAULT_PREFETCH

CHANNEL_TEXT = (
    "Channel name must be a valid unicode string with length < 100 containing only ASCII "
    "alphanumerics, hyphens, underscores, or periods."
)
GROUP_TEXT = CHANNEL_TEXT.replace("Channel name", "Group name")


async def nothing_within(layer: ChannelLayer, channel: str, seconds: float = 0.3) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), seconds)


async def test_send_receive(channel_layer: ChannelLayer) -> None:
    await channel_layer.send("test-channel-1", {"type": "test.message", "text": "Ahoy-hoy!"})
    message = await channel_layer.receive("test-channel-1")
    assert message == {"type": "test.message", "text": "Ahoy-hoy!"}


async def test_receive_waits_for_send(channel_layer: ChannelLayer) -> None:
    task = asyncio.create_task(channel_layer.receive("test-channel-wait"))
    await asyncio.sleep(0.1)
    assert not task.done()
    await channel_layer.send("test-channel-wait", {"type": "late"})
    assert (await asyncio.wait_for(task, 5))["type"] == "late"


async def test_bytes_and_str_stay_distinct(channel_layer: ChannelLayer) -> None:
    message = {
        "type": "test",
        "bytes": b"\x00\xffbin",
        "str": "text",
        "int": -(2**63),
        "float": 1.5,
        "list": [1, "a", b"b", None, True],
        "dict": {"k": [{}]},
    }
    await channel_layer.send("test-types", message)
    assert await channel_layer.receive("test-types") == message


async def test_multi_send_receive_fifo(channel_layer: ChannelLayer) -> None:
    for i in range(3):
        await channel_layer.send("test-channel-3", {"type": f"message.{i}"})
    for i in range(3):
        assert (await channel_layer.receive("test-channel-3"))["type"] == f"message.{i}"


async def test_fifo_many_with_concurrent_receiver(make_layer: type[ChannelLayer]) -> None:
    sender = make_layer(capacity=1000)
    receiver = make_layer(capacity=1000)
    try:
        got: list[int] = []

        async def consume() -> None:
            while len(got) < 500:
                got.append((await receiver.receive("fifo"))["n"])

        task = asyncio.create_task(consume())
        for n in range(500):
            await sender.send("fifo", {"type": "m", "n": n})
        await asyncio.wait_for(task, 20)
        assert got == list(range(500))
    finally:
        await sender.close()
        await receiver.close()


async def test_send_capacity(channel_layer: ChannelLayer) -> None:
    for _ in range(3):
        await channel_layer.send("test-channel-1", {"type": "test.message"})
    with pytest.raises(ChannelFull):
        await channel_layer.send("test-channel-1", {"type": "test.message"})
    # channel_capacity glob: "tiny" holds one message.
    await channel_layer.send("tiny", {"type": "test.message"})
    with pytest.raises(ChannelFull):
        await channel_layer.send("tiny", {"type": "test.message"})
    # Receiving frees room again.
    await channel_layer.receive("test-channel-1")
    await channel_layer.send("test-channel-1", {"type": "test.message"})


async def test_channel_capacity_globs_and_regexes(make_layer: type[ChannelLayer]) -> None:
    layer = make_layer(
        capacity=5,
        channel_capacity={"http.response!*": 2, re.compile(r"^websocket\.send!"): 1},
    )
    try:
        for _ in range(2):
            await layer.send("http.response!abc", {"type": "x"})
        with pytest.raises(ChannelFull):
            await layer.send("http.response!abc", {"type": "x"})
        await layer.send("websocket.send!abc", {"type": "x"})
        with pytest.raises(ChannelFull):
            await layer.send("websocket.send!abc", {"type": "x"})
        for _ in range(5):
            await layer.send("other", {"type": "x"})
        with pytest.raises(ChannelFull):
            await layer.send("other", {"type": "x"})
        # group_send applies the same rules on the server and never raises ChannelFull.
        await layer.group_add("cap", "websocket.send!abc")
        await layer.group_add("cap", "websocket.send!def")
        await layer.group_send("cap", {"type": "g"})
        assert await layer.channel_depth("websocket.send!abc") == 1
        assert await layer.channel_depth("websocket.send!def") == 1
    finally:
        await layer.flush()
        await layer.close()


async def test_capacity_is_per_full_channel_name(channel_layer: ChannelLayer) -> None:
    """Documented difference: specific channels of one process do not share capacity."""
    names = [await channel_layer.new_channel() for _ in range(4)]
    for name in names:
        for _ in range(3):
            await channel_layer.send(name, {"type": "test.message"})
    with pytest.raises(ChannelFull):
        await channel_layer.send(names[0], {"type": "test.message"})


async def test_process_local_send_receive(channel_layer: ChannelLayer) -> None:
    channel_name = await channel_layer.new_channel()
    await channel_layer.send(channel_name, {"type": "test.message", "text": "Local only please"})
    message = await channel_layer.receive(channel_name)
    assert message["type"] == "test.message"
    assert message["text"] == "Local only please"


async def test_new_channel_format(channel_layer: ChannelLayer) -> None:
    name = await channel_layer.new_channel()
    assert name.startswith(f"specific.{channel_layer.client_prefix}!")
    assert channel_layer.require_valid_channel_name(name)
    custom = await channel_layer.new_channel(prefix="websocket")
    assert custom.startswith(f"websocket.{channel_layer.client_prefix}!")


async def test_random_reset_channel_name(channel_layer: ChannelLayer) -> None:
    random.seed(1)
    first = await channel_layer.new_channel()
    random.seed(1)
    second = await channel_layer.new_channel()
    assert first != second


async def test_receive_multiple_specific_channels(channel_layer: ChannelLayer) -> None:
    names = [await channel_layer.new_channel() for _ in range(3)]
    for i, name in enumerate(names):
        await channel_layer.send(name, {"type": "m", "i": i})
    for i, name in reversed(list(enumerate(names))):
        assert (await channel_layer.receive(name))["i"] == i


async def test_specific_prefetch_keeps_order(make_layer: type[ChannelLayer]) -> None:
    layer = make_layer(capacity=3, prefetch=16)
    try:
        name = await layer.new_channel()
        for n in range(3):
            await layer.send(name, {"type": "m", "n": n})
        assert [(await layer.receive(name))["n"] for _ in range(3)] == [0, 1, 2]
        await nothing_within(layer, name)
    finally:
        await layer.close()


def test_default_prefetch_is_capped_by_the_smallest_capacity() -> None:
    assert ChannelLayer().prefetch == DEFAULT_PREFETCH == 64
    assert ChannelLayer(capacity=10).prefetch == 10
    rules = {"http.request": 200, "websocket.send*": 20}
    assert ChannelLayer(channel_capacity=rules).prefetch == 20
    assert ChannelLayer(capacity=10, prefetch=200).prefetch == 200  # asked for: kept
    assert ChannelLayer(prefetch=0).prefetch == 1


async def test_a_reader_pulls_at_most_the_default_prefetch(make_layer: type[ChannelLayer]) -> None:
    """One receive on a specific channel takes at most ``prefetch`` messages off the server;
    the default follows the smallest capacity configured (here a ``channel_capacity`` rule)."""
    layer = make_layer(capacity=1000, channel_capacity={"rare.*": 8})
    try:
        assert layer.prefetch == 8
        name = await layer.new_channel()
        for n in range(100):
            await layer.send(name, {"type": "m", "n": n})
        assert (await layer.receive(name))["n"] == 0
        await asyncio.sleep(0.2)
        assert await layer.channel_depth(name) >= 100 - 8
        assert [(await layer.receive(name))["n"] for _ in range(99)] == list(range(1, 100))
    finally:
        await layer.close()


async def test_two_layers_share_normal_channel(make_layer: type[ChannelLayer]) -> None:
    one, two = make_layer(), make_layer()
    try:
        await one.send("shared", {"type": "hello"})
        assert (await two.receive("shared"))["type"] == "hello"
        name = await two.new_channel()
        await one.send(name, {"type": "direct"})
        assert (await two.receive(name))["type"] == "direct"
    finally:
        await one.close()
        await two.close()


@pytest.mark.parametrize(
    "name", ["", "a" * 100, "foo!bar!baz", "!", "foo?bar", "spaces here", 1, None, b"bytes"]
)
async def test_reject_bad_channel(channel_layer: ChannelLayer, name: object) -> None:
    with pytest.raises(TypeError) as info:
        await channel_layer.send(name, {"type": "x"})  # type: ignore[arg-type]
    assert str(info.value) == CHANNEL_TEXT
    with pytest.raises(TypeError) as info:
        await channel_layer.receive(name)  # type: ignore[arg-type]
    assert str(info.value) == CHANNEL_TEXT
    with pytest.raises(TypeError) as info:
        await channel_layer.group_add("ok", name)  # type: ignore[arg-type]
    assert str(info.value) == CHANNEL_TEXT


@pytest.mark.parametrize("name", ["", "a" * 100, "foo!", "foo!bar", "a b", 1, None])
async def test_reject_bad_group(channel_layer: ChannelLayer, name: object) -> None:
    for call in (
        channel_layer.group_add(name, "ok"),  # type: ignore[arg-type]
        channel_layer.group_discard(name, "ok"),  # type: ignore[arg-type]
        channel_layer.group_send(name, {"type": "x"}),  # type: ignore[arg-type]
    ):
        with pytest.raises(TypeError) as info:
            await call
        assert str(info.value) == GROUP_TEXT


async def test_longest_valid_names(channel_layer: ChannelLayer) -> None:
    channel, group = "c" * 99, "g" * 99
    await channel_layer.group_add(group, channel)
    await channel_layer.group_send(group, {"type": "long"})
    assert (await channel_layer.receive(channel))["type"] == "long"


async def test_message_checks(channel_layer: ChannelLayer) -> None:
    with pytest.raises(AssertionError):
        await channel_layer.send("ok", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(AssertionError):
        await channel_layer.send("ok", {"__asgi_channel__": "x"})
    with pytest.raises(TypeError):
        await channel_layer.send("ok", {"type": "x", "set": {1, 2}})


async def test_message_too_large(channel_layer: ChannelLayer) -> None:
    big = {"type": "big", "data": b"x" * (8 * 1024 * 1024)}
    with pytest.raises(MessageTooLarge):
        await channel_layer.send("big-channel", big)
    # Also once a session told the client the server's limit.
    name = await channel_layer.new_channel()
    await channel_layer.send(name, {"type": "small"})
    await channel_layer.receive(name)
    with pytest.raises(MessageTooLarge):
        await channel_layer.send("big-channel", big)
    with pytest.raises(MessageTooLarge):
        await channel_layer.group_send("big-group", big)
    # One megabyte as JSON must fit (the spec's minimum).
    mb = {"type": "mb", "data": "y" * (1024 * 1024 - 100)}
    await channel_layer.send("mb-channel", mb)
    assert await channel_layer.receive("mb-channel") == mb


async def test_groups_basic(channel_layer: ChannelLayer) -> None:
    channel_name1 = await channel_layer.new_channel(prefix="test-gr-chan-1")
    channel_name2 = await channel_layer.new_channel(prefix="test-gr-chan-2")
    channel_name3 = await channel_layer.new_channel(prefix="test-gr-chan-3")
    await channel_layer.group_add("test-group", channel_name1)
    await channel_layer.group_add("test-group", channel_name2)
    await channel_layer.group_add("test-group", channel_name3)
    await channel_layer.group_discard("test-group", channel_name2)
    await channel_layer.group_send("test-group", {"type": "message.1"})
    assert (await channel_layer.receive(channel_name1))["type"] == "message.1"
    assert (await channel_layer.receive(channel_name3))["type"] == "message.1"
    await nothing_within(channel_layer, channel_name2)


async def test_group_add_is_idempotent_and_discard_absent_is_noop(
    channel_layer: ChannelLayer,
) -> None:
    await channel_layer.group_add("idem", "member")
    await channel_layer.group_add("idem", "member")
    assert await channel_layer.group_size("idem") == 1
    assert await channel_layer.group_members("idem") == ["member"]
    await channel_layer.group_discard("idem", "absent")
    await channel_layer.group_discard("nosuchgroup", "absent")
    await channel_layer.group_send("nosuchgroup", {"type": "nobody"})
    await channel_layer.group_discard("idem", "member")
    assert await channel_layer.group_size("idem") == 0


async def test_groups_channel_full(channel_layer: ChannelLayer) -> None:
    await channel_layer.group_add("test-group", "test-gr-chan-1")
    for _ in range(5):
        await channel_layer.group_send("test-group", {"type": "message.1"})
    assert await channel_layer.channel_depth("test-gr-chan-1") == 3
    await channel_layer.group_add("tiny-group", "tiny")
    await channel_layer.group_send("tiny-group", {"type": "one"})
    await channel_layer.group_send("tiny-group", {"type": "two"})
    assert (await channel_layer.receive("tiny"))["type"] == "one"
    await nothing_within(channel_layer, "tiny")


async def test_group_members_get_their_own_copy(channel_layer: ChannelLayer) -> None:
    a, b = await channel_layer.new_channel(), await channel_layer.new_channel()
    await channel_layer.group_add("copies", a)
    await channel_layer.group_add("copies", b)
    await channel_layer.group_send("copies", {"type": "m", "items": [1]})
    first = await channel_layer.receive(a)
    first["items"].append(2)
    assert (await channel_layer.receive(b))["items"] == [1]


async def test_repeated_messages_decode_to_independent_dicts(
    make_layer: type[ChannelLayer],
) -> None:
    """A group_send to many local channels decodes once; every receiver owns its dict."""
    for config in ({}, {"symmetric_encryption_keys": ["k" * 32]}):
        layer = make_layer(**config)
        try:
            names = [await layer.new_channel() for _ in range(4)]
            for name in names:
                await layer.group_add("repeat", name)
            flat = {"type": "m", "text": "héllo", "raw": b"\x00", "n": 3, "f": 0.5, "z": None}
            nested = {"type": "m", "items": [1], "inner": {"a": 1}}
            for message in (flat, nested):
                await layer.group_send("repeat", message)
                got = [await layer.receive(name) for name in names]
                assert got == [message] * 4
                for i, received in enumerate(got):
                    received["mine"] = i
                    if "items" in received:
                        received["items"].append(i)
                        received["inner"]["a"] = i
                assert len({id(received) for received in got}) == 4
                # Nothing a receiver changed reaches the next one.
                await layer.group_send("repeat", message)
                assert [await layer.receive(name) for name in names] == [message] * 4
        finally:
            await layer.flush()
            await layer.close()


async def test_group_expiry(make_layer: type[ChannelLayer]) -> None:
    layer = make_layer(group_expiry=1)
    try:
        await layer.group_add("short", "short-member")
        assert await layer.group_size("short") == 1
        await asyncio.sleep(1.3)
        assert await layer.group_size("short") == 0
        await layer.group_send("short", {"type": "late"})
        await nothing_within(layer, "short-member")
    finally:
        await layer.flush()
        await layer.close()


async def test_flush(channel_layer: ChannelLayer) -> None:
    await channel_layer.send("flush-channel", {"type": "gone"})
    await channel_layer.group_add("flush-group", "flush-channel")
    await channel_layer.flush()
    assert await channel_layer.channel_depth("flush-channel") == 0
    assert await channel_layer.group_size("flush-group") == 0
    await nothing_within(channel_layer, "flush-channel")
    # A receive waiting across a flush still gets later messages.
    task = asyncio.create_task(channel_layer.receive("flush-channel"))
    await asyncio.sleep(0.1)
    await channel_layer.flush()
    await channel_layer.send("flush-channel", {"type": "after"})
    assert (await asyncio.wait_for(task, 5))["type"] == "after"


async def test_namespaces_are_isolated(make_layer: type[ChannelLayer]) -> None:
    one, two = make_layer(prefix="ns-one-x"), make_layer(prefix="ns-two-x")
    try:
        await one.send("same-name", {"type": "one"})
        await nothing_within(two, "same-name")
        await two.flush()
        assert (await one.receive("same-name"))["type"] == "one"
    finally:
        await one.flush()
        await one.close()
        await two.close()


async def test_message_expiry_earliest_message_expires(make_layer: type[ChannelLayer]) -> None:
    layer = make_layer(expiry=1)
    try:
        await layer.send("expiry-channel", {"type": "one"})
        await asyncio.sleep(0.7)
        await layer.send("expiry-channel", {"type": "two"})
        await asyncio.sleep(0.5)
        assert (await layer.receive("expiry-channel"))["type"] == "two"
        await nothing_within(layer, "expiry-channel")
    finally:
        await layer.close()


async def test_message_expiry_all_messages_expire(make_layer: type[ChannelLayer]) -> None:
    layer = make_layer(expiry=1)
    try:
        for n in range(3):
            await layer.send("expiry-all", {"type": "m", "n": n})
        await asyncio.sleep(1.3)
        await nothing_within(layer, "expiry-all")
        await layer.send("expiry-all", {"type": "fresh"})
        assert (await layer.receive("expiry-all"))["type"] == "fresh"
    finally:
        await layer.close()


async def test_message_expiry_group_send(make_layer: type[ChannelLayer]) -> None:
    layer = make_layer(expiry=1)
    try:
        name = await layer.new_channel()
        await layer.group_add("expiry-group", name)
        await layer.group_send("expiry-group", {"type": "old"})
        await asyncio.sleep(1.3)
        await layer.group_send("expiry-group", {"type": "new"})
        assert (await layer.receive(name))["type"] == "new"
        await nothing_within(layer, name)
    finally:
        await layer.close()


async def test_prefetched_messages_expire_locally(make_layer: type[ChannelLayer]) -> None:
    layer = make_layer(expiry=1)
    try:
        name = await layer.new_channel()
        for n in range(3):
            await layer.send(name, {"type": "m", "n": n})
        assert (await layer.receive(name))["n"] == 0  # the other two are now buffered
        await asyncio.sleep(1.3)
        await nothing_within(layer, name)
    finally:
        await layer.close()


async def test_guarantee_at_most_once(channel_layer: ChannelLayer) -> None:
    await channel_layer.send("at-most-once", {"type": "only"})
    tasks = [asyncio.create_task(channel_layer.receive("at-most-once")) for _ in range(3)]
    done, pending = await asyncio.wait(tasks, timeout=1)
    assert len(done) == 1
    assert done.pop().result()["type"] == "only"
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def test_receive_cancel(channel_layer: ChannelLayer) -> None:
    delay = 0.0
    for _ in range(10):
        await channel_layer.send("cancel-channel", {"type": "test.message"})
        task = asyncio.ensure_future(channel_layer.receive("cancel-channel"))
        await asyncio.sleep(delay)
        if task.done():
            assert task.result()["type"] == "test.message"
            continue
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        delay += 0.002
        # Whatever was cancelled, nothing may be lost: drain the channel.
        assert (await channel_layer.receive("cancel-channel"))["type"] == "test.message"


async def test_introspection(channel_layer: ChannelLayer) -> None:
    await channel_layer.send("intro", {"type": "x"})
    assert await channel_layer.channel_depth("intro") == 1
    stats = await channel_layer.server_stats()
    assert stats["uptime_seconds"] >= 0
    assert stats["messages_sent_total"] >= 1
    members = [f"member-{n:03d}" for n in range(30)]
    for member in members:
        await channel_layer.group_add("intro-group", member)
    assert await channel_layer.group_members("intro-group") == members
    assert await channel_layer.group_size("intro-group") == 30
