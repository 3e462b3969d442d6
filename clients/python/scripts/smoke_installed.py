#!/usr/bin/env python3
"""Smoke test of an installed chanlayer (scripts/ci.d/70-install.sh runs it in fresh venvs).

Usage::

    python smoke_installed.py TARGET TRANSPORT [LEVEL]

Checks that the layer imported is the installed one (not a checkout's), that it uses
TRANSPORT ("native" or "grpc"), that it logged that choice once at LEVEL (INFO by default,
WARNING where it fell back to grpc.aio although native was expected), and that send, receive,
group_add, group_send and flush work against the server at TARGET. Prints what it found.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import sysconfig

import chanlayer
from chanlayer import ChannelLayer


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def exchange(layer: ChannelLayer) -> None:
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "chat.message", "text": "hello"})
    message = await asyncio.wait_for(layer.receive(channel), 10)
    assert message == {"type": "chat.message", "text": "hello"}, message
    others = [await layer.new_channel() for _ in range(3)]
    for member in [channel, *others]:
        await layer.group_add("room", member)
    await layer.group_send("room", {"type": "chat.message", "text": "all"})
    for member in [channel, *others]:
        message = await asyncio.wait_for(layer.receive(member), 10)
        assert message["text"] == "all", message
    await layer.group_discard("room", channel)
    await layer.flush()
    await layer.close()


def main() -> int:
    target, transport = sys.argv[1], sys.argv[2]
    level = logging.getLevelName(sys.argv[3] if len(sys.argv) > 3 else "INFO")
    site = sysconfig.get_paths()["purelib"]
    assert chanlayer.__file__ is not None and chanlayer.__file__.startswith(site), (
        f"chanlayer imported from {chanlayer.__file__}, not from the venv's {site}"
    )
    records = Records()
    logger = logging.getLogger("chanlayer")
    logger.addHandler(records)
    logger.setLevel(logging.DEBUG)

    layer = ChannelLayer(target=target, prefix="smoke", connect_timeout=10)
    assert layer.transport == transport, f"transport {layer.transport}, not {transport}"
    asyncio.run(exchange(layer))

    choices = [r for r in records.records if "transport" in r.getMessage()]
    assert len(choices) == 1, [r.getMessage() for r in choices]
    assert choices[0].levelno == level, (choices[0].levelname, choices[0].getMessage())
    print(f"chanlayer {chanlayer.__version__} from {chanlayer.__file__}")
    print(f"{choices[0].levelname}: {choices[0].getMessage()}")
    if transport == "native":
        import chanlayer_native

        print(f"chanlayer_native {chanlayer_native.__version__} from {chanlayer_native.__file__}")
    import google.protobuf
    import grpc

    print(f"grpcio {grpc.__version__}, protobuf {google.protobuf.__version__}")
    print("send, receive, group_send and flush: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
