"""Reliability benchmark (issue 14): adversarial replies, server faults, kills during saves,
and a secret canary. Prints one JSON object; every count but ``replies_tried`` and the
"survived"/timing figures should be 0.

  replies_tried / crashes / corrupted_parameters / hangs
      Adversarial replies served over real HTTP to ``OptoPrime.propose()`` + ``apply()``:
      a crash is any exception out of propose/apply; a corrupted parameter is one that
      changed in propose(), got a value of another kind, code that does not compile or
      would run at definition time, or anything read from a truncated reply; a hang is a
      reply whose propose() (HTTP included) took longer than ``HANG_S``.
  faults_tried / faults_survived / fault_crashes / fault_hangs
      Server misbehaviours: the call returns or raises LLMError, within its deadline.
  kills_tried / kills_survived / temp_files_left
      A writer SIGKILLed mid-save: the file is always whole, and the next write leaves no
      temporary files behind.
  canary_leaks
      Places where the API key was found: logs (DEBUG), errors, replies, cache and state
      files, pickles, reprs.
  files_tried / files_refused / files_loaded / file_crashes / bad_files_adopted /
  live_changed_by_refused_file / file_hangs (issue 23)
      A saved session (new envelope, lineage, history) mutated at random and by hand, loaded
      over the live session: refused files raise SessionFileError and change nothing; a
      loaded one leaves a session whose panel history draws and whose lineage chains end.
      ``module_files_*``: module files with code that does not load or values of another kind.
  autosave_actions / autosave_work_lost / autosave_offers_destroyed /
  autosave_cross_notebook_writes / autosave_wrong_state_offered / autosave_errors
      Random runs, feedback, restarts, restores and dismissals in two notebooks of one
      folder (default session name): the file always holds the live work, a pending offer
      stays on disk as offered, one notebook never writes the other's file, and a restart
      offers only what that notebook saved last.
  timings_s
      Reading a 5 MB reply (JSON and not), a 700 KB nested non-JSON reply, 20,000 unknown
      keys into proposals, a diff of a 70,000-character line.

Run: ``python bench/bench_robust.py`` (about two minutes).
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import pickle
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from trace_nb import node
from trace_nb.graph import ParameterNode
from trace_nb.llm import LLM, LLMError
from trace_nb.optim import OptoPrime
from trace_nb.optim.proposal import proposals_from_reply
from trace_nb.optim.reply import parse_reply
from trace_nb.testing import FakeOpenAIServer
from trace_nb.text import bounded_html_diff

HANG_S = 2.0
CANARY = "sk-canary-7c1f0e9d8b2a4c6e5f3a1b0d9e8f7a6b"
CODE = "def act(v):\n    return v\n"
START = {
    "n": 3,
    "ratio": 0.5,
    "prompt": "Be brief.",
    "flag": True,
    "items": [1, 2],
    "cfg": {"k": 1},
    "act": CODE,
}


# ------------------------------------------------------------------------ reply corpus


def _reply(suggestion, reasoning="r") -> str:
    return json.dumps({"reasoning": reasoning, "answer": "", "suggestion": suggestion})


def corpus(rng: random.Random, marker: str) -> list[tuple[str, str]]:
    """(kind, text) pairs; kind "truncated" must apply nothing."""
    out: list[tuple[str, str]] = []
    good = [
        {"n": 4},
        {"prompt": "Be very brief."},
        {"ratio": 0.25, "flag": False},
        {"items": [3, 4], "cfg": {"k": 2}},
        {"act": "def act(v):\n    return v + 1\n"},
        {"n": "5", "flag": "false", "ratio": "0.1"},
        {"prompt": "def f(): pass"},
    ]
    for s in good:
        full = _reply(s)
        out.append(("ok", full))
        for _ in range(12):  # cut-offs anywhere after the suggestion opened
            opened = full.index('"suggestion": {') + len('"suggestion": {')
            out.append(("truncated", full[: rng.randint(opened, len(full) - 3)]))
        out.append(("ok", "```json\n" + full + "\n```"))
        out.append(("ok", "Here you go: " + full + " Hope that helps."))
        out.append(("ok", full.replace('"', "'")))
    bad_values = [
        "nan",
        float("inf"),
        None,
        [],
        {},
        "maybe",
        10**30,
        -1e308,
        "1e999",
        True,
        "\ud800",
        "9" * 5000,
        {"nested": [1] * 3},
        "x" * 100_000,
    ]
    for name in ("n", "ratio", "prompt", "flag", "items", "cfg"):
        for value in bad_values:
            try:
                out.append(("any", _reply({name: value})))
            except ValueError:  # json cannot encode it
                out.append(("any", f'{{"suggestion": {{"{name}": {value}}}}}'))
    evil_code = [
        f"def act(v, _=open({marker!r}, 'w')):\n    return v\n",
        f"open({marker!r}, 'w')\ndef act(v):\n    return v\n",
        f"def act(v: open({marker!r}, 'w')):\n    return v\n",
        f"@(lambda f: open({marker!r}, 'w') and f)\ndef act(v):\n    return v\n",
        f"X = open({marker!r}, 'w')\ndef act(v):\n    return v\n",
        f"class A:\n    open({marker!r}, 'w')\ndef act(v):\n    return v\n",
        "def act(v, v):\n    return v\n",
        "def act(v):\n    nonlocal q\n    return v\n",
        "from __future__ import braces\ndef act(v):\n    return v\n",
        "def act(v):\n    return " + "-" * 100_000 + "v\n",
        "def act(v):\n    return v" + ".a" * 50_000 + "\n",
        "def act():\n    return 1\n",
        "def other(v):\n    return v\n",
        "async def act(v):\n    return v\n",
        "def act(v):\n    return v\x00\n",
    ]
    for code in evil_code:
        out.append(("code", _reply({"act": code})))
    keys = {f"k{i}": i for i in range(20_000)}
    out += [
        ("any", _reply({"n": 4, **keys})),
        ("any", "{" * 200_000),
        ("any", '{"a": "' + "{'" * 100_000),
        ("any", "[" * 100_000),
        ("any", ('{"a": [1, {"b": "c\'d", ' * 10_000)),
        ("any", "x: 5\n" * 40_000),
        ("any", "<suggestion>" + "<a>" * 50_000),
        ("any", '{"suggestion": {"prompt": "' + "a" * 5_000_000 + '"}}'),
        ("any", "prose " * 900_000),
        ("any", "```" + "a" * 250_000 + "`"),  # a fence regex was quadratic on this
        ("any", "<html>" + "<title>x" * 30_000),  # and the HTML title search
        ("any", "\\" * 250_000),
        ("code", _reply({"act": "```py\n" * 33_000})),  # and the code fence rescue
        ("code", _reply({"act": "a\n```py\nb\n" * 16_000})),
        ("any", ""),
        ("any", "TERMINATE"),
        ("any", "<html><title>502</title></html>"),
        ("any", '{"suggestion": null}'),
        ("any", '{"suggestion": "TERMINATE"}'),
        ("any", '"{\\"suggestion\\": {\\"n\\": 6}}"'),
        ("any", '{"suggestion": {"prompt": "\\ud800\\udc00\\udfff"}}'),
    ]
    alphabet = list("{}[]\"':,\\ntrueflsTFN0123456789.-e <>/suggestionreasoningprompt\n`")
    for _ in range(300):  # random near-JSON noise
        out.append(("any", "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))))
    return out


def _same_kind(before, after) -> bool:
    if isinstance(before, bool) or isinstance(after, bool):
        return type(before) is type(after)
    if isinstance(before, (int, float)):
        return isinstance(after, (int, float)) and after == after and abs(after) != float("inf")
    return type(before) is type(after)


def replies_bench(rng: random.Random) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="trace_nb-robust-"))
    marker = str(tmp / "defined")
    cases = corpus(rng, marker)
    counts = {
        "replies_tried": 0,
        "crashes": 0,
        "corrupted_parameters": 0,
        "hangs": 0,
        "slowest_reply_s": 0.0,
        "slowest_reply": "",
    }
    examples: list[str] = []
    with FakeOpenAIServer(replies=[]) as srv:
        llm = LLM(
            model="bench",
            base_url=srv.base_url,
            api_key="k",
            cache=False,
            backoff=0.01,
            max_retries=0,
            timeout=30,
        )
        for kind, text in cases:
            params = []
            for name, value in START.items():
                p = node(copy.deepcopy(value), name=name, trainable=True)
                p.is_code = name == "act"
                params.append(p)
            out = params[0]
            for p in params[1:]:
                out = out.call(lambda a, b: (a, b), p)
            out.backward("improve")
            before = {p.name: copy.deepcopy(p.peek()) for p in params}
            srv.add_replies(text)
            counts["replies_tried"] += 1
            opt = OptoPrime(params, llm=llm)
            t0 = time.perf_counter()
            try:
                props = opt.propose()
                took = time.perf_counter() - t0
                changed_in_propose = any(p.peek() != before[p.name] for p in params)
                applied = opt.apply(props)
            except Exception as e:  # noqa: BLE001 - counted
                counts["crashes"] += 1
                examples.append(f"crash {type(e).__name__}: {e!s:.100} on {text[:60]!r}")
                continue
            if took > counts["slowest_reply_s"]:
                counts["slowest_reply_s"] = took
                counts["slowest_reply"] = f"{len(text):,} chars: {text[:40]!r}"
            if took > HANG_S:
                counts["hangs"] += 1
                examples.append(f"hang {took:.2f}s on {text[:60]!r}")
            bad = changed_in_propose or (kind == "truncated" and applied)
            for p in params:
                if p.is_code:
                    try:
                        compile(p.peek(), "<bench>", "exec")
                    except (SyntaxError, ValueError):
                        bad = True
                elif not _same_kind(before[p.name], p.peek()):
                    bad = True
            if kind == "code" and applied:
                bad = True
            if bad:
                counts["corrupted_parameters"] += 1
                examples.append(f"corrupted by {kind}: {text[:80]!r}")
        llm.close()
    if os.path.exists(marker):
        counts["corrupted_parameters"] += 1
        examples.append("proposed code ran at definition time")
    counts["slowest_reply_s"] = round(counts["slowest_reply_s"], 3)
    counts["examples"] = examples[:5]
    return counts


# ------------------------------------------------------------------------- server faults


def _completion(message, usage=None) -> dict:
    body = {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
    if usage is not None:
        body["usage"] = usage
    return body


_OK = {"role": "assistant", "content": "ok"}

FAULTS = (
    [("status", {"code": c}) for c in (400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503, 504)]
    + [("status", {"code": 429, "retry_after": v}) for v in ("nan", "inf", "-1", "soon", "1e400")]
    + [
        ("malformed", {}),
        ("html", {}),
        ("drop", {}),
        ("truncated", {}),
        ("echo_auth", {}),
        ("delay", {"seconds": 0.2}),
        ("trickle", {"seconds": 20}),
    ]
    + [
        ("body", {"body": b})
        for b in (
            _completion("text"),
            _completion(None),
            _completion(_OK, "x"),
            _completion(_OK, {"prompt_tokens": "9", "completion_tokens": -5}),
            _completion(_OK, {"prompt_tokens": 1e300, "completion_tokens": None}),
            {"choices": []},
            {"choices": "x"},
            [1, 2],
            "str",
            None,
            7,
            b"\xff\xfe garbage",
            b"[" * 100_000,
            b'{"choices": [{"message": {"content": "\\ud800"}}]}',
            _completion({"role": "assistant", "content": [{"type": "text", "text": "a"}]}),
            _completion({"role": "assistant", "content": None, "refusal": "no"}),
            _completion(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"function": {"arguments": "{}"}}],
                }
            ),
        )
    ]
)


def faults_bench() -> dict:
    counts = {"faults_tried": 0, "faults_survived": 0, "fault_crashes": 0, "fault_hangs": 0}
    examples = []
    with FakeOpenAIServer(replies=lambda req: "fine") as srv:
        for kind, kw in FAULTS:
            for times in (1, 3):  # once (recovered by a retry) and more than the retries
                srv.clear_faults()
                srv.fault(kind, times=times, **kw)
                llm = LLM(
                    model="bench",
                    base_url=srv.base_url,
                    api_key="k",
                    cache=False,
                    backoff=0.01,
                    max_retries=1,
                    timeout=1.0,
                    deadline=5.0,
                )
                counts["faults_tried"] += 1
                t0 = time.perf_counter()
                try:
                    llm.chat([{"role": "user", "content": "hi"}])
                    ok = True
                except LLMError:
                    ok = True
                except Exception as e:  # noqa: BLE001 - counted
                    ok = False
                    counts["fault_crashes"] += 1
                    examples.append(f"{kind} {kw}: {type(e).__name__}: {e!s:.80}")
                took = time.perf_counter() - t0
                if took > 5.0 + 1.5:
                    counts["fault_hangs"] += 1
                    examples.append(f"{kind} {kw}: {took:.1f}s")
                elif ok:
                    counts["faults_survived"] += 1
                llm.close()
    counts["fault_examples"] = examples[:5]
    return counts


# ---------------------------------------------------------------------------------- kills

_WRITER = """
import json, sys
from trace_nb.files import atomic_write
n = 0
while True:
    n += 1
    atomic_write(sys.argv[1], json.dumps({"n": n, "pad": "x" * 300000}))
