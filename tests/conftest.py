"""Shared fixtures: a loopback OpenAI-compatible server and an LLM pointed at it."""

from __future__ import annotations

import os
import tempfile

import pytest

from trace_nb.llm import LLM
from trace_nb.testing import FakeOpenAIServer

# Sessions autosave beside the notebook (.trace_nb/); tests keep theirs in a temporary folder
# (kernels the tests start inherit it).
os.environ.setdefault("TRACE_NB_STATE_DIR", tempfile.mkdtemp(prefix="trace_nb_state_"))
# The in-process shell is no notebook, even when pytest runs from a Jupyter terminal: its
# autosave files are keyed by session name only (kernels Jupyter starts get their own).
os.environ.pop("JPY_SESSION_NAME", None)


@pytest.fixture
def fake_server():
    """A FakeOpenAIServer with no scripted replies yet (set ``srv.replies`` or pass a list)."""
    with FakeOpenAIServer(replies=[]) as srv:
        yield srv


def make_llm(srv: FakeOpenAIServer, **kwargs) -> LLM:
    """An LLM that talks to ``srv`` over real HTTP, without cache, with fast retries."""
    kwargs.setdefault("cache", False)
    kwargs.setdefault("backoff", 0.01)
    return LLM(model="fake-model", base_url=srv.base_url, api_key="test-key", **kwargs)


def ipython_shell():
    """The in-process test InteractiveShell, with trace_nb loaded.

    IPython makes one per process: ``start_ipython`` returns it on the first call only.
    """
    from IPython.testing.globalipapp import get_ipython, start_ipython

    shell = start_ipython() or get_ipython()
    if "trace_nb" not in shell.extension_manager.loaded:
        shell.extension_manager.load_extension("trace_nb")
    return shell


@pytest.fixture
def own_temp_folder(tmp_path, monkeypatch):
    """The temporary folder of this test's code is a folder of its own under ``tmp_path``:
    files a test leaves there (MLflow staging folders, kept after a failed upload) never
    reach the machine's temporary folder or another test's."""
    import tempfile

    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder
