"""How the files in this folder were made: trace_nb's save code before the one envelope.

Run once with the last commit that wrote ``trace_nb.session/1``, ``trace_nb.module/1`` and
``trace_nb.train/1`` (33b0468) on the path, from the repository root::

    git archive 33b0468 trace_nb tests/modules_helpers.py | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old:/tmp/old/tests python tests/data/legacy/make_v1_files.py

The files are kept as that code wrote them: tests/test_savefile.py checks that today's
loaders still read them (migration), so they must never be regenerated with newer code.
"""

from __future__ import annotations

import json
import pathlib

import modules_helpers as mh
from IPython.testing.globalipapp import start_ipython

from trace_nb.llm import LLM
from trace_nb.notebook import session as sessions
from trace_nb.testing import FakeOpenAIServer
from trace_nb.training import train

HERE = pathlib.Path(__file__).parent


def reply(suggestion: dict) -> str:
    return json.dumps({"reasoning": "old reasoning", "suggestion": suggestion})


def session_file(srv: FakeOpenAIServer) -> None:
    sessions.set_default_llm(LLM(model="fake", base_url=srv.base_url, api_key="k", cache=False))
    shell = start_ipython()
    shell.extension_manager.load_extension("trace_nb")
    shell.run_cell("def ask(greeting, n):\n    return greeting * n\n")
    cell = (
        "greeting = 'Hi.'\nrepeats = 2\n"
        "def shout(text):\n    return text.upper()\n"
        "out = shout(ask(greeting, repeats))\nout\n"
    )
    shell.run_cell_magic(
        "trace", "--name legacy --param greeting --param repeats --code shout --no-panel", cell
    )
    s = sessions.session("legacy")
    s.feedback("too short", 0.25)
    srv.add_replies(reply({"greeting": "Hello!", "repeats": 3}))
    s.propose()
    s.approve("greeting")
    s.reject("repeats")
    s.run()
    s.feedback("better", 0.75)
    s.save(str(HERE / "session_v1.json"))


def module_file() -> None:
    agent = mh.Agent(greeting="hey")
    agent.greeting.set_value("good day")
    code = next(p for p in agent.parameters() if p.is_code and "act" in p.peek())
    code.set_value("def act(self, plan):\n    return plan * 3\n")
    agent.save(HERE / "module_v1.json")


def train_file(srv: FakeOpenAIServer) -> None:
    import train_helpers as th

    from trace_nb.optim import OptoPrime

    srv.add_replies(*(reply({th.OFFSET.name: v}) for v in (3, 5, 5)))
    th.OFFSET.set_value(0)
    opt = OptoPrime(
        [th.OFFSET],
        llm=LLM(model="fake", base_url=srv.base_url, api_key="k", cache=False),
        memory_size=2,
    )
    train(
        th.offset_workflow,
        th.make_examples(4),
        th.offset_feedback,
        opt,
        batch_size=2,
        epochs=1,
        shuffle_seed=3,
        checkpoint=HERE / "train_v1.json",
        max_steps=2,
    )


if __name__ == "__main__":
    with FakeOpenAIServer(replies=[]) as srv:
        session_file(srv)
        module_file()
        train_file(srv)
