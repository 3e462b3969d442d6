"""Cluster mode through the Python layer: two chanlayer nodes on a real 3-server NATS cluster.

Node A and node B are real server processes, each joined to its own NATS server (listing the
others after it). Layers on A send to the process-specific channels and groups of layers on B
and back, and workers on both nodes share a normal channel; every test counts what arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from channels.exceptions import ChannelFull

from chanlayer import ChanlayerError, ChannelLayer, ClientPrefixInUse

from .conftest import Server
from .nats_cluster import NatsCluster, free_port, nats_server_binary, wait_nodes_joined

T = TypeVar("T")

#: Seconds any one call may take, on a live node or next to a dead one.
BOUND = 5.0
#: Messages of the exactly-once counts.
COUNT = 500


@pytest.fixture(scope="module")
def nats() -> Iterator[NatsCluster]:
    """A 3-server NATS cluster shared by this module's tests."""
    binary = nats_server_binary()
    if binary is None:
        message = "nats-server not found: run scripts/install-nats or set CHANLAYER_NATS_SERVER"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    log_dir = Path(os.environ.get("CHANLAYER_TEST_LOG_DIR", "/tmp"))
    cluster = NatsCluster(binary, log_dir / f"chanlayer-test-nats-{os.getpid()}")
    cluster.start()
    yield cluster
    cluster.stop()


class Node(Server):
    """A chanlayer server joined to one NATS server of the cluster."""

    def __init__(self, nats: NatsCluster, server: int, name: str) -> None:
        self.metrics_port = free_port()
        # Normal channels hold every message a test sends before its readers catch up.
        capacity = ["--cluster-normal-capacity", str(2 * COUNT)]
        super().__init__(*nats.node_args(server, name, self.metrics_port), *capacity)


@pytest.fixture
def nodes(nats: NatsCluster) -> Iterator[tuple[Node, Node]]:
    """Node A on NATS server 0 and node B on server 1, ready and aware of each other."""
    a, b = Node(nats, 0, "a"), Node(nats, 1, "b")
    try:
        a.start()
        b.start()
        wait_nodes_joined([a.metrics_port, b.metrics_port])
        yield a, b
    finally:
        b.stop(kill=True)
        a.stop()


@pytest.fixture
async def make_layer() -> AsyncIterator[Callable[..., ChannelLayer]]:
    """Build layers on a node, all in one fresh namespace; closed (bounded) afterwards."""
    prefix = f"c{os.urandom(6).hex()}"
    layers: list[ChannelLayer] = []

    def factory(node: Server, **config: Any) -> ChannelLayer:
        config.setdefault("prefix", prefix)
        config.setdefault("connect_timeout", 2)
        config.setdefault("call_timeout", BOUND)
        layer = ChannelLayer(target=node.target, **config)
        layers.append(layer)
        return layer

    yield factory
    for layer in layers:
        with contextlib.suppress(asyncio.TimeoutError, ChanlayerError, ConnectionError):
            await asyncio.wait_for(layer.close(), BOUND)


async def bounded(call: Awaitable[T], bound: float = BOUND) -> T:
    """Await ``call``, failing the test if it takes longer than ``bound`` seconds."""
    return await asyncio.wait_for(call, bound)


