"""Many event loops: async_to_sync callers, per-loop sessions and their cleanup."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import threading
import weakref

import pytest
from asgiref.sync import async_to_sync

from chanlayer import ChannelLayer

from .conftest import Server


def test_double_receive(make_layer: type[ChannelLayer]) -> None:
    """Receive process-specific channels from two different event loops, one after the other."""
    layer = make_layer(capacity=10)
    channel_name_1 = async_to_sync(layer.new_channel)()
    channel_name_2 = async_to_sync(layer.new_channel)()
    async_to_sync(layer.send)(channel_name_1, {"type": "test.message.1"})
    async_to_sync(layer.send)(channel_name_2, {"type": "test.message.2"})

    async def listen1() -> None:
        message = await layer.receive(channel_name_1)
        assert message["type"] == "test.message.1"

    async def listen2() -> None:
        message = await layer.receive(channel_name_2)
        assert message["type"] == "test.message.2"

    async_to_sync(listen2)()
    async_to_sync(listen1)()
    async_to_sync(layer.close)()


def test_specific_messages_survive_loop_change(make_layer: type[ChannelLayer]) -> None:
    """Prefetched messages of a closed loop's session stay with the layer."""
    layer = make_layer()
    name = async_to_sync(layer.new_channel)()

    async def send_three() -> None:
        for n in range(3):
            await layer.send(name, {"type": "m", "n": n})

    async_to_sync(send_three)()
    got = [async_to_sync(layer.receive)(name)["n"] for _ in range(3)]
    assert got == [0, 1, 2]
    async_to_sync(layer.close)()


def test_repeated_group_send_with_async_to_sync(make_layer: type[ChannelLayer]) -> None:
    layer = make_layer()
    try:
        async_to_sync(layer.group_add)("channel_name_1", "ch1")
        for n in range(5):
            async_to_sync(layer.group_send)("channel_name_1", {"type": "test.message", "n": n})
        assert [async_to_sync(layer.receive)("ch1")["n"] for _ in range(5)] == list(range(5))
    finally:
        async_to_sync(layer.flush)()


def test_multi_event_loop_garbage_collection(make_layer: type[ChannelLayer]) -> None:
    layer = make_layer()
    assert len(layer._states) == 0
    async_to_sync(layer.send)("gc-channel", {"type": "test.message"})
    assert len(layer._states) == 0
    async_to_sync(layer.receive)("gc-channel")
    assert len(layer._states) == 0
    async_to_sync(layer.flush)()


def test_loops_in_threads_at_once(make_layer: type[ChannelLayer]) -> None:
    """Normal-channel traffic from several threads, each with its own loop."""
    layer = make_layer(capacity=1000)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        async def run() -> None:
            for i in range(20):
                await layer.send(f"thread-{n}", {"type": "m", "i": i})
            for i in range(20):
                assert (await layer.receive(f"thread-{n}"))["i"] == i

        try:
            asyncio.run(run())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(layer._states) == 0


def test_second_loop_cannot_receive_specific_while_first_holds_it(
    make_layer: type[ChannelLayer],
) -> None:
    layer = make_layer()
    name = async_to_sync(layer.new_channel)()
    started = threading.Event()
    release = threading.Event()

    def holder() -> None:
        async def hold() -> None:
            task = asyncio.create_task(layer.receive(name))
            await asyncio.sleep(0.2)
            started.set()
            while not release.is_set():
                await asyncio.sleep(0.02)
            await layer.send(name, {"type": "done"})
            assert (await task)["type"] == "done"

        asyncio.run(hold())

    thread = threading.Thread(target=holder)
    thread.start()
    assert started.wait(10)
    try:
        with pytest.raises(RuntimeError, match="Two event loops"):
            async_to_sync(layer.receive)(name)
        # Normal channels and sends are fine from the second loop.
        async_to_sync(layer.send)("plain", {"type": "p"})
        assert async_to_sync(layer.receive)("plain")["type"] == "p"
    finally:
        release.set()
        thread.join(10)
    async_to_sync(layer.flush)()


LAYERS_ON_ONE_LOOP = 1000


