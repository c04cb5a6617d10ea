"""The panel in a real ipykernel whose widget callbacks run on a subshell thread.

JupyterLab 4.6 and Notebook 7 send widget comm messages on a kernel subshell by default
("Kernel Comms over subshells"), so button callbacks run on a subshell thread while the
kernel's main thread sits idle in its event loop. Here a real kernel (jupyter_client) runs
the %%trace cell on the main shell, then clicks the panel's buttons from code executed on a
subshell, and polls from that subshell too: nothing on the main shell runs meanwhile, so
only the kernel's own main loop can carry the LLM call's follow-up. Three rounds of
Propose → Approve → Run again must each show up in the panel, with no ``wait()``.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import textwrap

import pytest

jupyter_client = pytest.importorskip("jupyter_client")

ROOT = pathlib.Path(__file__).parents[1]

SETUP = textwrap.dedent("""
    %load_ext trace_nb
    import json, threading
    from trace_nb.llm import LLM
    from trace_nb.notebook.session import set_default_llm
    from trace_nb.testing import FakeOpenAIServer

    WORDS = iter(["Ahoy", "Avast", "Aye"])
    srv = FakeOpenAIServer(replies=lambda req: json.dumps(
        {"reasoning": "start with A", "suggestion": {"greeting": next(WORDS) + " there"}}),
        latency=0.2).start()
    set_default_llm(LLM(model="fake", base_url=srv.base_url, cache=False))

    def grade(out):
        return (1.0 if out.startswith("A") else 0.0, "The greeting should start with A.")
""")

CELL = textwrap.dedent("""
    %%trace --name sub --param greeting --feedback grade
    greeting = "hello there"
    greeting.upper()
""")


class Kernel:
    def __init__(self) -> None:
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        )
        env.pop("OPENAI_API_KEY", None)
        self.km = jupyter_client.KernelManager(kernel_name="python3")
        self.km.kernel_spec.argv[0] = sys.executable  # this venv's python
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def create_subshell(self) -> str:
        msg = self.kc.session.msg("create_subshell_request", {})
        self.kc.control_channel.send(msg)
        reply = self.kc.control_channel.get_msg(timeout=30)
        assert reply["content"]["status"] == "ok", reply["content"]
        return reply["content"]["subshell_id"]

    def run(self, code: str, subshell: str | None = None, timeout: float = 60) -> str:
        """Execute ``code`` (on ``subshell`` when given); return its stdout; raise on error."""
        msg = self.kc.session.msg(
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
        )
        if subshell is not None:
            msg["header"]["subshell_id"] = subshell
        self.kc.shell_channel.send(msg)
        msg_id = msg["header"]["msg_id"]
        out, error = [], None
        while True:
            m = self.kc.get_iopub_msg(timeout=timeout)
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            kind = m["msg_type"]
            if kind == "stream":
                out.append(m["content"]["text"])
            elif kind == "error":
                error = "\n".join(m["content"]["traceback"])
            elif kind == "status" and m["content"]["execution_state"] == "idle":
                break
        if error:
            raise AssertionError(f"kernel error running {code!r}:\n{error}")
        return "".join(out)

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel():
    k = Kernel()
    try:
        yield k
    finally:
        k.close()


def poll(kernel: Kernel, subshell: str, expr: str, timeout_polls: int = 300) -> str:
    """Evaluate ``expr`` on the subshell until it is truthy (0.1 s apart); return it."""
    code = textwrap.dedent(f"""
        import time as _t
        for _ in range({timeout_polls}):
            _v = {expr}
            if _v:
                break
            _t.sleep(0.1)
        print(json.dumps(_v if isinstance(_v, (str, int, float, bool, list)) else str(_v)))
    """)
    return json.loads(kernel.run(code, subshell))


def test_panel_loop_driven_from_a_subshell(kernel):
    kernel.run(SETUP)
    kernel.run(CELL)
    sub = kernel.create_subshell()
    assert "subshell" in kernel.run("print(threading.current_thread().name)", sub)
    kernel.run("import trace_nb\npanel = trace_nb.session('sub').panel", sub)
    for i, word in enumerate(["Ahoy", "Avast", "Aye"]):
        kernel.run(
            f"panel.feedback_text.value = 'round {i}: start with A'\npanel.propose_button.click()",
            sub,
        )
        status = poll(
            kernel,
            sub,
            f"'1 proposal(s)' in panel.status.value and "
            f"panel.proposal_views and panel.proposal_views[0].proposal.new == '{word} there' "
            "and panel.status.value",
        )
        assert status and "1 valid" in status
        kernel.run("panel.proposal_view('greeting').approve_button.click()", sub)
        assert poll(kernel, sub, "'approved by human' in panel.proposal_views[0].header.value")
        kernel.run("panel.run_button.click()", sub)
        assert poll(kernel, sub, f"'{word.upper()} THERE' in panel.output_view.value")
        assert poll(kernel, sub, "not panel.propose_button.disabled")
    rows = poll(kernel, sub, "[r['greeting'] for r in trace_nb.session('sub').rows]")
    assert rows == ["hello there", "Ahoy there", "Avast there", "Aye there"]
    assert poll(kernel, sub, "len(panel.errors) == 0 and 'ok'") == "ok"
