"""Messages fetched ahead on a shared normal channel are never lost by a clean shutdown:
``normal_prefetch`` is 1 unless asked, and what a layer fetched ahead goes back to the channel
when it closes (``close`` or ``close_pools``)."""

from __future__ import annotations

import asyncio

import pytest

from chanlayer import ChannelLayer

COUNT = 300


@pytest.mark.parametrize("normal_prefetch", [None, 32])
@pytest.mark.parametrize("how", ["close", "close_pools"])
async def test_a_consumer_closed_mid_way_loses_nothing(
    make_layer: type[ChannelLayer], normal_prefetch: int | None, how: str
) -> None:
    """Two layers consume one normal channel; one closes mid-way. Each message comes once."""
    config: dict[str, object] = {"capacity": 2 * COUNT}
    if normal_prefetch is not None:
        config["normal_prefetch"] = normal_prefetch
    first = make_layer(**config)
    second = make_layer(**config)
    sender = make_layer(capacity=2 * COUNT)
    for n in range(COUNT):
        await sender.send("handback.shared", {"type": "m", "n": n})
    got: list[int] = []
    for _ in range(5):
        got.append((await first.receive("handback.shared"))["n"])
    if normal_prefetch == 32:
        assert first._state.buffered_count("handback.shared") > 0 or first.transport == "native"
    await getattr(first, how)()
    assert first._state.buffers == {}
    while len(got) < COUNT:
        got.append((await asyncio.wait_for(second.receive("handback.shared"), 5))["n"])
    assert sorted(got) == list(range(COUNT))
    assert await sender.channel_depth("handback.shared") == 0
    for layer in (first, second, sender):
        await layer.close()


@pytest.mark.parametrize("normal_prefetch", [None, 32])
async def test_concurrent_consumers_one_stops_mid_way(
    make_layer: type[ChannelLayer], normal_prefetch: int | None
) -> None:
    """Both consume while the sender sends; one is cancelled and closed half way."""
    config: dict[str, object] = {"capacity": 2 * COUNT}
    if normal_prefetch is not None:
        config["normal_prefetch"] = normal_prefetch
    readers = [make_layer(**config), make_layer(**config)]
    sender = make_layer(capacity=2 * COUNT)
    got: list[int] = []
    done = asyncio.Event()

    async def read(layer: ChannelLayer) -> None:
        while True:
            got.append((await layer.receive("handback.live"))["n"])
            if len(got) == COUNT:
                done.set()

    tasks = [asyncio.create_task(read(layer)) for layer in readers]
    for n in range(COUNT):
        await sender.send("handback.live", {"type": "m", "n": n})
        if n == COUNT // 2:
            tasks[0].cancel()
            await asyncio.gather(tasks[0], return_exceptions=True)
            await readers[0].close()
    await asyncio.wait_for(done.wait(), 20)
    await asyncio.sleep(0.1)
    tasks[1].cancel()
    await asyncio.gather(tasks[1], return_exceptions=True)
    assert sorted(got) == list(range(COUNT))
    for layer in (*readers, sender):
        await layer.close()


async def test_handed_back_messages_keep_their_expiry(make_layer: type[ChannelLayer]) -> None:
    first = make_layer(normal_prefetch=8, expiry=1)
    second = make_layer(expiry=1)
    for n in range(4):
        await first.send("handback.expiry", {"type": "m", "n": n})
    assert (await first.receive("handback.expiry"))["n"] == 0
    await first.close()
    await asyncio.sleep(1.2)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(second.receive("handback.expiry"), 0.5)
    await second.close()
