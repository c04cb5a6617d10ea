"""Fixtures for the browser tests: Voila / JupyterLab servers and a Playwright Chromium.

Every server runs on 127.0.0.1, on a free port, with a token, with its Jupyter config,
runtime, data and IPython dirs in a temporary directory, and is stopped by its PID (its
process group, and the kernels it started) when the fixture is finalized.
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

# Debian's Chromium by default (Playwright cannot download its own here); elsewhere point
# TRACE_NB_CHROMIUM at any Chromium binary.
CHROMIUM = os.environ.get("TRACE_NB_CHROMIUM", "/usr/lib/chromium/chromium")
HERE = pathlib.Path(__file__).parent
NOTEBOOKS = HERE / "notebooks"
SCREENSHOTS = HERE.parents[1] / "test-output" / "browser"
BIN = pathlib.Path(sys.executable).parent


def _missing() -> str | None:
    if not os.path.exists(CHROMIUM):
        return (
            f"Chromium not found at {CHROMIUM}: on Debian `apt-get install chromium`; "
            "elsewhere set TRACE_NB_CHROMIUM to a Chromium binary"
        )
    for tool in ("voila", "jupyter-lab", "jupyter-notebook"):
        if not (BIN / tool).exists() and shutil.which(tool) is None:
            return f"{tool} is not installed (pip install -e '.[browser]')"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[browser]')"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing()
    if not reason:
        return
    # In CI a missing browser is a broken set-up: the tests fail instead of skipping.
    # (the `browser` fixture fails them).
    if os.environ.get("CI"):
        return
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """PIDs of every process below ``pid`` (read from /proc; kernels run in their own session)."""
    children: dict[int, list[int]] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop(proc: subprocess.Popen) -> None:
    """Stop a server we started: its process group first, then any kernel left behind."""
    below = _descendants(proc.pid)
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    for pid in below:  # kernels have their own session: stop each by its PID
        _signal_group(pid, signal.SIGKILL)


def wait_for_port(
    port: int, proc: subprocess.Popen, log: pathlib.Path, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on port {port}:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def jupyter_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment with every Jupyter/IPython dir in a temporary directory."""
    root = tmp_path_factory.mktemp("jupyter")
    env = dict(os.environ)
    for var, sub in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTER_DATA_DIR", "data"),
        ("IPYTHONDIR", "ipython"),
        ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
    ]:
        (root / sub).mkdir()
        env[var] = str(root / sub)
    # No "Would you like to receive Jupyter news?" toast over the notebook.
    (root / "config" / "labconfig").mkdir()
    (root / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # the kernel is this venv's python
    # The kernel imports trace_nb from this checkout, whatever is installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parents[1]), env.get("PYTHONPATH")]))
    env.pop("OPENAI_API_KEY", None)
    return env


def _serve(
    cmd: list[str], env: dict[str, str], port: int, log: pathlib.Path, cwd: pathlib.Path
) -> subprocess.Popen:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_port(port, proc, log)
    except Exception:
        stop(proc)
        raise
    return proc


@pytest.fixture
def voila_url(jupyter_env: dict[str, str], tmp_path: pathlib.Path) -> Iterator[str]:
    """URL of the panel demo notebook rendered by a fresh Voila server."""
    port, token = free_port(), secrets.token_hex(12)
    cmd = [
        str(BIN / "voila"),
        str(NOTEBOOKS / "panel_demo.ipynb"),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        f"--Voila.token={token}",
        "--VoilaConfiguration.show_tracebacks=True",
    ]
    env = dict(jupyter_env, TRACE_NB_STATE_DIR=str(tmp_path / "state"))
    proc = _serve(cmd, env, port, tmp_path / "voila.log", NOTEBOOKS)
    try:
        yield f"http://127.0.0.1:{port}/?token={token}"
    finally:
        stop(proc)


def _jupyter(
    app: str,
    path: str,
    jupyter_env: dict[str, str],
    tmp_path: pathlib.Path,
    notebook: str = "panel_demo.ipynb",
    settings: dict | None = None,
) -> Iterator[str]:
    """A fresh JupyterLab or Notebook 7 server on a copy of ``notebook``, with default
    settings except ``settings`` (plugin id -> values, as a user's settings files)."""
    root = tmp_path / app
    root.mkdir()
    shutil.copy(NOTEBOOKS / notebook, root / notebook)
    port, token = free_port(), secrets.token_hex(12)
    env = dict(jupyter_env, TRACE_NB_STATE_DIR=str(tmp_path / "state"))  # autosaves per test
    if settings:
        user = tmp_path / "user-settings"
        for plugin, values in settings.items():
            package, _, name = plugin.rpartition(":")
            target = user / package / f"{name}.jupyterlab-settings"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))
        env["JUPYTERLAB_SETTINGS_DIR"] = str(user)
    cmd = [
        str(BIN / f"jupyter-{app}"),
        "--allow-root",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    proc = _serve(cmd, env, port, tmp_path / f"{app}.log", root)
    try:
        yield f"http://127.0.0.1:{port}/{path}/{notebook}?token={token}"
    finally:
        stop(proc)


@pytest.fixture
def lab_url(jupyter_env: dict[str, str], tmp_path: pathlib.Path) -> Iterator[str]:
    """URL of a copy of the demo notebook in a fresh JupyterLab with default settings."""
    yield from _jupyter("lab", "lab/tree", jupyter_env, tmp_path)


@pytest.fixture
def lab_dark_url(jupyter_env: dict[str, str], tmp_path: pathlib.Path) -> Iterator[str]:
    """The demo notebook in a fresh JupyterLab whose user picked the JupyterLab Dark theme."""
    yield from _jupyter(
        "lab",
        "lab/tree",
        jupyter_env,
        tmp_path,
        settings={"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}},
    )


@pytest.fixture
def lab_candidates_url(jupyter_env: dict[str, str], tmp_path: pathlib.Path) -> Iterator[str]:
    """The candidates demo notebook in a fresh JupyterLab with default settings."""
    yield from _jupyter("lab", "lab/tree", jupyter_env, tmp_path, notebook="candidates_demo.ipynb")


@pytest.fixture
def notebook_url(jupyter_env: dict[str, str], tmp_path: pathlib.Path) -> Iterator[str]:
    """URL of a copy of the demo notebook in a fresh Notebook 7 with default settings."""
    yield from _jupyter("notebook", "notebooks", jupyter_env, tmp_path)


@pytest.fixture(scope="module")  # Playwright runs an event loop: close it with this module
def browser() -> Iterator[object]:
    reason = _missing()
    if reason:
        pytest.fail(f"the browser tests cannot run: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshots() -> pathlib.Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
