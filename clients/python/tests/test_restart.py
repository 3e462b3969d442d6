"""Reconnection: an unreachable server fails fast; a restarted one is resumed mid-traffic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from chanlayer import ChannelLayer, ServerUnavailable

from .conftest import Server, free_port


@pytest.fixture
def own_server() -> Iterator[Server]:
    srv = Server()
    srv.start()
    yield srv
    srv.stop()


async def test_unreachable_server_raises_quickly() -> None:
    layer = ChannelLayer(target=f"127.0.0.1:{free_port()}", connect_timeout=1)
    started = time.monotonic()
    with pytest.raises(ServerUnavailable):
        await layer.send("nowhere", {"type": "x"})
    with pytest.raises(ConnectionError):
        await layer.receive("nowhere")
    assert time.monotonic() - started < 8
    await layer.close()


async def _open_session(layer: ChannelLayer) -> None:
    """Make the current loop's operations ride on a session stream."""
    name = await layer.new_channel()
    await layer.send(name, {"type": "warmup"})
    await layer.receive(name)


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
async def test_server_restart_mid_traffic(own_server: Server, kill: bool) -> None:
    receiver = ChannelLayer(target=own_server.target, capacity=10_000, connect_timeout=15)
    sender = ChannelLayer(target=own_server.target, capacity=10_000, connect_timeout=15)
    await _open_session(receiver)
    await _open_session(sender)
    reply_channel = await receiver.new_channel()

    acked: list[int] = []
    in_doubt: list[int] = []
    got_normal: list[int] = []
    got_specific: list[int] = []
    stop = asyncio.Event()

    async def send_loop() -> None:
        n = 0
        while not stop.is_set():
            for channel in ("restart-normal", reply_channel):
                try:
                    await sender.send(channel, {"type": "m", "n": n})
                    acked.append(n)
                except ServerUnavailable:
                    in_doubt.append(n)
                n += 1
            await asyncio.sleep(0.003)

    async def receive_loop(channel: str, out: list[int]) -> None:
        while True:
            out.append((await receiver.receive(channel))["n"])

    tasks = [
        asyncio.create_task(send_loop()),
        asyncio.create_task(receive_loop("restart-normal", got_normal)),
        asyncio.create_task(receive_loop(reply_channel, got_specific)),
    ]
    try:
        await asyncio.sleep(0.5)
        before = len(got_normal) + len(got_specific)
        assert before > 0
        await asyncio.to_thread(own_server.stop, kill=kill)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(own_server.start)
        restarted_at = len(acked)
        # Traffic flows again through the same layers, without any help from the test.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            late = [n for n in acked[restarted_at:]]
            if len(late) > 20 and set(late[-20:]) & set(got_normal + got_specific):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("traffic did not resume after the restart")
        stop.set()
        await asyncio.wait_for(tasks[0], 10)
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    received = got_normal + got_specific
    # At most once: nothing twice, nothing that was never sent.
    assert len(received) == len(set(received))
    assert set(received) <= set(acked) | set(in_doubt)
    # Messages acknowledged after the server came back all arrive.
    late_acked = set(acked[restarted_at + 5 :])
    assert late_acked <= set(received)
    await receiver.close()
    await sender.close()


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
async def test_group_memberships_survive_a_restart(own_server: Server, kill: bool) -> None:
    member = ChannelLayer(target=own_server.target, connect_timeout=15)
    sender = ChannelLayer(target=own_server.target, connect_timeout=15)
    observer = ChannelLayer(target=own_server.target, connect_timeout=15)
    await _open_session(member)
    kept = await member.new_channel()
    left = await member.new_channel()
    await member.group_add("room", kept)
    await member.group_add("room", left)
    await member.group_add("other", left)
    await member.group_discard("room", left)
    await member.group_add("room", "plain-worker")  # not this layer's own channel
    # A receive stays pending across the restart, as a consumer's would.
    pending = asyncio.create_task(member.receive(kept))
    await asyncio.sleep(0.1)
    await asyncio.to_thread(own_server.stop, kill=kill)
    await asyncio.sleep(0.3)
    await asyncio.to_thread(own_server.start)
    try:
        # The member's session reconnects and restores its own memberships by itself.
        deadline = time.monotonic() + 15
        while await observer.group_members("room") != [kept]:
            assert time.monotonic() < deadline, "the membership was not restored"
            await asyncio.sleep(0.05)
        assert await observer.group_members("other") == [left]
        await sender.group_send("room", {"type": "after.restart", "n": 1})
        message = await asyncio.wait_for(pending, 10)
        assert message == {"type": "after.restart", "n": 1}
        # Discarded memberships stay discarded.
        await member.group_discard("other", left)
        assert await observer.group_size("other") == 0
    finally:
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
        await member.close()
        await sender.close()
        await observer.close()


async def test_close_and_flush_forget_memberships(make_layer: type[ChannelLayer]) -> None:
    layer = make_layer()
    await _open_session(layer)
    name = await layer.new_channel()
    await layer.group_add("g", name)
    await layer.group_add("g", "plain")
    assert layer._state.memberships_to_restore()[0][:2] == ("g", name)
    await layer.flush()
    assert layer._state.memberships_to_restore() == []
    await layer.group_add("g", name)
    await layer.close()
    assert layer._state.memberships_to_restore() == []
    await layer.flush()
    await layer.close()
