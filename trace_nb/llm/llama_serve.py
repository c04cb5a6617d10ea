"""Runs llama.cpp's server and ends it when the process that started it is gone.

:func:`trace_nb.llm.local.local_server` runs this file *by path* under the interpreter that
has ``llama_cpp`` (which need not have trace_nb): ``python llama_serve.py STARTER_PID
--model ...``. It imports only the standard library. The server is in its own session, so
nothing else would stop it when a kernel is restarted or killed (SIGKILL too): a watch
thread ends the process when its parent changes or the starter's pid is gone (or a zombie,
killed and not yet reaped). The parent and the starter differ when the interpreter is a
shell script that runs Python as its child.
"""

import os
import runpy
import sys
import threading
import time

POLL_S = 0.5


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # exists, owned by someone else
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def watch(starter: int, parent: int) -> None:
    while os.getppid() == parent and alive(starter):
        time.sleep(POLL_S)
    os._exit(0)


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]  # no shadowing
    starter = int(sys.argv[1])
    threading.Thread(
        target=watch, args=(starter, os.getppid()), daemon=True, name="parent-watch"
    ).start()
    sys.argv = ["llama_cpp.server", *sys.argv[2:]]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
