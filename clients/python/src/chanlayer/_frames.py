"""The session framing policy: how the operations queued together are cut into frames.

The grpc.aio session (:mod:`chanlayer._session`) writes what one loop tick queued with the
same policy as every other chanlayer client (the ``frame`` module of the ``chanlayer-proto``
crate, which the native extension uses): at most :data:`FRAME_OPERATIONS` operations and
:data:`FRAME_PAYLOAD` bytes of message payload per frame, and a single larger message in a
frame of its own. The server decodes frames of one message at its announced
``max_message_bytes`` plus room for the envelope and a few small operations, so no frame
built this way is refused.
"""

from __future__ import annotations

from chanlayer._proto.v1 import channel_layer_pb2 as pb

#: Most operations in one frame (the framing policy of ``chanlayer_proto::frame``).
FRAME_OPERATIONS = 4096
#: Most payload bytes in one frame; a larger single message gets a frame of its own.
FRAME_PAYLOAD = 256 * 1024


def _payload_len(operation: pb.SessionOperation) -> int:
    kind = operation.WhichOneof("operation")
    if kind == "send":
        return len(operation.send.message)
    if kind == "group_send":
        return len(operation.group_send.message)
    return 16


def split_frames(
    operations: list[pb.SessionOperation], max_message_bytes: int | None
) -> list[list[pb.SessionOperation]]:
    """Cut the operations queued together into frames, in order.

    The session framing policy every chanlayer client follows (``chanlayer_proto::frame``):
    at most :data:`FRAME_OPERATIONS` operations and :data:`FRAME_PAYLOAD` bytes of message
    payload per frame (or the server's announced ``max_message_bytes``, if lower); a single
    larger message gets a frame of its own. The server accepts frames of one message at its
    limit plus room for the envelope, so no frame exceeds what it decodes.
    """
    limit = FRAME_PAYLOAD if max_message_bytes is None else min(FRAME_PAYLOAD, max_message_bytes)
    if len(operations) <= FRAME_OPERATIONS and sum(map(_payload_len, operations)) <= limit:
        return [operations]
    frames: list[list[pb.SessionOperation]] = []
    frame: list[pb.SessionOperation] = []
    size = 0
    for operation in operations:
        length = _payload_len(operation)
        if frame and (len(frame) >= FRAME_OPERATIONS or size + length > limit):
            frames.append(frame)
            frame, size = [], 0
        frame.append(operation)
        size += length
    if frame:
        frames.append(frame)
    return frames
