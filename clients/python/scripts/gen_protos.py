#!/usr/bin/env python3
"""Generate the gRPC stubs of the Python client from the repository's ``proto/`` tree.

Usage::

    python scripts/gen_protos.py          # regenerate src/chanlayer/_proto in place
    python scripts/gen_protos.py --check  # regenerate into a temporary directory and diff

The generator is pinned in ``requirements-gen.txt`` (grpcio-tools bundles protoc, and
mypy-protobuf writes the ``.pyi`` type stubs). The generated code sets the runtime floors of
``pyproject.toml``: ``*_pb2_grpc.py`` refuses a grpcio older than the grpcio-tools that wrote it,
and ``*_pb2.py`` refuses a protobuf runtime older than the bundled protoc.

protoc writes imports by proto path (``from chanlayer.v1 import ...``); they are rewritten to
the private package path (``from chanlayer._proto.v1 import ...``) with explicit patterns, so
the stubs never depend on ``sys.path`` tricks.
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLIENT_ROOT = HERE.parent
PROTO_ROOT = (CLIENT_ROOT / ".." / ".." / "proto").resolve()
OUT_PACKAGE = CLIENT_ROOT / "src" / "chanlayer" / "_proto"
REQUIREMENTS = CLIENT_ROOT / "requirements-gen.txt"

#: The proto files to compile, relative to PROTO_ROOT.
PROTO_FILES = ["chanlayer/v1/channel_layer.proto"]

#: (pattern, replacement) pairs applied to every generated file.
IMPORT_FIXES = [
    (re.compile(r"^from chanlayer\.v1 import ", re.MULTILINE), "from chanlayer._proto.v1 import "),
    (re.compile(r"^import chanlayer\.v1\.", re.MULTILINE), "import chanlayer._proto.v1."),
]

PACKAGE_DOCS = {
    "__init__.py": '"""Generated gRPC stubs of the chanlayer API. Private: never edit."""\n',
    "v1/__init__.py": (
        '"""Generated stubs of ``chanlayer.v1`` (``proto/chanlayer/v1``). '
        'Regenerate with scripts/gen_protos.py."""\n'
    ),
}


def check_pins() -> None:
    """Fail unless the installed generator matches ``requirements-gen.txt`` exactly."""
    from importlib.metadata import PackageNotFoundError, version

    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, pinned = line.partition("==")
        try:
            installed = version(name)
        except PackageNotFoundError:
            sys.exit(f"{name} is not installed: pip install -r {REQUIREMENTS}")
        if installed != pinned:
            sys.exit(f"{name} {installed} is installed but {pinned} is pinned in {REQUIREMENTS}")


def generate(out: Path) -> None:
    """Compile PROTO_FILES into the package directory ``out`` (created or emptied first)."""
    if out.exists():
        shutil.rmtree(out)
    with tempfile.TemporaryDirectory() as raw_dir:
        raw = Path(raw_dir)
        bin_dir = Path(sys.executable).parent
        cmd = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"--python_out={raw}",
            f"--grpc_python_out={raw}",
            f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
            f"--mypy_out={raw}",
            f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
            f"--mypy_grpc_out={raw}",
            *PROTO_FILES,
        ]
        subprocess.run(cmd, check=True, capture_output=True)
        src = raw / "chanlayer"
        for path in sorted(src.rglob("*")):
            if path.is_dir() or path.suffix not in {".py", ".pyi"}:
                continue
            text = path.read_text()
            for pattern, replacement in IMPORT_FIXES:
                text = pattern.sub(replacement, text)
            target = out / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    for rel, doc in PACKAGE_DOCS.items():
        (out / rel).write_text(doc)


def diff_trees(expected: Path, actual: Path) -> list[str]:
    """Return a unified diff between two generated trees (empty when identical)."""
    lines: list[str] = []
    names = {p.relative_to(expected) for p in expected.rglob("*") if p.is_file()}
    names |= {p.relative_to(actual) for p in actual.rglob("*") if p.is_file()}
    for rel in sorted(names):
        if "__pycache__" in rel.parts:
            continue
        a = (expected / rel).read_text().splitlines(True) if (expected / rel).exists() else []
        b = (actual / rel).read_text().splitlines(True) if (actual / rel).exists() else []
        lines.extend(difflib.unified_diff(b, a, f"committed/{rel}", f"generated/{rel}"))
    return lines


def main() -> int:
    """Regenerate the stubs, or with ``--check`` report drift and exit 1 on any."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temporary directory and fail if the committed stubs differ",
    )
    args = parser.parse_args()
    check_pins()
    if not args.check:
        generate(OUT_PACKAGE)
        print(f"generated {OUT_PACKAGE.relative_to(CLIENT_ROOT)} from {PROTO_ROOT}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "_proto"
        generate(fresh)
        drift = diff_trees(fresh, OUT_PACKAGE)
    if drift:
        sys.stdout.writelines(drift)
        print("\nthe committed stubs are stale: run clients/python/scripts/gen_protos.py")
        return 1
    print("generated stubs are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
