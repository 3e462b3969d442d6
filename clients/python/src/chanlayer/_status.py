"""The canonical gRPC status codes, as numbers, for the modules that do not import ``grpc``.

Only :mod:`chanlayer._transport` talks to ``grpc``; the exception mapping, the sessions and the
native transport compare codes with :class:`StatusCode`, whose values are the canonical numbers
``grpc.StatusCode.<NAME>.value[0]`` (the layout tests check that they agree).
"""

from __future__ import annotations

import enum


class StatusCode(enum.IntEnum):
    """A canonical status code (``google.rpc.Code``); equal to its number."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16
