"""The package's module layout, read from the imports themselves (``ast``, nothing is imported).

Every ``import`` statement counts, wherever it stands: at module level, under ``TYPE_CHECKING``
or inside a function. What must hold:

* no import circle among the package's modules;
* the sessions, the transports and the shared layer state never reach ``chanlayer.core``;
* only the transport module talks to ``grpc`` (the others compare ``StatusCode`` numbers);
* ``LayerState`` is a leaf: it imports nothing of the package but the generated messages.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grpc

from chanlayer._status import StatusCode

PACKAGE = "chanlayer"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE
#: Generated code (protoc): not part of the hand-written layout.
GENERATED = f"{PACKAGE}._proto"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    modules = {_module_name(path): path for path in SOURCE.rglob("*.py")}
    return {name: path for name, path in modules.items() if not name.startswith(GENERATED)}


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports: ``from a import b`` counts as ``a.b`` when that is a file."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    known = {_module_name(p) for p in SOURCE.rglob("*.py")}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            for alias in node.names:
                submodule = f"{origin}.{alias.name}"
                found.add(submodule if submodule in known else origin)
    return found


def _graph() -> dict[str, set[str]]:
    """The import graph among the package's hand-written modules."""
    modules = _modules()
    return {
        name: {target for target in _imports(name, path) if target in modules and target != name}
        for name, path in modules.items()
    }


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_layout_is_read_from_every_module() -> None:
    graph = _graph()
    assert {
        "chanlayer",
        "chanlayer.core",
        "chanlayer._session",
        "chanlayer._native",
        "chanlayer._transport",
        "chanlayer._state",
        "chanlayer._status",
        "chanlayer.exceptions",
    } <= set(graph)
    # The parser sees imports at every level, function-local ones included.
    assert "chanlayer._native" in graph["chanlayer.core"]
    assert "chanlayer._session" in graph["chanlayer._native"]


def test_no_import_circle() -> None:
    graph = _graph()
    circles = [
        f"{name} -> ... -> {name}" for name in sorted(graph) if name in _reachable(graph, name)
    ]
    assert circles == []


def test_sessions_and_transports_never_reach_the_layer() -> None:
    graph = _graph()
    for name in (
        "chanlayer._session",
        "chanlayer._native",
        "chanlayer._transport",
        "chanlayer._state",
        "chanlayer.exceptions",
    ):
        reached = _reachable(graph, name)
        assert "chanlayer.core" not in reached, name
        assert "chanlayer" not in reached, name


def test_only_the_transport_module_talks_to_grpc() -> None:
    grpc_users = {
        name
        for name, path in _modules().items()
        if any(
            target == "grpc"
            or target.startswith("grpc.")
            or target == f"{GENERATED}.v1.channel_layer_pb2_grpc"
            for target in _imports(name, path)
        )
    }
    assert grpc_users == {"chanlayer._transport"}


def test_layer_state_is_a_leaf() -> None:
    modules = _modules()
    own = {
        target
        for target in _imports("chanlayer._state", modules["chanlayer._state"])
        if target.startswith(f"{PACKAGE}.") or target == PACKAGE
    }
    assert own == {f"{GENERATED}.v1.channel_layer_pb2"}


def test_status_codes_are_grpc_numbers() -> None:
    assert {code.name: code.value for code in StatusCode} == {
        code.name: code.value[0] for code in grpc.StatusCode
    }
