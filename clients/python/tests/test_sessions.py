"""Sessions and leases: release on close, expiry after the grace period, resume by a new loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync

from chanlayer import ChannelLayer

from .conftest import Server

GRACE_MS = 600


@pytest.fixture(scope="module")
def lease_server() -> Iterator[Server]:
    srv = Server("--lease-grace-ms", str(GRACE_MS), "--sweep-interval-ms", "50")
    srv.start()
    yield srv
    srv.stop()


async def _join(layer: ChannelLayer, group: str) -> str:
    """Open a session on the running loop and put a new specific channel in ``group``."""
    name = await layer.new_channel()
    await layer.send(name, {"type": "open"})
    await layer.receive(name)
    await layer.group_add(group, name)
    return name


async def test_close_releases_memberships_at_once(lease_server: Server) -> None:
    layer = ChannelLayer(target=lease_server.target, prefix="lease-a")
    observer = ChannelLayer(target=lease_server.target, prefix="lease-a")
    await _join(layer, "released")
    await layer.group_add("released", "plain-member")
    assert await observer.group_size("released") == 2
    await layer.close()
    assert await observer.group_members("released") == ["plain-member"]
    await observer.flush()
    await observer.close()


def test_detached_session_expires_after_grace(lease_server: Server) -> None:
    layer = ChannelLayer(target=lease_server.target, prefix="lease-b")
    name = async_to_sync(_join)(layer, "detached")  # the loop closes: the session detaches
    observer = ChannelLayer(target=lease_server.target, prefix="lease-b")
    assert async_to_sync(observer.group_size)("detached") == 1
    async_to_sync(observer.send)(name, {"type": "queued"})
    time.sleep(GRACE_MS / 1000 + 0.5)
    assert async_to_sync(observer.group_size)("detached") == 0
    assert async_to_sync(observer.channel_depth)(name) == 0


def test_next_loop_resumes_the_session(lease_server: Server) -> None:
    layer = ChannelLayer(target=lease_server.target, prefix="lease-c")
    name = async_to_sync(_join)(layer, "resumed")
    async_to_sync(layer.send)(name, {"type": "kept"})

    async def second_loop() -> None:
        assert (await layer.receive(name))["type"] == "kept"
        session = layer._loop_state().session
        assert session is not None and session.resumed and session.primary
        assert session.client_prefix == layer.client_prefix
        await asyncio.sleep(GRACE_MS / 1000 + 0.5)
        # The resumed session is live: its membership outlived the grace period.
        assert await layer.group_size("resumed") == 1
        await layer.close()
        assert await layer.group_size("resumed") == 0

    async_to_sync(second_loop)()


def test_loops_recycle_sessions(lease_server: Server) -> None:
    """Sequential loops that receive reuse one session instead of leaving one each behind."""
    layer = ChannelLayer(target=lease_server.target, prefix="lease-d")
    holder = threading.Event()
    done = threading.Event()

    def hold_primary() -> None:
        async def hold() -> None:
            await _join(layer, "holder")
            holder.set()
            while not done.is_set():
                await asyncio.sleep(0.01)

        asyncio.run(hold())

    thread = threading.Thread(target=hold_primary)
    thread.start()
    assert holder.wait(10)
    resumed: list[bool] = []
    prefixes: set[str] = set()

    async def one_loop(n: int) -> None:
        await layer.send("recycle", {"type": "m", "n": n})
        assert (await layer.receive("recycle"))["n"] == n
        session = layer._loop_state().session
        assert session is not None and not session.primary
        resumed.append(session.resumed)
        prefixes.add(session.client_prefix)

    try:
        for n in range(5):
            async_to_sync(one_loop)(n)
    finally:
        done.set()
        thread.join(10)
    assert resumed == [False, True, True, True, True]
    assert len(prefixes) == 1
