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
