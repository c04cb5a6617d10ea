"""Every tutorial runs from top to bottom offline, and its results are checked.

The tutorials carry no test code: the checks live here. Each notebook is executed in a fresh
kernel (in ``notebooks/``, with no ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` / ``TRACE_NB_MODEL``,
so the scripted offline replies answer), with each check inserted, in memory only, right after
the cell whose id it names: it sees the notebook's state at that point. A failing cell or a
failing check fails the test, and a missing anchor cell too (so a check cannot silently stop
running). ``make tutorials`` runs this file.
"""

from __future__ import annotations

import os
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
CELL_TIMEOUT_S = 600  # a hang guard for one cell (Ray starting on a busy machine), not a target

#: notebook -> [(id of the cell the check follows, the check)]
CHECKS: dict[str, list[tuple[str, str]]] = {
    "01_quickstart.ipynb": [
        (
            "nb01-21",
            'assert session.parameters["system_prompt"] == "Answer with one word only."\n'
            'assert session.output == "Paris"',
        ),
    ],
    "02_numerical_optimization.ipynb": [
        (
            "nb02-14",
            "assert abs(optoprime_outputs[-1] - TARGET) < 0.05\n"
            "assert len(optoprime_outputs) == len(opro_outputs) == STEPS + 1\n"
            # the prose says both prompts call the parameter x
            """assert '{"x": ' in opro.log[-1].messages[-1]["content"]\n"""
            'assert "(float) x=" in optoprime.log[-1].messages[-1]["content"]',
        ),
    ],
    "03_code_debugging.ipynb": [
        ("nb03-19", "assert run_tests()[0] == 1.0\nassert session.output == 0.0"),
    ],
    "04_prompt_optimization.ipynb": [
        (
            "nb04-16",
            'assert list(history["score"]) == [0.0, 0.5, 0.75, 1.0]\n'
            "assert restored.parameters == session.parameters",
        ),
        (
            "c9e1049a",  # same steps, same scores, same prompt on threads, Dask and Ray
            "for run in (on_dask, on_ray):\n"
            '    assert [r["val_score"] for r in run.history] == '
            '[r["val_score"] for r in on_threads.history]\n'
            "    assert run.best_parameters == on_threads.best_parameters\n"
            "assert on_threads.best_score == 1.0",
        ),
    ],
    "05_models.ipynb": [
        (
            "nb05-13",
            "assert second.cached and not first.cached and cached.usage.cached_calls == 1\n"
            "assert first.usage.cost > 0 and second.usage.cost == 0\n"
            "assert r.usage.cost == "
            "(r.usage.prompt_tokens * 1.00 + r.usage.completion_tokens * 2.00) / 1e6",
        ),
    ],
    "06_under_the_hood.ipynb": [
        ("nb06-18", "assert optimizer.log[-1].messages == messages  # sent what messages() showed"),
        (
            "nb06-25",
            "assert [p.valid for p in proposals] == [True, True, False]\n"
            'assert label(size * factor, unit).data == "70.0 mm"',
        ),
    ],
    "07_battleship_agent.ipynb": [
        (
            "510e3ad6",
            'assert history[3]["agent"] > history[2]["agent"] > history[0]["agent"] '
            '== history[0]["rookie"]\n'
            'assert "(0, 0)" in rookie.named_parameters()["agent.act"].data',
        ),
        (
            "683915a1",
            'assert cards == [("captain.act", True)]\n'
            'assert \'plan["unknown"][0]\' in captain.named_parameters()["agent.act"].data',
        ),
        (
            "18867f5b",
            "assert hits_per_game(champion) == hits_per_game(restored) == hits_per_game(agent)",
        ),
    ],
    "10_runs_in_mlflow.ipynb": [
        (
            "d45e08a0",
            'assert sorted(runs["tags.mlflow.runName"]) == ["bold", "cautious"]\n'
            'assert (runs["metrics.val_score"] == 1.0).all()  # both found the offset',
        ),
        ("6fe06003", 'assert "move by 5" in notes'),
    ],
    "09_reviewing_with_evidence.ipynb": [
        (
            "e1110e70",
            'assert s.parameters["query"] == "capital city of France" and result.regressions == 0',
        ),
        (
            "baba9c92",
            'assert s.output == "Paris is the capital of France."\n'
            'assert list(s.versions("style")["source"]) == ["cell", "proposal", "restore", "restore"]',
        ),
    ],
}

TUTORIALS = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def with_checks(nb, checks: list[tuple[str, str]]):
    """``nb`` with each check inserted after its anchor cell (a KeyError names a lost anchor)."""
    cells = list(nb.cells)
    ids = [c.get("id") for c in cells]
    for anchor, code in reversed(checks):
        if anchor not in ids:
            raise KeyError(f"the check's anchor cell {anchor!r} is gone: move the check")
        at = ids.index(anchor) + 1
        cells.insert(at, nbformat.v4.new_code_cell(code, id=f"check-{anchor}"))
        ids.insert(at, f"check-{anchor}")
    nb.cells = cells
    return nb


def offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()}
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TRACE_NB_MODEL"):
        env.pop(var, None)
    return env


def test_every_tutorial_is_listed():
    assert TUTORIALS and set(CHECKS) <= set(TUTORIALS)
    for name in TUTORIALS:  # no test scaffolding left in what the reader sees
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        for c in nb.cells:
            if c.cell_type == "code":
                assert "assert " not in c.source, f"{name}: move the assert into CHECKS"


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_runs_offline_and_checks_pass(name):
    nb = with_checks(nbformat.read(NOTEBOOKS / name, as_version=4), CHECKS.get(name, []))
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute(env=offline_env())  # raises CellExecutionError, with the cell, on failure
    ran = [c for c in nb.cells if c.get("id", "").startswith("check-")]
    assert len(ran) == len(CHECKS.get(name, []))


def test_tutorial_state_stays_out_of_the_repository(tmp_path):
    import shutil
    import subprocess

    root = NOTEBOOKS.parent
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    # a headless run (nbconvert, JupyterLab) autosaves beside the notebook: git ignores it
    probe = subprocess.run(
        ["git", "check-ignore", "-q", "notebooks/.trace_nb/quickstart.json"], cwd=root
    )
    assert probe.returncode == 0
    # and the tests put it in a temporary folder (tests/conftest.py; kernels inherit it)
    assert (
        os.environ.get("TRACE_NB_STATE_DIR") and "notebooks" not in os.environ["TRACE_NB_STATE_DIR"]
    )
