"""``wait_for`` that never loses a cancellation of the task that awaits it.

Before Python 3.12, ``asyncio.wait_for`` swallows a cancellation of its caller when the
awaited future completes in the same loop iteration (cpython#86296): the caller goes on as if
nothing had happened. A session task cancelled by ``asyncio.run`` at shutdown, right as its
connection came up, then opened a stream and waited on it forever, and the loop never closed.
On 3.11 this module waits with ``asyncio.timeout``, which keeps the cancellation; 3.12 and
later's ``asyncio.wait_for`` is built on it. Python 3.10 has neither and keeps
``asyncio.wait_for``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

if sys.version_info >= (3, 12) or sys.version_info < (3, 11):
    wait_for = asyncio.wait_for
else:

    async def wait_for(aw: Awaitable[T], timeout: float | None) -> T:
        """Await ``aw`` for at most ``timeout`` seconds, raising ``TimeoutError`` after."""
        async with asyncio.timeout(timeout):
            return await aw
