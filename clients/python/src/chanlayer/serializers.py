"""Message serializers: msgpack (the default) and JSON, with optional Fernet encryption.

The design and the bytes on the wire follow ``channels_redis.serializers``: a message is
``msgpack.packb(message)`` with the library defaults (``use_bin_type=True``, so bytes and str stay
distinct), optionally encrypted with ``MultiFernet`` under keys derived as
``urlsafe_b64encode(sha256(key).digest())``. Unlike channels_redis, no random prefix is
prepended: the server keeps messages in queues, not in sorted sets that need unique members, so
a message a chanlayer client writes is exactly what every other client (Python, Node, Rust) reads.

Custom formats register through :data:`registry`, as with channels_redis.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import json
import random
from collections.abc import Iterable
from typing import Any, Protocol

import msgpack


class SerializerDoesNotExist(KeyError):
    """The requested serializer format is not registered."""


class _Crypter(Protocol):
    def encrypt(self, data: bytes) -> bytes: ...

    def decrypt(self, token: bytes, ttl: int | None = None) -> bytes: ...


class BaseMessageSerializer(abc.ABC):
    """Turns messages (dicts) into bytes and back, with optional encryption.

    Subclasses implement :meth:`as_bytes` and :meth:`from_bytes`; :meth:`serialize` and
    :meth:`deserialize` add encryption and the (compatibility-only) random prefix.
    """

    def __init__(
        self,
        symmetric_encryption_keys: Iterable[str | bytes] | None = None,
        random_prefix_length: int = 0,
        expiry: float | None = None,
    ) -> None:
        self.random_prefix_length = random_prefix_length
        self.expiry = expiry
        self.crypter: _Crypter | None = None
        if symmetric_encryption_keys is not None:
            if isinstance(symmetric_encryption_keys, (str, bytes)):
                raise ValueError("symmetric_encryption_keys must be a list of possible keys")
            keys = list(symmetric_encryption_keys)
            if keys:
                self.crypter = self._make_crypter(keys)

    @staticmethod
    def _make_crypter(keys: list[str | bytes]) -> _Crypter:
        try:
            from cryptography.fernet import Fernet, MultiFernet
        except ImportError as exc:
            raise ValueError(
                "Cannot run with encryption without 'cryptography' installed."
            ) from exc
        sub_fernets = [Fernet(_derive_fernet_key(key)) for key in keys]
        return MultiFernet(sub_fernets)

    @abc.abstractmethod
    def as_bytes(self, message: Any) -> bytes:
        """Encode ``message`` (no encryption)."""

    @abc.abstractmethod
    def from_bytes(self, message: bytes) -> Any:
        """Decode bytes produced by :meth:`as_bytes`."""

    def serialize(self, message: Any) -> bytes:
        """Encode, then encrypt when keys are configured."""
        data = self.as_bytes(message)
        if self.crypter is not None:
            data = self.crypter.encrypt(data)
        if self.random_prefix_length > 0:
            prefix = random.getrandbits(8 * self.random_prefix_length)
            data = prefix.to_bytes(self.random_prefix_length, "big") + data
        return data

    def deserialize(self, message: bytes) -> Any:
        """Reverse :meth:`serialize`; encrypted messages older than ``expiry + 10`` s fail."""
        if self.random_prefix_length > 0:
            message = message[self.random_prefix_length :]
        if self.crypter is not None:
            ttl = None if self.expiry is None else int(self.expiry) + 10
            message = self.crypter.decrypt(message, ttl)
        return self.from_bytes(message)


def _derive_fernet_key(key: str | bytes) -> bytes:
    """Derive a Fernet key from any string, as channels_redis does."""
    if isinstance(key, str):
        key = key.encode("utf8")
    return base64.urlsafe_b64encode(hashlib.sha256(key).digest())


class MsgPackSerializer(BaseMessageSerializer):
    """msgpack with the library defaults: byte-compatible with channels_redis."""

    def as_bytes(self, message: Any) -> bytes:
        """Pack ``message``; a ``set`` or other non-spec type raises TypeError."""
        return msgpack.packb(message)  # type: ignore[no-any-return]

    def from_bytes(self, message: bytes) -> Any:
        """Unpack a message."""
        return msgpack.unpackb(message)


class JSONSerializer(BaseMessageSerializer):
    """JSON as UTF-8 (cannot carry bytes values)."""

    def as_bytes(self, message: Any) -> bytes:
        """Dump ``message`` to UTF-8 JSON."""
        return json.dumps(message).encode("utf-8")

    def from_bytes(self, message: bytes) -> Any:
        """Load UTF-8 JSON."""
        return json.loads(message)


class SerializersRegistry:
    """Maps format names to serializer classes."""

    def __init__(self) -> None:
        self._registry: dict[str, type[BaseMessageSerializer]] = {}

    def register_serializer(
        self, format: str, serializer_class: type[BaseMessageSerializer]
    ) -> None:
        """Register ``serializer_class`` under ``format``.

        Raises:
            AssertionError: the class does not implement ``serialize`` and ``deserialize``
                (the same check as channels_redis).
        """
        if not (
            callable(getattr(serializer_class, "serialize", None))
            and callable(getattr(serializer_class, "deserialize", None))
        ):
            raise AssertionError(f"{serializer_class!r} must implement serialize and deserialize")
        self._registry[format] = serializer_class

    def get_serializer(self, format: str, *args: Any, **kwargs: Any) -> BaseMessageSerializer:
        """Build the serializer registered under ``format``.

        Raises:
            SerializerDoesNotExist: ``format`` is not registered.
        """
        try:
            serializer_class = self._registry[format]
        except KeyError as exc:
            raise SerializerDoesNotExist(format) from exc
        return serializer_class(*args, **kwargs)


#: The process-wide registry. ``json`` and ``msgpack`` are registered.
registry = SerializersRegistry()
registry.register_serializer("json", JSONSerializer)
registry.register_serializer("msgpack", MsgPackSerializer)
