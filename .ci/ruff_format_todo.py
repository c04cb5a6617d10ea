"""Rewrite [tool.ruff.format] exclude in pyproject.toml: the files `ruff format` would change now.

`make lint` (and CI) checks the formatting of every other file. The list must only shrink:
format a file (`ruff format FILE`, in a commit of its own) when you next own it and rerun
this (`make format-todo`). New files are formatted from the start, so they never belong here.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
PATHS = ["trace_nb", "tests", "bench", "notebooks"]
HEADER = (
    "[tool.ruff.format]\n"
    "# Files not yet run through `ruff format`; `make lint` (and CI) checks every other file.\n"
    "# This list must shrink: format a file in a commit of its own when you next own it, then\n"
    "# `make format-todo`. New files are formatted from the start.\n"
)


def main() -> int:
    ruff = pathlib.Path(sys.executable).with_name("ruff")
    out = subprocess.run(
        [
            str(ruff),
            "format",
            "--check",
            "--output-format",
            "concise",
            "--config",
            "format.exclude=[]",
            *PATHS,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    files = sorted(
        {re.split(r":(?:\d|cell )", line)[0] for line in out.splitlines() if "unformatted" in line}
    )
    block = HEADER + "exclude = [\n" + "".join(f'    "{f}",\n' for f in files) + "]\n"
    path = ROOT / "pyproject.toml"
    text = path.read_text()
    if "[tool.ruff.format]" in text:
        text = re.sub(r"\[tool\.ruff\.format\]\n.*?\n\]\n", lambda _: block, text, flags=re.S)
    else:
        text = text.replace("[tool.ruff.lint]", block + "\n[tool.ruff.lint]")
    path.write_text(text)
    print(f"{len(files)} files not yet formatted, listed in pyproject.toml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