def _use_layers_on_one_loop(make_layer: type[ChannelLayer], *, keep: bool) -> list[object]:
    """Make and use many layers on one new loop; return weak references to them.

    ``keep``: the layers stay referenced until the loop has closed; otherwise each is dropped
    right after its send, while the loop runs.
    """
    loop = asyncio.new_event_loop()
    refs: list[weakref.ref[ChannelLayer]] = []
    kept: list[ChannelLayer] = []

    async def use() -> None:
        for n in range(LAYERS_ON_ONE_LOOP):
            layer = make_layer(capacity=2 * LAYERS_ON_ONE_LOOP)
            await layer.send("loops.many", {"type": "m", "n": n})
            refs.append(weakref.ref(layer))
            if keep:
                kept.append(layer)
            del layer
        if not keep:
            gc.collect()
            await asyncio.sleep(0.5)  # the collected layers' connections close meanwhile

    try:
        loop.run_until_complete(use())
        assert "close" in vars(loop)  # hooked, once
        if not keep:
            assert all(ref() is None for ref in refs)
    finally:
        loop.close()  # a RecursionError here if every layer had wrapped close
    assert loop.is_closed()
    assert "close" not in vars(loop)  # the hook took itself away
    for layer in kept:
        assert layer._states == {}
    kept.clear()
    gc.collect()
    return refs


@pytest.mark.timeout(120)
@pytest.mark.parametrize("keep", [True, False])
def test_a_thousand_layers_on_one_loop(make_layer: type[ChannelLayer], keep: bool) -> None:
    refs = _use_layers_on_one_loop(make_layer, keep=keep)
    assert len(refs) == LAYERS_ON_ONE_LOOP
    assert all(ref() is None for ref in refs)
    reader = make_layer(capacity=2000)
    got = sorted(
        async_to_sync(reader.receive)("loops.many")["n"] for _ in range(LAYERS_ON_ONE_LOOP)
    )
    assert got == list(range(LAYERS_ON_ONE_LOOP))
    async_to_sync(reader.flush)()


def test_a_collected_layer_releases_its_session(make_layer: type[ChannelLayer]) -> None:
    """A layer dropped while its loop runs: its session is released, its loop closes cleanly."""
    observer = make_layer()

    async def run() -> None:
        layer = make_layer()
        name = await layer.new_channel()
        await layer.group_add("collected", name)
        await layer.send(name, {"type": "m"})
        assert (await layer.receive(name))["type"] == "m"
        ref = weakref.ref(layer)
        del layer
        gc.collect()
        assert ref() is None
        for _ in range(100):
            if await observer.group_size("collected") == 0:
                break
            await asyncio.sleep(0.05)
        assert await observer.group_size("collected") == 0
        await observer.close()

    asyncio.run(run())


#: A consumer whose receive was cancelled on one loop, then a consumer on a second loop that
#: is still receiving when ``asyncio.run`` ends a few iterations later (a test that never
#: disconnects its communicator). ``asyncio.run`` cancels the session task at some point of
#: its start; the sweep over iterations makes that point fall on each step in turn.
_SHUTDOWN_SWEEP = textwrap.dedent(
    """
    import asyncio, os, sys
    from chanlayer import ChannelLayer

    target, prefix = sys.argv[1], sys.argv[2]

    async def dispatch(layer, channel):
        # channels.utils.await_many_dispatch, as a consumer runs it
        tasks = [asyncio.ensure_future(asyncio.Queue().get()),
                 asyncio.ensure_future(layer.receive(channel))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass

    async def disconnected(n):
        layer = ChannelLayer(target=target, prefix=f"{prefix}a{n}")
        task = asyncio.create_task(dispatch(layer, await layer.new_channel()))
        await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def still_connected(n, ticks):
        layer = ChannelLayer(target=target, prefix=f"{prefix}b{n}")

        async def consumer():
            await dispatch(layer, await layer.new_channel())

        asyncio.create_task(consumer())
        for _ in range(ticks):
            await asyncio.sleep(0)

    for ticks in range(16):
        asyncio.run(disconnected(ticks))
        asyncio.run(still_connected(ticks, ticks))
    print("closed", flush=True)
    """
)


def test_a_loop_closes_while_its_session_starts(server: Server) -> None:
    """``asyncio.run`` returns whenever it cancels a session task that is still starting.

    Before Python 3.12, ``asyncio.wait_for`` lost a cancellation that came as its future
    completed; the session task then opened a stream and waited on it forever.
    """
    prefix = f"t{os.urandom(4).hex()}"
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SHUTDOWN_SWEEP, server.target, prefix],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"an event loop never finished closing: {e.stderr!r}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "closed"
