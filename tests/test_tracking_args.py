"""Misuse of the tracking options gets a clear error before anything runs."""

from __future__ import annotations

import pytest
import train_helpers as th
from conftest import ipython_shell
from IPython.core.error import UsageError

from trace_nb import LLM, OptoPrime, node, train
from trace_nb.testing import FakeOpenAIServer
from trace_nb.tracking import otel


def test_an_unknown_tracker_is_refused_before_the_first_call():
    with FakeOpenAIServer(replies=th.fixer) as srv:
        param = node(0, name="offset", trainable=True)
        opt = OptoPrime([param], llm=LLM(model="fake", base_url=srv.base_url, cache=False))
        with pytest.raises(ValueError, match="tracking='wandb' is not known: use 'mlflow'"):
            train(
                lambda ex: node(ex["x"], name="x") + param,
                th.make_examples(4),
                th.offset_feedback,
                opt,
                progress=False,
                tracking="wandb",
            )
        assert srv.requests == [] and param.data == 0


def test_trace_log_misuse_says_what_to_do(monkeypatch):
    monkeypatch.setenv("TRACE_NB_STATE_DIR", "off")
    ip = ipython_shell()
    with pytest.raises(UsageError, match="nosuch"):
        ip.run_line_magic("trace_log", "nosuch")
    ip.run_cell_magic("trace", "--name h26args --param x --no-panel --reset", "x = 1\nx\n")
    with pytest.raises(UsageError, match="not being logged; nothing to stop"):
        ip.run_line_magic("trace_log", "h26args --stop")
    otel.disable()
    try:
        with pytest.raises(UsageError, match="configure a tracer provider"):
            ip.run_line_magic("trace_log", "h26args --otel")
    finally:
        otel.reset()


def test_the_tracking_names_are_listed_resolve_and_an_unknown_one_is_an_attribute_error():
    import trace_nb.tracking as tracking

    # __all__ is spelled out for type checkers; it must name exactly what loads lazily.
    assert sorted(tracking.__all__) == sorted(tracking._LAZY)
    for name in tracking.__all__:
        assert getattr(tracking, name) is not None, name
    with pytest.raises(AttributeError, match="has no attribute 'wandb'"):
        _ = tracking.wandb
