"""Which transport a layer picks, the line it logs once at its first connection, and the
refusal of a native extension of another version than the layer's."""

from __future__ import annotations

import logging
import sys

import pytest

from chanlayer import ChannelLayer, _choice
from chanlayer._native_version import NativeVersionMismatch, check_native_version
from chanlayer._version import __version__

try:
    import chanlayer_native
except ImportError:
    chanlayer_native = None

needs_native = pytest.mark.skipif(chanlayer_native is None, reason="chanlayer-native missing")


@pytest.fixture
def no_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import chanlayer_native`` fail, as where it is not installed (until undone)."""
    monkeypatch.setitem(sys.modules, "chanlayer_native", None)
    monkeypatch.delitem(sys.modules, "chanlayer._native", raising=False)


def _choice_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "transport" in r.getMessage()]


async def test_the_choice_is_logged_once_at_first_use(
    make_layer: type[ChannelLayer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chanlayer")
    layer = make_layer()
    assert _choice_records(caplog) == []  # nothing before the first use
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "a"})
    assert (await layer.receive(channel))["type"] == "a"
    await layer.group_add("g", channel)
    await layer.group_send("g", {"type": "b"})
    assert (await layer.receive(channel))["type"] == "b"
    records = _choice_records(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].levelno == logging.INFO
    assert f"transport {layer.transport}" in records[0].getMessage()
    await layer.flush()
    await layer.close()


def test_grpc_asked_for_is_info(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHANLAYER_TRANSPORT", raising=False)
    choice = ChannelLayer(transport="grpc")._transport_choice
    assert (choice.transport, choice.level) == ("grpc", logging.INFO)
    assert "as the transport setting asks" in choice.reason


@needs_native
def test_native_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHANLAYER_TRANSPORT", raising=False)
    choice = ChannelLayer()._transport_choice
    assert (choice.transport, choice.level) == ("native", logging.INFO)
    # A target only grpc.aio reaches is no reason to warn.
    choice = ChannelLayer(target="unix-abstract:chanlayer")._transport_choice
    assert (choice.transport, choice.level) == ("grpc", logging.INFO)
    assert "cannot reach" in choice.reason


@pytest.mark.usefixtures("no_extension")
def test_missing_extension_where_expected_is_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CHANLAYER_TRANSPORT", raising=False)
    monkeypatch.setattr(_choice, "NATIVE_EXPECTED", True)
    choice = ChannelLayer()._transport_choice
    assert (choice.transport, choice.level) == ("grpc", logging.WARNING)
    assert "pip install chanlayer-native" in choice.reason
    monkeypatch.setattr(_choice, "NATIVE_EXPECTED", False)
    choice = ChannelLayer()._transport_choice
    assert (choice.transport, choice.level) == ("grpc", logging.INFO)
    assert "no native transport is published" in choice.reason
    with pytest.raises(ImportError):
        ChannelLayer(transport="native")


def test_native_is_expected_on_the_platforms_with_wheels() -> None:
    import platform

    if sys.platform == "linux" and platform.machine() == "x86_64":
        expected = platform.python_implementation() == "CPython"
        assert expected == _choice.NATIVE_EXPECTED


def test_version_mismatch_is_refused() -> None:
    class Ext:
        __version__ = "0.0.1"
        __file__ = "/somewhere/chanlayer_native.so"

    with pytest.raises(NativeVersionMismatch) as info:
        check_native_version(Ext)  # type: ignore[arg-type]
    message = str(info.value)
    assert f"chanlayer {__version__} needs chanlayer-native {__version__}" in message
    assert "chanlayer-native 0.0.1 is installed (/somewhere/chanlayer_native.so)" in message
    assert isinstance(info.value, ImportError)


@needs_native
def test_a_mismatched_extension_stops_the_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even in "auto" mode: a broken install is not a reason to fall back to grpc.aio."""
    monkeypatch.delenv("CHANLAYER_TRANSPORT", raising=False)
    monkeypatch.setattr(chanlayer_native, "__version__", "9.9.9")
    # Imported anew (the module in use comes back when the monkeypatch is undone).
    monkeypatch.delitem(sys.modules, "chanlayer._native", raising=False)
    with pytest.raises(NativeVersionMismatch, match=r"chanlayer-native 9\.9\.9 is installed"):
        ChannelLayer()
    assert ChannelLayer(transport="grpc").transport == "grpc"
