#!/usr/bin/env python3
"""Print the layer's dependencies but its native transport, one per line.

For installing ``chanlayer`` without ``chanlayer-native`` (``pip install --no-deps``, then these):
from a checkout where no wheel of the extension was built, or to test the grpc.aio transport
as the pure wheel has it where no native wheel exists.
"""

import ast
import re
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"

# The `dependencies = [...]` array of [project] (tomllib is Python >= 3.11 only): a list of
# plain strings, which Python's literal syntax reads as TOML does.
text = PYPROJECT.read_text()
match = re.search(r"^dependencies = (\[.*?^\])", text, re.MULTILINE | re.DOTALL)
if match is None:
    raise SystemExit(f"no dependencies array in {PYPROJECT}")
for requirement in ast.literal_eval(match.group(1)):
    if not requirement.startswith("chanlayer-native"):
        print(requirement.split(";", 1)[0].strip())
