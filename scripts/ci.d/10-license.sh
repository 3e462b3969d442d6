#!/usr/bin/env bash
# Licensing and release notes: LICENSE is the Apache License 2.0 verbatim, the packages that
# ship a copy (the Node and Python clients) carry the same file, every manifest (the Cargo
# workspace and its members, package.json, the Python projects and the server wheel's) says
# Apache-2.0, and CHANGELOG.md keeps an Unreleased section.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The MD5 of https://www.apache.org/licenses/LICENSE-2.0.txt.
[ "$(md5sum <LICENSE | cut -d' ' -f1)" = 3b83ef96387f14655fc854ddc3c6bd57 ] || {
    echo "LICENSE is not the Apache License 2.0 text verbatim" >&2
    exit 1
}
for copy in clients/node/LICENSE clients/python/LICENSE; do
    cmp LICENSE "$copy"
done

python3 - <<'PY'
import json
import sys
import tomllib
from pathlib import Path

wanted = "Apache-2.0"
found = {}
root = tomllib.loads(Path("Cargo.toml").read_text())
found["Cargo.toml [workspace.package]"] = root["workspace"]["package"].get("license")
members = ["."] + root["workspace"].get("members", [])
for member in members:
    package = tomllib.loads((Path(member) / "Cargo.toml").read_text()).get("package", {})
    license = package.get("license")
    if isinstance(license, dict) and license.get("workspace"):
        license = found["Cargo.toml [workspace.package]"]
    found[f"{member}/Cargo.toml"] = license
found["clients/node/package.json"] = json.loads(Path("clients/node/package.json").read_text()).get("license")
for project in (
    "clients/python/pyproject.toml",
    "clients/python/native/pyproject.toml",
    "packaging/server/pyproject.toml",
):
    found[project] = tomllib.loads(Path(project).read_text())["project"].get("license")
wrong = {k: v for k, v in found.items() if v != wanted}
for where, license in wrong.items():
    print(f"{where}: license {license!r}, not {wanted}", file=sys.stderr)
if wrong:
    sys.exit(1)
print(f"{len(found)} manifests say {wanted}")
PY

grep -qx '## \[Unreleased\]' CHANGELOG.md || {
    echo "CHANGELOG.md has no '## [Unreleased]' section" >&2
    exit 1
}
echo "LICENSE, its copies and CHANGELOG.md checked"
