#!/usr/bin/env bash
# Check the Binder setup without Docker, the way repo2docker uses it:
#   1. apt packages from binder/apt.txt (only when graphviz's `dot` is missing; needs root or sudo),
#   2. a fresh virtual environment,
#   3. `pip install -r binder/requirements.txt` run from the repository root,
#   4. every tutorial executed in that environment, offline, with the checks of
#      tests/test_tutorials.py.
# Exits non-zero when any step fails. Usage: bash binder/check.sh
set -euo pipefail

cd "$(dirname "$0")/.."
start=$SECONDS

if ! command -v dot >/dev/null 2>&1; then
    echo "== dot not found: installing binder/apt.txt with apt-get"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    grep -v -e '^\s*#' -e '^\s*$' binder/apt.txt | DEBIAN_FRONTEND=noninteractive xargs $SUDO apt-get install -y -qq
fi

# binder/runtime.txt says python-X.Y; use that interpreter when this machine has it.
want=$(sed -n 's/^python-\([0-9.]*\).*/\1/p' binder/runtime.txt)
PYTHON=python3
if [ -n "$want" ] && command -v "python$want" >/dev/null 2>&1; then PYTHON="python$want"; fi
have=$($PYTHON -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$have" = "$want" ] || echo "== warning: binder/runtime.txt asks for Python $want, checking with $have"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
venv="$tmp/venv"
echo "== creating a fresh virtual environment with $PYTHON ($have) in $venv"
$PYTHON -m venv "$venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$venv/bin/python" -m pip install -q -U pip

echo "== pip install -r binder/requirements.txt (from the repository root, as repo2docker does)"
"$venv/bin/python" -m pip install -q -r binder/requirements.txt
if [ -x binder/postBuild ]; then
    echo "== running binder/postBuild"
    PATH="$venv/bin:$PATH" binder/postBuild
fi

# repo2docker's image already has Jupyter and a kernel; pytest and nbclient are only for this check.
"$venv/bin/python" -m pip install -q -c constraints/ci.txt pytest nbclient nbformat ipykernel

echo "== running the tutorials (offline: the test unsets OPENAI_API_KEY, OPENAI_BASE_URL, TRACE_NB_MODEL)"
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_tutorials.py

echo "== binder check passed in $((SECONDS - start)) s"
