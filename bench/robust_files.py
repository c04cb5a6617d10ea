"""Adversarial save files, lineage, autosave and session names (issue 23), for
``bench_robust.py``.

``files_bench``: a real session (a ``%%trace`` cell in an IPython shell) is saved, and the
file is mutated at random (values swapped for odd ones anywhere in the tree, keys dropped,
text cut) and by hand (lineage cycles, ``parent: -1``, ``runs`` not an object, history cells
of the wrong type, module-free names like ``../evil``). Each file is loaded over the live
session with :func:`trace_nb.load_session`. A refused file must raise ``SessionFileError``
and change nothing; an accepted one must leave a session that works: the panel's history
view draws, every lineage chain ends, blame and the versions table work, values keep their
kinds. Module files with code that does not load go to ``modules.load``.

``autosave_bench``: random runs, feedback, restarts, restores and dismissals in two
notebooks of one folder with the default session name; after each action the notebook's
file holds the live work, the other notebook's file is untouched, and a pending offer's
file is still on disk as it was offered.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

CELL = "level = 2\nprompt = 'Be brief.'\ndef act(v):\n    return v * 2\nout = act(level)\nout\n"
LINE = "--name benchfile --param level --param prompt --code act --no-panel"
ODD = [
    None,
    -1,
    0,
    1.5,
    True,
    "x",
    "",
    "../evil",
    [],
    {},
    [1, [2, [3]]],
    {"a": {"b": {}}},
    10**30,
    "def act(v):\n    return v\n",
    "from math import no_such_name\ndef act(v):\n    return v\n",
]
HANG_S = 2.0


def _shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    if "trace_nb" not in shell.extension_manager.loaded:
        shell.extension_manager.load_extension("trace_nb")
    return shell


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _paths(v, (*prefix, i))
    return out


def _set(tree: Any, path: tuple, value: Any, delete: bool = False) -> None:
    for k in path[:-1]:
        tree = tree[k]
    if delete and isinstance(tree, dict):
        del tree[path[-1]]
    else:
        tree[path[-1]] = value


def _by_hand(good: dict) -> list[tuple[str, dict]]:
    out = []

    def variant(label: str, change: Any) -> None:
        data = copy.deepcopy(good)
        change(data)
        out.append((label, data))

    chain = ("lineage", "versions", "level")
    for label, change in [
        ("parent cycle", lambda d: _set(d, (*chain, 0, "parent"), 1)),
        ("parent -1", lambda d: _set(d, (*chain, 1, "parent"), -1)),
        ("parent self", lambda d: _set(d, (*chain, 1, "parent"), 1)),
        ("runs list", lambda d: _set(d, (*chain, 0, "runs"), [1.0])),
        ("runs text score", lambda d: _set(d, (*chain, 0, "runs"), {"0": "good"})),
        ("number skipped", lambda d: _set(d, (*chain, 1, "number"), 7)),
        ("score text", lambda d: _set(d, ("history", 0, "score"), "high")),
        ("step list", lambda d: _set(d, ("history", 0, "step"), [0])),
        ("row number", lambda d: _set(d, ("history", 0), 3)),
        ("level text", lambda d: _set(d, ("parameters", "level", "value"), "2")),
        ("prompt number", lambda d: _set(d, ("parameters", "prompt", "value"), 5)),
        ("name ../evil", lambda d: _set(d, ("name",), "../evil")),
        ("name quoted", lambda d: _set(d, ("name",), "'benchfile'")),
        ("code import", lambda d: _set(d, ("code", "act", "source"), ODD[-1])),
        ("other parameters", lambda d: _set(d, ("parameters",), {"other": {"value": 1}})),
    ]:
        variant(label, change)
    return out


def _sound(s: Any) -> str | None:
    """Why the session ``s`` does not work after a load, or None."""
    from trace_nb.notebook.lineage import blame
    from trace_nb.notebook.ui.history_view import HistoryView

    if type(s.parameters.get("level")) is not int or not isinstance(s.parameters["prompt"], str):
        return f"values changed kind: {s.parameters}"
    view = HistoryView()
    try:
        view.update(s)
    except Exception as e:  # noqa: BLE001 - the panel would break on every refresh
        return f"history view: {type(e).__name__}"
    finally:
        view.close()
    for name, chain in s.lineage.versions.items():
        for n in range(len(chain)):
            steps, v = 0, chain[n]
            while v.parent is not None:
                steps += 1
                if (
                    steps > len(chain)
                    or not isinstance(v.parent, int)
                    or not 0 <= v.parent < len(chain)
                ):
                    return f"lineage of {name} does not end"
                v = chain[v.parent]
        try:
            blame(s.lineage, name)
            s.versions(name)
        except Exception as e:  # noqa: BLE001
            return f"lineage of {name}: {type(e).__name__}"
    return None


def _snapshot(s: Any) -> str:
    return json.dumps([s.parameters, s.rows, s.lineage.to_data()], default=repr, sort_keys=True)


def files_bench(rng: random.Random, mutations: int = 300) -> dict:
    import trace_nb
    from trace_nb.notebook.persist import SessionFileError

    tmp = Path(tempfile.mkdtemp(prefix="trace_nb-files-"))
    os.environ["TRACE_NB_STATE_DIR"] = str(tmp / "state")
    shell = _shell()
    shell.run_cell_magic("trace", LINE, CELL)
    s = trace_nb.session("benchfile")
    s.feedback("more", 0.25)
    s.run()
    s.feedback("less", 0.5)
    s.restore_version("level", 0)  # a second version of each: a lineage with a parent
    s.restore_version("prompt", 0)
    good_path = tmp / "good.json"
    s.save(str(good_path))
    good = json.loads(good_path.read_text())
    cases = _by_hand(good)
    text = good_path.read_text()
    for _ in range(mutations):
        data = copy.deepcopy(good)
        kind = rng.choice(["replace", "replace", "delete", "truncate"])
        if kind == "truncate":
            cases.append(("truncate", text[: rng.randint(0, len(text) - 1)]))
            continue
        path = rng.choice(_paths(data)[1:])
        _set(data, path, copy.deepcopy(rng.choice(ODD)), delete=kind == "delete")
        cases.append((f"{kind} {'/'.join(map(str, path))}", data))
    counts = {
        "files_tried": 0,
        "files_refused": 0,
        "files_loaded": 0,
        "file_crashes": 0,
        "bad_files_adopted": 0,
        "live_changed_by_refused_file": 0,
        "file_hangs": 0,
        "slowest_file_s": 0.0,
    }
    examples: list[str] = []
    target = tmp / "case.json"
    for label, data in cases:
        counts["files_tried"] += 1
        if isinstance(data, str):
            target.write_text(data)
        else:
            target.write_text(json.dumps(data))
        before = _snapshot(s)
        t0 = time.perf_counter()
        try:
            loaded = trace_nb.load_session(str(target))
        except SessionFileError:
            counts["files_refused"] += 1
            if _snapshot(s) != before:
                counts["live_changed_by_refused_file"] += 1
                examples.append(f"refused but changed: {label}")
            continue
        except Exception as e:  # noqa: BLE001 - counted
            counts["file_crashes"] += 1
            examples.append(f"crash {type(e).__name__}: {e!s:.80} on {label}")
            continue
        finally:
            took = time.perf_counter() - t0
            counts["slowest_file_s"] = max(counts["slowest_file_s"], round(took, 4))
            if took > HANG_S:
                counts["file_hangs"] += 1
        counts["files_loaded"] += 1
        try:
            why = _sound(loaded)
        except Exception as e:  # noqa: BLE001 - a session that breaks what looks at it
            why = f"{type(e).__name__} while using it"
        if why is not None:
            counts["bad_files_adopted"] += 1
            examples.append(f"adopted {label}: {why}")
        trace_nb.load_session(str(good_path))  # back to the good state for the next file
    s.close()
    counts.update(_module_files(tmp))
    counts["file_examples"] = examples[:5]
    return counts


def _module_files(tmp: Path) -> dict:
    """Module files with code that does not load, or values of another kind."""
    from trace_nb import Module, bundle, modules, node
    from trace_nb.modules.persist import ModuleFileError

    class Bot(Module):
        def __init__(self):
            self.tone = node("calm", trainable=True)

        @bundle(trainable=True)
        def act(self, v):
            return v * 2

    bot = Bot()
    path = tmp / "bot.json"
    modules.save(bot, path)
    good = json.loads(path.read_text())
    bad_code = "from math import no_such_name\n\ndef act(self, v):\n    return v * 3\n"
    variants = [("act", bad_code), ("tone", 5), ("tone", ["x"]), ("act", 5)]
    refused = adopted = 0
    for key, value in variants:
        data = copy.deepcopy(good)
        data["parameters"][key]["value"] = value
        path.write_text(json.dumps(data))
        before = modules.state_dict(bot)
        try:
            modules.load(bot, path)
        except ModuleFileError:
            refused += modules.state_dict(bot) == before
            continue
        adopted += 1
    return {
        "module_files_tried": len(variants),
        "module_files_refused_cleanly": refused,
        "bad_module_files_adopted": adopted,
    }


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def autosave_bench(rng: random.Random, actions: int = 120) -> dict:
    from trace_nb.notebook import autosave

    tmp = Path(tempfile.mkdtemp(prefix="trace_nb-autosave-"))
    os.environ["TRACE_NB_STATE_DIR"] = str(tmp / "state")
    shell = _shell()
    notebooks = [str(tmp / "a.ipynb"), str(tmp / "b.ipynb")]
    counts = {
        "autosave_actions": 0,
        "autosave_work_lost": 0,
        "autosave_offers_destroyed": 0,
        "autosave_cross_notebook_writes": 0,
        "autosave_wrong_state_offered": 0,
        "autosave_errors": 0,
    }
    last_saved: dict[str, Any] = {}  # notebook -> the history its session saved last
    examples: list[str] = []
    cell = "level = 2\nout = level * 10\nout\n"
    s = None
    offered: dict[str, str | None] = {}
    for i in range(actions):
        counts["autosave_actions"] += 1
        action = rng.choice(["restart", "run", "run", "feedback", "feedback", "restore", "dismiss"])
        if s is None or action == "restart":
            if s is not None:
                s.close()
            nb = rng.choice(notebooks)
            shell.user_ns["__session__"] = nb
            panel = shell.run_cell_magic("trace", "--param level", cell)
            s = panel.session
            offered = {}
            if s.restorable is not None:
                offered = {"path": str(s.restorable.path), "digest": _digest(s.restorable.path)}
                history = json.loads(s.restorable.path.read_text())["history"]
                if history != last_saved.get(nb):  # another notebook's work, or stale
                    counts["autosave_wrong_state_offered"] += 1
                    examples.append(f"{nb} was offered a state it did not save")
            other = next(n for n in notebooks if n != nb)
        mine = autosave.state_path("default", shell)
        theirs = autosave.state_path("default", SimpleNamespace(user_ns={"__session__": other}))
        theirs_before = _digest(theirs) if theirs != mine else "shared"
        try:
            if action == "run":
                s.run()
            elif action == "feedback":
                s.feedback(f"note {i}", round(rng.random(), 3))
            elif action == "restore" and s.restorable is not None:
                panel.restore()
                offered = {}
            elif action == "dismiss" and s.restorable is not None:
                panel.keep_cell_values()
                offered = {}
        except Exception as e:  # noqa: BLE001 - counted
            counts["autosave_errors"] += 1
            examples.append(f"{action}: {type(e).__name__}: {e!s:.80}")
        if s.autosave_error:
            counts["autosave_errors"] += 1
            examples.append(s.autosave_error[:100])
        saved = json.loads(mine.read_text()) if mine.is_file() else None
        if s.rows and (saved is None or saved["history"] != json.loads(json.dumps(s.rows))):
            counts["autosave_work_lost"] += 1
            examples.append(f"{action}: the file lacks the live work")
        if (_digest(theirs) if theirs != mine else "shared") != theirs_before or (
            theirs == mine and s.rows
        ):
            counts["autosave_cross_notebook_writes"] += 1
        if s.rows and saved is not None:
            last_saved[nb] = saved["history"]
        if offered and s.restorable is not None:
            kept = s.restorable.path
            if _digest(kept) != offered["digest"]:
                counts["autosave_offers_destroyed"] += 1
                examples.append(f"{action}: the offered file {kept} changed or is gone")
    if s is not None:
        s.close()
    shell.user_ns.pop("__session__", None)
    counts["autosave_files"] = sum(1 for _ in (tmp / "state").rglob("*.json"))
    counts["autosave_examples"] = examples[:5]
    return counts
