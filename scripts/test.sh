#!/usr/bin/env bash
# The project's test command (what CI runs, and what the README shows):
#
#   bash scripts/test.sh            # ruff, mypy --strict, then every test under tests/
#   bash scripts/test.sh -m 'not docker' -x    # extra arguments go to pytest
#
# Runs all three even when one fails, and exits non-zero if any failed. pytest's exit 5
# ("no tests collected") counts as a failure. Needs the venv of scripts/setup.sh.
# Set LABUP_REQUIRE_ENGINE=1 to make engine-marked tests fail, not skip, without an engine.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN="$ROOT/.venv/bin"

for tool in ruff mypy pytest; do
    if [ ! -x "$BIN/$tool" ]; then
        echo "test.sh: $BIN/$tool is missing: run 'bash scripts/setup.sh' first" >&2
        exit 2
    fi
done

failed=()

echo "== ruff check" >&2
"$BIN/ruff" check . || failed+=(ruff)

echo "== mypy (strict, per pyproject.toml)" >&2
"$BIN/mypy" || failed+=(mypy)

echo "== pytest" >&2
"$BIN/pytest" tests "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests: that is a failure" >&2
    failed+=("pytest (no tests)")
elif [ "$rc" -ne 0 ]; then
    failed+=("pytest (exit $rc)")
fi

if [ "${#failed[@]}" -ne 0 ]; then
    echo "test.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
