"""Session frames stay within what the server decodes: the framing policy all clients share,
and large messages sent at once on one session."""

from __future__ import annotations

import asyncio

import pytest

from chanlayer import ChannelLayer
from chanlayer._frames import FRAME_OPERATIONS, FRAME_PAYLOAD, split_frames
from chanlayer._proto.v1 import channel_layer_pb2 as pb

#: A message of the spec's maximum size (1 MB encoded as JSON).
ONE_MB = 1_000_000


def _send(size: int) -> pb.SessionOperation:
    return pb.SessionOperation(send=pb.SendOperation(channel="c", message=b"x" * size))


def _receive() -> pb.SessionOperation:
    return pb.SessionOperation(receive=pb.ReceiveOperation(receive_id=1, channel="c"))


def test_small_batches_stay_one_frame() -> None:
    operations = [_send(100) for _ in range(50)] + [_receive()]
    assert split_frames(operations, 4 * 1024 * 1024) == [operations]


def test_frames_hold_at_most_the_payload_limit_and_large_messages_go_alone() -> None:
    operations = [_send(FRAME_PAYLOAD - 10), _send(10), _send(11), _send(ONE_MB), _receive()]
    frames = split_frames(operations, None)
    assert [len(f) for f in frames] == [2, 1, 1, 1]
    assert [o for f in frames for o in f] == operations  # order kept


def test_frames_hold_at_most_the_operation_limit() -> None:
    operations = [_receive() for _ in range(FRAME_OPERATIONS * 2 + 1)]
    assert [len(f) for f in split_frames(operations, None)] == [FRAME_OPERATIONS] * 2 + [1]


def test_a_lower_server_limit_lowers_the_frame_payload() -> None:
    frames = split_frames([_send(600) for _ in range(4)], 1000)
    assert [len(f) for f in frames] == [1, 1, 1, 1]


@pytest.mark.parametrize("transport", ["grpc", None])
async def test_concurrent_1mb_sends_then_group_sends(
    make_layer: type[ChannelLayer], transport: str | None
) -> None:
    """12 messages of 1 MB sent at once on one session all arrive; the session stays usable."""
    layer = make_layer(capacity=100, transport=transport) if transport else make_layer(capacity=100)
    name = await layer.new_channel()
    await layer.send(name, {"type": "hello"})
    assert (await layer.receive(name))["type"] == "hello"  # the session is open
    assert layer._state.max_message_bytes is not None
    await layer.group_add("big", name)
    data = "x" * (ONE_MB - 100)
    await asyncio.gather(
        *(layer.send(name, {"type": "big", "n": n, "data": data}) for n in range(12))
    )
    got = [await asyncio.wait_for(layer.receive(name), 10) for _ in range(12)]
    assert [m["n"] for m in got] == list(range(12))
    assert all(m["data"] == data for m in got)
    await asyncio.gather(*(layer.group_send("big", {"type": "g", "n": n}) for n in range(12)))
    got = [await asyncio.wait_for(layer.receive(name), 10) for _ in range(12)]
    assert sorted(m["n"] for m in got) == list(range(12))
    await layer.close()