"""


def kills_bench(rng: random.Random, kills: int = 40) -> dict:
    from trace_nb.files import atomic_write

    tmp = Path(tempfile.mkdtemp(prefix="trace_nb-kills-"))
    target = tmp / "state.json"
    atomic_write(target, json.dumps({"n": 0}))
    survived = 0
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)])
        time.sleep(rng.uniform(0.3, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        try:
            json.loads(target.read_text())
            survived += 1
        except ValueError:
            pass
    atomic_write(target, json.dumps({"n": "final"}))
    left = [p.name for p in tmp.iterdir() if p.name != target.name]
    return {"kills_tried": kills, "kills_survived": survived, "temp_files_left": len(left)}


# ---------------------------------------------------------------------------------- canary


def canary_bench() -> dict:
    from trace_nb.training.checkpoint import RunState, save_checkpoint

    tmp = Path(tempfile.mkdtemp(prefix="trace_nb-canary-"))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    logger = logging.getLogger("trace_nb")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    seen: list[str] = []
    leaks: list[str] = []
    try:
        with FakeOpenAIServer(replies=[]) as srv:
            llm = LLM(
                model="bench",
                base_url=srv.base_url,
                api_key=CANARY,
                cache=tmp / "cache.sqlite",
                backoff=0.01,
                max_retries=1,
                timeout=2,
            )
            seen += [repr(llm), json.dumps(llm.describe())]
            for kind, kw in [
                ("echo_auth", {}),
                ("body", {"code": 401, "body": {"error": {"message": f"bad key {CANARY}"}}}),
                ("body", {"code": 500, "body": f"<html>{CANARY}</html>"}),
                ("body", {"body": f"not json {CANARY}"}),
                ("status", {"code": 429}),
            ]:
                srv.clear_faults()
                srv.fault(kind, times=2, **kw)
                try:
                    seen.append(llm.chat([{"role": "user", "content": "hi"}]).text)
                except LLMError as e:
                    seen += [str(e), repr(e)]
            for text in (
                f'{{"suggestion": {{"prompt": "{CANARY}"}}}}',
                json.dumps({"suggestion": {"prompt": "k=" + CANARY}}, ensure_ascii=True),
                f"Your key is {CANARY}.",
            ):
                srv.add_replies(text)
                p = node("start", name="canary_prompt", trainable=True)
                (p + "!").backward("better")
                opt = OptoPrime([p], llm=llm, memory_size=2)
                props = opt.propose()
                opt.apply(props)
                seen += [props[0].reason or "", repr(props), opt.log[-1].reply, str(p.peek())]
                save_checkpoint(
                    tmp / "ck.json",
                    RunState(parameters={"p": p.peek()}, optimizer_state=opt.state()),
                )
            seen.append(pickle.dumps(llm).decode("latin-1"))
            llm.close()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    seen.append(stream.getvalue())
    for path in tmp.iterdir():
        seen.append(path.read_bytes().decode("latin-1"))
    for i, text in enumerate(seen):
        if CANARY in text:
            leaks.append(f"place {i}: {text[:80]!r}")
    return {
        "canary_places_checked": len(seen),
        "canary_leaks": len(leaks),
        "canary_examples": leaks[:3],
    }


# --------------------------------------------------------------------------------- timings


def _best(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return round(best, 4)


def timings() -> dict:
    names = ["x", "prompt"]
    big_json = json.dumps({"suggestion": {"prompt": "a" * 5_000_000}})
    big_text = "prose " * 850_000
    nested = '{"a": [1, {"b": "c\'d", ' * 28_000
    keys = json.dumps({"suggestion": {f"k{i}": i for i in range(20_000)}})
    param = ParameterNode(1, name="bench_x")

    def unknown():
        parsed = parse_reply(keys, ["bench_x"])
        return proposals_from_reply(parsed, {"bench_x": param}, keys)

    line = "x" * 70_000
    return {
        "parse_5mb_json": _best(lambda: parse_reply(big_json, names)),
        "parse_5mb_prose": _best(lambda: parse_reply(big_text, names)),
        "parse_700kb_nested_non_json": _best(lambda: parse_reply(nested, names)),
        "proposals_20000_unknown_keys": _best(unknown),
        "html_diff_70000_char_line": _best(
            lambda: bounded_html_diff(line, line[:35_000] + "y" + line[35_001:]), 1
        ),
    }


def main() -> None:
    rng = random.Random(14)
    result: dict = {}
    result.update(replies_bench(rng))
    result.update(faults_bench())
    result.update(kills_bench(rng))
    result.update(canary_bench())
    from robust_files import autosave_bench, files_bench  # beside this script

    result.update(files_bench(rng))
    result.update(autosave_bench(rng))
    result["timings_s"] = timings()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