class Inbox:
    """Everything a layer receives on its specific channels, read by one task per channel."""

    def __init__(self, layer: ChannelLayer) -> None:
        self.layer = layer
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def channel(self) -> str:
        """A new specific channel of the layer, read from now on."""
        name = await self.layer.new_channel()
        self.messages[name] = []
        self._tasks.append(asyncio.create_task(self._read(name)))
        return name

    async def _read(self, channel: str) -> None:
        while True:
            self.messages[channel].append(await self.layer.receive(channel))

    def of(self, channel: str, kind: str = "test.message") -> list[dict[str, Any]]:
        """The messages of type ``kind`` received on ``channel`` so far."""
        return [m for m in self.messages[channel] if m["type"] == kind]

    async def wait(self, channel: str, count: int, timeout: float = 20) -> None:
        """Wait until ``channel`` got ``count`` test messages, then a little for extras."""
        deadline = time.monotonic() + timeout
        while len(self.of(channel)) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # Duplicates would arrive now.

    async def stop(self) -> None:
        """Stop reading."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def depth_reaches(layer: ChannelLayer, channel: str, depth: int) -> None:
    """Wait until ``channel`` holds ``depth`` messages: a group send reaches the members on
    other nodes through NATS, after the call that sent it has returned."""
    deadline = asyncio.get_running_loop().time() + BOUND
    while await bounded(layer.channel_depth(channel)) != depth:
        assert asyncio.get_running_loop().time() < deadline, f"{channel} never held {depth}"
        await asyncio.sleep(0.02)


async def held(sender: ChannelLayer, owner: Inbox) -> None:
    """Wait until the owner node holds ``owner``'s client prefix, as the sender's node sees it.

    The owner's session opens with its first receive; a send from another node before that
    has nobody to reach. Pings on a channel of their own until one arrives on the owner.
    """
    ping = await owner.channel()
    deadline = time.monotonic() + 10
    while not owner.of(ping, "ping"):
        assert time.monotonic() < deadline, "the owner's session never held its prefix"
        await bounded(sender.send(ping, {"type": "ping"}))
        for _ in range(25):
            if owner.of(ping, "ping"):
                break
            await asyncio.sleep(0.02)


def exactly_once(messages: list[dict[str, Any]], expected: list[int], key: str = "n") -> None:
    """Assert ``messages`` carry each of ``expected`` exactly once."""
    counts = Counter(m[key] for m in messages)
    missing = [n for n in expected if counts[n] == 0]
    doubled = {n: c for n, c in counts.items() if c > 1}
    assert not missing and not doubled and len(messages) == len(expected), (
        f"{len(messages)} received for {len(expected)} sent; "
        f"missing {missing[:10]}, duplicated {dict(list(doubled.items())[:10])}"
    )


async def test_a_specific_channel_on_b_gets_every_send_from_a_once(
    nodes: tuple[Node, Node], make_layer: Callable[..., ChannelLayer]
) -> None:
    a, b = nodes
    on_a = make_layer(a, capacity=COUNT * 2)
    inbox = Inbox(make_layer(b))
    try:
        await held(on_a, inbox)
        channel = await inbox.channel()
        for n in range(COUNT):
            await bounded(on_a.send(channel, {"type": "test.message", "n": n}))
        await inbox.wait(channel, COUNT)
        received = inbox.of(channel)
        exactly_once(received, list(range(COUNT)))
        assert [m["n"] for m in received] == list(range(COUNT)), "one sender's order"
    finally:
        await inbox.stop()


async def test_a_group_on_both_nodes_gets_each_group_send_once_per_member(
    nodes: tuple[Node, Node], make_layer: Callable[..., ChannelLayer]
) -> None:
    a, b = nodes
    # Capacity enough for every message: a full member would be skipped, not counted.
    senders = {"a": make_layer(a, capacity=COUNT * 4), "b": make_layer(b, capacity=COUNT * 4)}
    inbox_a, inbox_b = Inbox(make_layer(a)), Inbox(make_layer(b))
    try:
        await held(senders["b"], inbox_a)
        await held(senders["a"], inbox_b)
        members = [
            (inbox_a, await inbox_a.channel()),
            (inbox_a, await inbox_a.channel()),
            (inbox_b, await inbox_b.channel()),
        ]
        # One member on A added through B: forwarded to A, where it lives.
        await bounded(senders["a"].group_add("room", members[0][1]))
        await bounded(senders["b"].group_add("room", members[1][1]))
        await bounded(senders["b"].group_add("room", members[2][1]))
        for layer in senders.values():
            assert await bounded(layer.group_size("room")) == 3
            assert sorted(await bounded(layer.group_members("room"))) == sorted(
                channel for _, channel in members
            )

        half = COUNT // 2

        async def send_all(origin: str) -> None:
            for n in range(half):
                message = {"type": "test.message", "origin": origin, "n": n}
                await bounded(senders[origin].group_send("room", message))

        await bounded(asyncio.gather(send_all("a"), send_all("b")), 60)
        expected = [(origin, n) for origin in senders for n in range(half)]
        for inbox, channel in members:
            await inbox.wait(channel, 2 * half)
            received = inbox.of(channel)
            for m in received:
                m["key"] = (m["origin"], m["n"])
            exactly_once(received, expected, key="key")
            for origin in senders:
                order = [m["n"] for m in received if m["origin"] == origin]
                assert order == list(range(half)), f"order of {origin}'s sends on {channel}"
    finally:
        await inbox_a.stop()
        await inbox_b.stop()


async def test_a_normal_channel_read_on_both_nodes_gets_each_send_once(
    nodes: tuple[Node, Node], make_layer: Callable[..., ChannelLayer]
) -> None:
    a, b = nodes
    senders = [make_layer(a), make_layer(b)]
    # Readers that fetch ahead, as a busy worker pool is configured.
    workers = [make_layer(a, normal_prefetch=32), make_layer(b, normal_prefetch=32)]
    got: list[list[dict[str, Any]]] = [[], []]

    async def work(i: int) -> None:
        while True:
            got[i].append(await workers[i].receive("jobs"))

    tasks = [asyncio.create_task(work(i)) for i in range(2)]
    try:
        for n in range(COUNT):
            await bounded(senders[n % 2].send("jobs", {"type": "test.message", "n": n}))
        deadline = time.monotonic() + 20
        while len(got[0]) + len(got[1]) < COUNT and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # Duplicates would arrive now.
        # Whichever node's receive asks first gets a message: the split between the two
        # workers is not fixed (one may take all), but each message arrives once.
        exactly_once(got[0] + got[1], list(range(COUNT)))
        # A worker on A alone gets every message sent through B.
        for n in range(50):
            await bounded(senders[1].send("jobs-on-a", {"type": "test.message", "n": n}))
        only_a = [await bounded(workers[0].receive("jobs-on-a")) for _ in range(50)]
        exactly_once(only_a, list(range(50)))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_full_shared_normal_channel_refuses_the_send_that_overfills_it(
    nodes: tuple[Node, Node], make_layer: Callable[..., ChannelLayer], caplog: Any
) -> None:
    # The stream's answer does not say how full the channel is, so no send to it may
    # return before its result: the send past capacity raises, and nothing is lost.
    a, b = nodes
    sender = make_layer(a)
    capacity = 2 * COUNT  # the nodes' --cluster-normal-capacity
    for n in range(capacity):
        await bounded(sender.send("full-jobs", {"type": "test.message", "n": n}))
    with caplog.at_level("WARNING", logger="chanlayer"), pytest.raises(ChannelFull):
        await bounded(sender.send("full-jobs", {"type": "test.message", "n": capacity}))
    assert not [r for r in caplog.records if "after send() had returned" in r.getMessage()]
    worker = make_layer(b, normal_prefetch=64)
    got = [await bounded(worker.receive("full-jobs")) for _ in range(capacity)]
    exactly_once(got, list(range(capacity)))


async def test_channel_full_is_raised_on_a_for_a_full_channel_owned_by_b(
    nodes: tuple[Node, Node], make_layer: Callable[..., ChannelLayer]
) -> None:
    a, b = nodes
    on_a = make_layer(a, capacity=3)
    on_b = make_layer(b)
    inbox = Inbox(on_b)
    try:
        await held(on_a, inbox)
        full = await on_b.new_channel()  # B's, not read yet.
        for n in range(3):
            await bounded(on_a.send(full, {"type": "test.message", "n": n}))
        with pytest.raises(ChannelFull):
            await bounded(on_a.send(full, {"type": "test.message", "n": 3}))
        assert await bounded(on_b.channel_depth(full)) == 3
        # Room again once B reads one.
        assert (await bounded(on_b.receive(full)))["n"] == 0
        await bounded(on_a.send(full, {"type": "test.message", "n": 4}))
        got = [(await bounded(on_b.receive(full)))["n"] for _ in range(3)]
        assert got == [1, 2, 4]
    finally:
        await inbox.stop()


async def test_after_b_is_killed_a_serves_its_own_members_and_nothing_hangs(
    nodes: tuple[Node, Node], make_layer: Callable[..., ChannelLayer]
) -> None:
    a, b = nodes
    on_a = make_layer(a, capacity=COUNT * 2)
    on_b = make_layer(b)
    inbox_a, inbox_b = Inbox(make_layer(a)), Inbox(on_b)
    try:
        await held(on_a, inbox_b)
        mine = await inbox_a.channel()
        theirs = await inbox_b.channel()
        await bounded(on_a.group_add("room", mine))
        await bounded(on_a.group_add("room", theirs))
        assert await bounded(on_a.group_size("room")) == 2

        await inbox_b.stop()
        b.stop(kill=True)

        slowest = 0.0
        for n in range(COUNT):
            started = time.monotonic()
            await bounded(on_a.group_send("room", {"type": "test.message", "n": n}))
            slowest = max(slowest, time.monotonic() - started)
        # A send to the dead node's channel returns (delivered nowhere, or refused) in time.
        started = time.monotonic()
        try:
            await bounded(on_a.send(theirs, {"type": "test.message", "n": -1}))
        except ChanlayerError as err:
            assert err.reason in ("OWNER_UNREACHABLE", "CLUSTER_UNAVAILABLE"), err
        slowest = max(slowest, time.monotonic() - started)
        assert slowest < 2.5, f"an operation took {slowest:.2f} s"

        await inbox_a.wait(mine, COUNT)
        exactly_once(inbox_a.of(mine), list(range(COUNT)))

        # The dead node's membership leaves the cluster view once its heartbeats stop.
        sizes: list[int] = []

        async def size() -> int:
            sizes.append(await bounded(on_a.group_size("room")))
            return sizes[-1]

        deadline = time.monotonic() + 5
        while await size() != 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert sizes[-1] == 1, f"group sizes seen after the kill: {sizes}"
        # B's layer reports its dead server instead of waiting for it.
        with pytest.raises(ConnectionError):
            await bounded(on_b.group_size("room"))
    finally:
        await inbox_a.stop()
        await inbox_b.stop()


async def test_group_discard_and_flush_on_a_reach_what_b_holds(
    nodes: tuple[Node, Node], make_layer: Callable[..., ChannelLayer]
) -> None:
    a, b = nodes
    on_a = make_layer(a)
    on_b = make_layer(b)
    inbox = Inbox(on_b)
    try:
        await held(on_a, inbox)
        kept, dropped = await on_b.new_channel(), await on_b.new_channel()
        for channel in (kept, dropped):
            await bounded(on_a.group_add("room", channel))
        assert await bounded(on_b.group_size("room")) == 2
        # A discard on A of B's member is applied where the membership lives.
        await bounded(on_a.group_discard("room", dropped))
        assert await bounded(on_b.group_members("room")) == [kept]
        await bounded(on_a.group_send("room", {"type": "test.message", "n": 0}))
        await depth_reaches(on_b, kept, 1)
        assert await bounded(on_b.channel_depth(dropped)) == 0

        # A flush on A empties the namespace on every node.
        await bounded(on_a.flush())
        assert await bounded(on_b.group_size("room")) == 0
        assert await bounded(on_b.channel_depth(kept)) == 0
    finally:
        await inbox.stop()


async def test_a_client_prefix_held_on_b_is_refused_on_a(
    nodes: tuple[Node, Node], make_layer: Callable[..., ChannelLayer]
) -> None:
    a, b = nodes
    on_b = make_layer(b)
    inbox = Inbox(on_b)
    twin = make_layer(a)
    twin.client_prefix = on_b.client_prefix
    try:
        await held(make_layer(a), inbox)
        with pytest.raises(ClientPrefixInUse):
            await bounded(twin.receive(await twin.new_channel()))
    finally:
        await inbox.stop()
