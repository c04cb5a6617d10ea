"""The code in README.md and docs/coming_from_trace.md runs as printed, offline.

Each ```python block is run, in order, in the real IPython InteractiveShell (magics included),
with no OPENAI_API_KEY / OPENAI_BASE_URL / TRACE_NB_MODEL: what a newcomer pasting them on a
machine without a key gets.
"""

from __future__ import annotations

import pathlib
import re

import pytest
from conftest import ipython_shell

from trace_nb.llm.default import default_llm, set_default_llm

ROOT = pathlib.Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: pathlib.Path) -> list[str]:
    return BLOCK.findall(path.read_text())


def section(path: pathlib.Path, title: str) -> pathlib.Path:
    """``path``'s text from the heading ``title`` to the next heading of the same level."""
    text = path.read_text()
    start = text.index(title)
    level = title.split(" ")[0] + " "
    end = text.find("\n" + level, start + len(title))
    return text[start : end if end != -1 else len(text)]


@pytest.fixture
def offline(monkeypatch, tmp_path):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TRACE_NB_MODEL", "TRACE_NB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TRACE_NB_CACHE_DIR", str(tmp_path / "cache"))
    previous = default_llm()
    set_default_llm(None)
    yield ipython_shell()
    set_default_llm(previous)


def run_block(ip, code: str) -> object:
    result = ip.run_cell(code, store_history=False)
    if not result.success:
        raise AssertionError(f"this block failed:\n{code}") from (
            result.error_before_exec or result.error_in_exec
        )
    return result.result


def test_readme_ten_lines_run_as_printed(offline, capfd):
    ip = offline
    blocks = BLOCK.findall(section(ROOT / "README.md", "## Ten lines"))
    assert len(blocks) == 4 and blocks[0].startswith("%load_ext trace_nb")
    assert any(b.startswith("%%trace --name qa") for b in blocks)
    results = [run_block(ip, b) for b in blocks]
    printed = capfd.readouterr().out
    # one line says which model answers
    (line,) = [x for x in printed.splitlines() if "model" in x and "Out[" not in x]
    assert "OFFLINE" in line and "'scripted-offline'" in line
    import trace_nb

    qa = trace_nb.session("qa")
    assert results[-1] == "ANSWER BRIEFLY. Sky colour?"  # what the README's comment says
    assert qa.parameters["system_prompt"] == "Answer briefly."
    assert qa.last_feedback[1] == 1.0
    assert "human" in list(qa.history["decided_by"])


def test_readme_model_blocks_run(offline, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-NotARealKey-0123456789")
    ip = offline
    blocks = BLOCK.findall(section(ROOT / "README.md", "## Pointing at a model"))
    assert blocks
    for code in blocks:
        run_block(ip, code)  # constructs clients only: nothing is sent
    assert ip.user_ns["llm"].model == "llama3.1"


#: a block the tests do not run says so just above it, and where its runnable version is
NOT_RUN = re.compile(
    r"^<!-- not run: [^\n]*(?:tutorial|notebooks/)[^\n]*-->\n```python\n(.*?)^```", re.S | re.M
)


def test_every_readme_python_block_is_covered():
    covered = BLOCK.findall(section(ROOT / "README.md", "## Ten lines"))
    covered += BLOCK.findall(section(ROOT / "README.md", "## Pointing at a model"))
    covered += NOT_RUN.findall((ROOT / "README.md").read_text())
    assert sorted(python_blocks(ROOT / "README.md")) == sorted(covered)


def test_coming_from_trace_quickstart_port_runs_offline(offline, capfd):
    ip = offline
    blocks = BLOCK.findall(
        section(ROOT / "docs" / "coming_from_trace.md", "## The reference's QuickStart, ported")
    )
    assert len(blocks) == 3 and any("approve_code=True" in b for b in blocks)
    for code in blocks:
        run_block(ip, code)
    printed = capfd.readouterr().out
    assert "Running OFFLINE" in printed and "Training Epoch 1" in printed
    assert printed.rstrip().endswith("[1, 4, 2, 3]")  # what the block's last comment says
    ns = ip.user_ns
    assert ns["strange_sort_list"]([5, 1, 4, 2, 3]).data == [1, 5, 2, 4, 3]
    assert type(ns["z"].backward("again", visualize=True)).__name__ == "Digraph"


def test_every_coming_from_trace_python_block_runs(offline):
    # the import table is not Python (two columns); every other block must run
    ip = offline
    for code in python_blocks(ROOT / "docs" / "coming_from_trace.md"):
        if code.startswith("# Trace  "):
            continue
        run_block(ip, code)
