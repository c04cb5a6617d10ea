"""A real MLflow tracking server on 127.0.0.1 for tests and benchmarks.

``mlflow server`` with a SQLite backend and an artifacts folder under a temporary
directory, on a free port; :func:`mlflow_server` starts it, waits until ``/health`` answers
and stops it (and its workers) on exit. Needs ``pip install 'trace_nb[mlflow]'``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["mlflow_server"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mlflow_server(folder: str | os.PathLike | None = None, timeout: float = 180.0) -> Iterator[str]:
    """Run ``mlflow server`` on loopback; yields its URL (``http://127.0.0.1:PORT``).

    Raises
    ------
    RuntimeError
        When the server does not answer within ``timeout`` seconds (its log is quoted).
    """
    with tempfile.TemporaryDirectory(prefix="trace_nb-mlflow-") as tmp:
        root = Path(folder) if folder is not None else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        log = open(root / "server.log", "w+b")  # noqa: SIM115 - closed below
        cmd = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ]
        # No job runner: its seven idle consumers poll for GenAI jobs (none here), a third of
        # a two-core machine, which tests and benchmarks do not need (set it to override).
        env = {
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            **os.environ,
            "MLFLOW_TRACKING_URI": "",
        }
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env, start_new_session=True
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"mlflow server exited: {_tail(log)}")
                try:
                    with urllib.request.urlopen(url + "/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server did not start in {timeout} s: {_tail(log)}")
                time.sleep(0.5)
            yield url
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # the server and its uvicorn workers
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            log.close()


def _tail(log) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]
