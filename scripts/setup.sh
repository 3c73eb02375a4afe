#!/usr/bin/env bash
# Set up this machine for labup, from a fresh Debian 12 (root) or over an earlier setup:
#
#   bash scripts/setup.sh && .venv/bin/labup 1
#
# 1. scripts/engine.sh: Debian packages and a Docker engine that answers.
# 2. A virtualenv at .venv with `pip install -e '.[dev]'` (skipped when nothing changed).
# 3. The offline images the catalog's labs need (no registry is reachable in class).
#
# Safe to run again; a re-run with nothing to do takes about a second.
# Environment: PYTHON (the interpreter for the venv, default python3, must be >= 3.11).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV="$ROOT/.venv"
STAMP="$VENV/.labup-install-stamp"
PY=${PYTHON:-python3}

say() { printf 'setup.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# 1. the engine --------------------------------------------------------------------------
bash "$ROOT/scripts/engine.sh"

# 2. the virtualenv ----------------------------------------------------------------------
python_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; }

command -v "$PY" >/dev/null 2>&1 || die "no $PY on PATH (install python3, or set PYTHON=...)"
python_ok "$PY" || die "$PY is $("$PY" -V 2>&1); labup needs Python 3.11 or newer (set PYTHON=...)"

if [ -x "$VENV/bin/python" ] && ! python_ok "$VENV/bin/python"; then
    say "existing .venv has an old Python: recreating it"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    if ! "$PY" -m venv "$VENV" 2>/dev/null; then
        # Debian's own python3 needs python3-venv for ensurepip.
        rm -rf "$VENV"
        say "python3 -m venv failed: installing Debian's python3-venv"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv </dev/null \
            || die "could not install python3-venv"
        "$PY" -m venv "$VENV" || die "could not create $VENV"
    fi
fi

# Reinstall only when the packaging files or the interpreter changed.
want=$( { cat pyproject.toml setup.py; "$VENV/bin/python" -VV; echo editable_mode=compat; } | sha256sum | cut -d' ' -f1)
have=$(cat "$STAMP" 2>/dev/null || true)
if [ "$want" != "$have" ] || [ ! -x "$VENV/bin/labup" ] \
    || ! "$VENV/bin/python" -c 'import labspec, provisioner' 2>/dev/null; then
    say "installing labup into .venv (pip install -e '.[dev]')"
    # compat: a path entry, not an import hook (the hook cost ~20 ms on every labup command)
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev]' \
        --config-settings editable_mode=compat </dev/null
    echo "$want" >"$STAMP"
else
    say ".venv is up to date"
fi

# 3. offline images (catalog) -------------------------------------------------------------
# `labup images prepare --offline` builds the images the catalog's labs need from local
# sources (no registry is reachable): busybox from busybox-static, python from debootstrap.
# Cached: a second run takes seconds.
"$VENV/bin/labup" images prepare --offline

say "ready: .venv/bin/labup --help"
