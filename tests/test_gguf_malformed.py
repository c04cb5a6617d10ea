"""Every malformed GGUF file gives ``WeightsError`` from ``gguf_header`` (issue 23, item 25).

Hand-made cases (truncation, bad magic, huge counts, arrays nested past any sane depth,
unknown value types), then hypothesis over random bytes and over mutations of a real,
well-formed header (the one ``tests/test_bench_weights.py`` builds). Whatever the bytes,
the reader either returns a header or raises ``WeightsError``: never ``ValueError``,
``RecursionError``, ``MemoryError``, ``OverflowError`` or ``UnicodeDecodeError``.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_bench_weights import _s, gguf_bytes
from trace_nb.bench import weights
from trace_nb.bench.weights import WeightsError

ARRAY, STRING, UINT32 = 9, 8, 4


def _head(count: int, tensors: int = 1) -> bytes:
    return b"GGUF" + struct.pack("<I", 3) + struct.pack("<QQ", tensors, count)


def _read(tmp_path, data: bytes, name: str = "m.gguf"):
    path = tmp_path / name
    path.write_bytes(data)
    return weights.gguf_header(path)


def _nested_arrays(depth: int) -> bytes:
    """One entry: an array of arrays of ... (``depth`` levels), each holding one item."""
    value = struct.pack("<I", UINT32) + struct.pack("<Q", 1) + struct.pack("<I", 7)
    for _ in range(depth):
        value = struct.pack("<I", ARRAY) + struct.pack("<Q", 1) + value
    return _head(1) + _s("deep") + struct.pack("<I", ARRAY) + value + b"\0" * 8


def test_arrays_nested_too_deep_are_refused_not_a_recursion_error(tmp_path):
    with pytest.raises(WeightsError, match="nested"):
        _read(tmp_path, _nested_arrays(5000))


def test_a_few_nested_arrays_still_read(tmp_path):
    header = _read(tmp_path, _nested_arrays(3))
    assert header["metadata"]["deep"] == "<array of 1>"


@pytest.mark.parametrize(
    "data, words",
    [
        # a string longer than the file
        (_head(1) + struct.pack("<Q", 50) + b"abc", "ends early"),
        # a scalar array of 2**61 items (would seek far past the end)
        (
            _head(1)
            + _s("k")
            + struct.pack("<I", ARRAY)
            + struct.pack("<I", UINT32)
            + struct.pack("<Q", 1 << 61),
            "ends early",
        ),
        # 2**64 - 1 scalar items: the byte count does not fit a file offset
        (
            _head(1)
            + _s("k")
            + struct.pack("<I", ARRAY)
            + struct.pack("<I", 12)
            + struct.pack("<Q", (1 << 64) - 1),
            "ends early",
        ),
        # more metadata entries than the file could hold
        (_head((1 << 64) - 1) + _s("k") + struct.pack("<I", UINT32) + b"\0" * 4, "entries"),
        # more tensors than the file could describe
        (_head(0, tensors=(1 << 63)), "tensors"),
        # an unknown value type, and an unknown array item type (even with no items)
        (_head(1) + _s("k") + struct.pack("<I", 99), "type 99"),
        (
            _head(1)
            + _s("k")
            + struct.pack("<I", ARRAY)
            + struct.pack("<I", 77)
            + struct.pack("<Q", 0),
            "type 77",
        ),
        # an array of strings whose count is far beyond the file
        (
            _head(1)
            + _s("k")
            + struct.pack("<I", ARRAY)
            + struct.pack("<I", STRING)
            + struct.pack("<Q", 1 << 40)
            + _s("a"),
            "ends early",
        ),
        (b"GGU", "not a GGUF file"),
        (b"", "not a GGUF file"),
    ],
    ids=[
        "string-past-end",
        "scalar-array-past-end",
        "scalar-array-count-overflows-offset",
        "metadata-count-huge",
        "tensor-count-huge",
        "unknown-value-type",
        "unknown-item-type",
        "string-array-count-huge",
        "short-magic",
        "empty",
    ],
)
def test_malformed_headers_give_weights_error(tmp_path, data, words):
    with pytest.raises(WeightsError, match=words):
        _read(tmp_path, data)


def test_every_cut_of_a_real_header_gives_weights_error(tmp_path):
    good = gguf_bytes()
    end = len(good) - 64  # the header proper; what follows stands in for tensor data
    for cut in range(end):
        with pytest.raises(WeightsError):
            _read(tmp_path, good[:cut])


def test_a_file_that_cannot_be_read_gives_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="cannot read"):
        weights.gguf_header(tmp_path)  # a folder
    with pytest.raises(WeightsError, match="cannot read"):
        weights.gguf_header(tmp_path / "missing.gguf")


def _header_or_weights_error(path) -> None:
    try:
        header = weights.gguf_header(path)
    except WeightsError:
        return
    assert set(header) == {"version", "tensors", "metadata"}


_FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_after_the_magic(tmp_path, tail):
    path = tmp_path / "r.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00" + tail)
    _header_or_weights_error(path)


@_FUZZ
@given(st.binary(max_size=200))
def test_random_bytes(tmp_path, data):
    path = tmp_path / "b.gguf"
    path.write_bytes(data)
    _header_or_weights_error(path)


_GOOD = gguf_bytes()


@_FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, len(_GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=6
    ),
    st.integers(0, len(_GOOD)),
)
def test_mutated_real_headers(tmp_path, flips, cut):
    data = bytearray(_GOOD)
    for at, byte in flips:
        data[at] = byte
    path = tmp_path / "m.gguf"
    path.write_bytes(bytes(data[:cut]))
    _header_or_weights_error(path)


@_FUZZ
@given(
    st.integers(0, len(_GOOD) - 8),
    st.sampled_from([0, 1, 7, 8, 9, 13, 255, (1 << 32) - 1, 1 << 40, 1 << 62, (1 << 64) - 1]),
)
def test_real_headers_with_a_huge_or_odd_number_written_in(tmp_path, at, number):
    """Lengths, counts and types are where a reader goes wrong: overwrite 8 bytes anywhere
    with a number that is a plausible type, a huge count, or the largest uint64."""
    data = bytearray(_GOOD)
    data[at : at + 8] = struct.pack("<Q", number)
    path = tmp_path / "n.gguf"
    path.write_bytes(bytes(data))
    _header_or_weights_error(path)
