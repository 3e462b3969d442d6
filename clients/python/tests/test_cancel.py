"""Cancelling receive() at any await point loses no message and duplicates none."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from chanlayer import ChannelLayer


async def assert_nothing_more(layer: ChannelLayer, names: list[str], seconds: float) -> None:
    """No channel of ``names`` receives anything within ``seconds`` (no message came twice)."""
    stray = [asyncio.create_task(layer.receive(n)) for n in names]
    done, pending = await asyncio.wait(stray, timeout=seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    assert not done, "a member received a message twice"


async def _cancel_cycles(layer: ChannelLayer, sender: ChannelLayer, channel: str) -> None:
    rng = random.Random(1234)
    sent: list[int] = []
    received: list[int] = []
    for n in range(1000):
        if rng.random() < 0.6:
            await sender.send(channel, {"type": "m", "n": n})
            sent.append(n)
        task = asyncio.create_task(layer.receive(channel))
        # Cancel after a random number of loop iterations, or a tiny sleep: this hits
        # every await point of receive(), including after the delivery arrived.
        if rng.random() < 0.5:
            for _ in range(rng.randrange(6)):
                await asyncio.sleep(0)
        else:
            await asyncio.sleep(rng.random() * 0.002)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            received.append((await task)["n"])
    # Drain what is left: everything sent must arrive exactly once.
    while len(received) < len(sent):
        message = await asyncio.wait_for(layer.receive(channel), 5)
        received.append(message["n"])
    assert sorted(received) == sent
    assert len(set(received)) == len(received)
    # Nothing more is pending anywhere.
    try:
        extra = await asyncio.wait_for(layer.receive(channel), 0.3)
    except asyncio.TimeoutError:
        extra = None
    assert extra is None


async def test_cancel_normal_channel_1000_cycles(make_layer: type[ChannelLayer]) -> None:
    layer, sender = make_layer(capacity=2000), make_layer(capacity=2000)
    try:
        await _cancel_cycles(layer, sender, "cancel-normal")
        # FIFO is kept for a single receiver that is never cancelled.
        for n in range(5):
            await sender.send("cancel-normal", {"type": "m", "n": n})
        assert [(await layer.receive("cancel-normal"))["n"] for _ in range(5)] == list(range(5))
    finally:
        await layer.close()
        await sender.close()


async def test_cancel_specific_channel_1000_cycles(make_layer: type[ChannelLayer]) -> None:
    layer = make_layer(capacity=2000)
    try:
        channel = await layer.new_channel()
        await _cancel_cycles(layer, layer, channel)
    finally:
        await layer.close()


async def test_cancelled_receives_leave_no_demand(make_layer: type[ChannelLayer]) -> None:
    layer = make_layer()
    try:
        for _ in range(50):
            task = asyncio.create_task(layer.receive("no-demand"))
            await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0.2)
        info = await layer.channel_info("no-demand")
        assert info["waiting_receives"] == 0
        # The message is not taken by a stale receive: another layer gets it.
        other = make_layer()
        await other.send("no-demand", {"type": "x"})
        assert (await other.receive("no-demand"))["type"] == "x"
        await other.close()
    finally:
        await layer.close()


async def test_cancelling_receives_during_a_large_fan_out_loses_nothing(
    make_layer: type[ChannelLayer],
) -> None:
    """A group_send wakes 2 000 receives; most are cancelled as soon as the first returns.

    Receives woken by one burst of deliveries are resolved a few hundred per loop iteration
    on the native transport: whichever were cancelled before their turn, or after it but
    before their task ran, keep their message for the next receive of their channel.
    """
    layer, sender = make_layer(), make_layer()
    try:
        names = [await layer.new_channel() for _ in range(2000)]
        for i in range(0, len(names), 100):
            await asyncio.gather(*(layer.group_add("fan-out", n) for n in names[i : i + 100]))
        for round_ in range(3):
            tasks = {name: asyncio.create_task(layer.receive(name)) for name in names}
            await asyncio.sleep(0.2)  # every receive is waiting on the server
            await sender.group_send("fan-out", {"type": "m", "round": round_})
            await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
            for task in tasks.values():
                task.cancel()
            results = await asyncio.gather(*tasks.values(), return_exceptions=True)
            got = {
                name: result
                for name, result in zip(tasks, results, strict=True)
                if isinstance(result, dict)
            }
            assert got, "no receive completed"
            # Each channel whose receive was cancelled still has its message, once.
            for name in names:
                message = got.get(name) or await asyncio.wait_for(layer.receive(name), 5)
                assert message == {"type": "m", "round": round_}
            await assert_nothing_more(layer, names[:20], 0.1)
    finally:
        await layer.close()
        await sender.close()


async def test_a_receive_cancelled_after_its_message_was_handed_over_gives_it_back(
    make_layer: type[ChannelLayer],
) -> None:
    """grpc.aio: a group message is handed to the futures of the members' receives as it
    comes; receives cancelled after that, before they resumed, give it back to the front of
    their channel's buffer (ahead of what came later), once."""
    layer, sender = make_layer(), make_layer()
    if layer.transport != "grpc":
        pytest.skip("the grpc.aio session's hand-over")
    try:
        names = [await layer.new_channel() for _ in range(20)]
        for name in names:
            await layer.group_add("hand-over", name)
        tasks = [asyncio.create_task(layer.receive(name)) for name in names]
        await asyncio.sleep(0.2)  # every receive is waiting on the server
        session = layer._states[asyncio.get_running_loop()].session
        dispatch = session._dispatch  # type: ignore[union-attr]
        cancelled: list[asyncio.Task[dict[str, object]]] = []

        def dispatch_then_cancel(events: object) -> None:
            dispatch(events)
            # The messages are handed over; the receives have not resumed yet.
            for task in tasks[::2]:
                if task not in cancelled and task.cancel():
                    cancelled.append(task)

        session._dispatch = dispatch_then_cancel  # type: ignore[method-assign,union-attr]
        await sender.group_send("hand-over", {"type": "m", "n": 0})
        results = await asyncio.gather(*tasks, return_exceptions=True)
        session._dispatch = dispatch  # type: ignore[method-assign,union-attr]
        assert len(cancelled) == 10
        for task, result in zip(tasks, results, strict=True):
            if task in cancelled:
                assert isinstance(result, asyncio.CancelledError)
            else:
                assert result == {"type": "m", "n": 0}
        await sender.group_send("hand-over", {"type": "m", "n": 1})
        for name, task in zip(names, tasks, strict=True):
            if task in cancelled:  # the given-back message first, then the later one
                assert (await asyncio.wait_for(layer.receive(name), 5))["n"] == 0
            assert (await asyncio.wait_for(layer.receive(name), 5))["n"] == 1
        await assert_nothing_more(layer, names, 0.2)
    finally:
        await layer.close()
        await sender.close()
