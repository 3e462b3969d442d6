"""Configuration: channels_redis' keys and defaults, the extra keys, unknown keys (no server)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from channels.layers import BaseChannelLayer

from chanlayer import ChannelLayer


def test_defaults_match_channels_redis() -> None:
    layer = ChannelLayer()
    assert isinstance(layer, BaseChannelLayer)
    assert layer.extensions == ["groups", "flush"]
    assert layer.target == "127.0.0.1:50051"
    assert layer.prefix == "asgi"
    assert layer.expiry == 60
    assert layer.group_expiry == 86400
    assert layer.capacity == 100
    assert layer.get_capacity("anything") == 100
    assert len(layer.client_prefix) == 32


def test_channels_redis_keys_are_accepted() -> None:
    layer = ChannelLayer(
        prefix="myapp",
        expiry=30,
        group_expiry=600,
        capacity=7,
        channel_capacity={"http.request": 200, "http.response!*": 10, re.compile(r"^ws\."): 5},
        symmetric_encryption_keys=["secret"],
        serializer_format="msgpack",
        random_prefix_length=0,
    )
    assert layer.get_capacity("http.request") == 200
    assert layer.get_capacity("http.response!abc") == 10
    assert layer.get_capacity("ws.send") == 5
    assert layer.get_capacity("other") == 7
    rules = layer._state.capacity_rules
    assert [r.WhichOneof("pattern") for r in rules] == ["glob", "glob", "regex"]
    assert rules[2].regex == r"^ws\."


def test_unknown_key_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'hosts'") as hosts:
        ChannelLayer(hosts=[("localhost", 6379)])
    assert "replace CONFIG['hosts'] with CONFIG['target']" in str(hosts.value)
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        ChannelLayer(foo=1)


def test_prefix_must_be_str() -> None:
    with pytest.raises(TypeError):
        ChannelLayer(prefix=b"bytes")  # type: ignore[arg-type]


def test_token_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("s3cret\n")
    layer = ChannelLayer(token_file=str(path))
    assert layer._transport_config.token == "s3cret"
    with pytest.raises(TypeError):
        ChannelLayer(token="a", token_file=str(path))


def test_tls_files_imply_tls(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    layer = ChannelLayer(tls_ca_file=str(ca), tls_server_name="chanlayer.internal")
    assert layer._transport_config.tls
    assert layer._transport_config.tls_ca == ca.read_bytes()
    assert not ChannelLayer()._transport_config.tls


def test_new_channel_before_any_io() -> None:
    from asgiref.sync import async_to_sync

    layer = ChannelLayer(target="127.0.0.1:1")
    name = async_to_sync(layer.new_channel)()
    assert name.startswith(f"specific.{layer.client_prefix}!")
    assert layer.require_valid_channel_name(name)


def test_backend_through_channels_manager() -> None:
    from channels.layers import ChannelLayerManager
    from django.test import override_settings

    config = {"default": {"BACKEND": "chanlayer.ChannelLayer", "CONFIG": {"target": "h:1"}}}
    with override_settings(CHANNEL_LAYERS=config):
        layer = ChannelLayerManager().make_backend("default")
    assert isinstance(layer, ChannelLayer)
    assert layer.target == "h:1"
    bad = {"default": {"BACKEND": "chanlayer.ChannelLayer", "CONFIG": {"hosts": []}}}
    with override_settings(CHANNEL_LAYERS=bad), pytest.raises(TypeError):
        ChannelLayerManager().make_backend("default")


def _native_installed() -> bool:
    try:
        import chanlayer._native  # noqa: F401
    except ImportError:
        return False
    return True


def test_transport_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHANLAYER_TRANSPORT", raising=False)
    assert ChannelLayer(transport="grpc").transport == "grpc"
    auto = ChannelLayer().transport
    assert auto == ("native" if _native_installed() else "grpc")
    # A Unix socket goes native like host:port; targets the extension cannot reach stay on
    # grpc.aio.
    assert ChannelLayer(target="unix:/tmp/chanlayer.sock").transport == auto
    assert ChannelLayer(target="unix-abstract:chanlayer").transport == "grpc"
    assert ChannelLayer(target="ipv4:127.0.0.1:1").transport == "grpc"
    monkeypatch.setenv("CHANLAYER_TRANSPORT", "grpc")
    assert ChannelLayer().transport == "grpc"
    with pytest.raises(ValueError, match="transport must be"):
        ChannelLayer(transport="quic")


@pytest.mark.skipif(not _native_installed(), reason="chanlayer-native is not installed")
def test_native_transport_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHANLAYER_TRANSPORT", "native")
    assert ChannelLayer().transport == "native"
    assert ChannelLayer(target="dns:///localhost:50051").transport == "native"
    assert ChannelLayer(transport="grpc").transport == "grpc"
    assert ChannelLayer(target="unix:/tmp/chanlayer.sock").transport == "native"
    assert ChannelLayer(target="unix:///tmp/chanlayer.sock").transport == "native"
    with pytest.raises(ValueError, match="cannot reach"):
        ChannelLayer(target="unix-abstract:chanlayer")


def test_unix_socket_targets_are_checked() -> None:
    for target in ("unix:", "unix://", "unix://host/chanlayer.sock"):
        with pytest.raises(ValueError, match="unix"):
            ChannelLayer(target=target)
    with pytest.raises(ValueError, match="serves no TLS"):
        ChannelLayer(target="unix:/run/chanlayer/chanlayer.sock", tls=True)
