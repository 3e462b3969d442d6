"""Serializers: byte compatibility with channels_redis, encryption, registry (no server)."""

from __future__ import annotations

import pytest
from channels_redis.serializers import registry as redis_registry

from chanlayer import ChannelLayer
from chanlayer.serializers import (
    BaseMessageSerializer,
    JSONSerializer,
    MsgPackSerializer,
    SerializerDoesNotExist,
    registry,
)

MESSAGE = {
    "type": "chat.message",
    "text": "héllo",
    "raw": b"\x00\x01\xff",
    "n": 2**62,
    "neg": -5,
    "f": 0.25,
    "items": [1, "two", b"three", None, False],
    "nested": {"a": {"b": []}},
}


def test_msgpack_test_vector() -> None:
    data = MsgPackSerializer().serialize({"a": True, "b": None, "c": {"d": []}})
    assert data == b"\x83\xa1a\xc3\xa1b\xc0\xa1c\x81\xa1d\x90"


def test_msgpack_bytes_identical_to_channels_redis() -> None:
    theirs = redis_registry.get_serializer("msgpack", random_prefix_length=0)
    ours = MsgPackSerializer()
    assert ours.serialize(MESSAGE) == theirs.serialize(MESSAGE)
    assert ours.deserialize(theirs.serialize(MESSAGE)) == MESSAGE
    assert theirs.deserialize(ours.serialize(MESSAGE)) == MESSAGE


def test_bytes_and_str_stay_distinct() -> None:
    out = MsgPackSerializer().deserialize(MsgPackSerializer().serialize(MESSAGE))
    assert isinstance(out["raw"], bytes)
    assert isinstance(out["text"], str)
    assert out == MESSAGE


def test_tuple_becomes_list_and_set_is_rejected() -> None:
    ser = MsgPackSerializer()
    assert ser.deserialize(ser.serialize({"t": (1, 2)})) == {"t": [1, 2]}
    with pytest.raises(TypeError):
        ser.serialize({"s": {1, 2}})


def test_encryption_compatible_with_channels_redis() -> None:
    keys = ["key-one", "key-two"]
    theirs = redis_registry.get_serializer(
        "msgpack", symmetric_encryption_keys=keys, random_prefix_length=0, expiry=60
    )
    ours = MsgPackSerializer(symmetric_encryption_keys=keys, expiry=60)
    assert ours.deserialize(theirs.serialize(MESSAGE)) == MESSAGE
    assert theirs.deserialize(ours.serialize(MESSAGE)) == MESSAGE
    assert b"chat.message" not in ours.serialize(MESSAGE)
    # Key rotation: a message encrypted with the old first key still decrypts.
    rotated = MsgPackSerializer(symmetric_encryption_keys=["new-key", "key-one"], expiry=60)
    assert rotated.deserialize(ours.serialize(MESSAGE)) == MESSAGE


def test_encryption_keys_must_be_a_list() -> None:
    with pytest.raises(ValueError, match="must be a list of possible keys"):
        MsgPackSerializer(symmetric_encryption_keys="not-a-list")
    with pytest.raises(ValueError, match="must be a list of possible keys"):
        ChannelLayer(symmetric_encryption_keys=b"bytes")  # type: ignore[arg-type]


def test_json_serializer() -> None:
    ser = registry.get_serializer("json")
    assert isinstance(ser, JSONSerializer)
    assert ser.deserialize(ser.serialize({"a": [1, "b"]})) == {"a": [1, "b"]}


def test_registry() -> None:
    with pytest.raises(SerializerDoesNotExist):
        registry.get_serializer("nope")
    with pytest.raises(SerializerDoesNotExist):
        ChannelLayer(serializer_format="nope")

    class Upper(BaseMessageSerializer):
        def as_bytes(self, message: object) -> bytes:
            return repr(message).encode()

        def from_bytes(self, message: bytes) -> object:
            return eval(message)

    registry.register_serializer("upper", Upper)
    assert ChannelLayer(serializer_format="upper").deserialize(b"{'a': 1}") == {"a": 1}
    with pytest.raises(AssertionError):
        registry.register_serializer("bad", object)  # type: ignore[arg-type]
