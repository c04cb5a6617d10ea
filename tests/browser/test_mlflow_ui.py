"""The MLflow UI shows a logged training run: its score curve and values, in Chromium.

A real ``mlflow server`` on 127.0.0.1 (SQLite, temp artifacts) receives a short training run
(the optimizer's LLM is the loopback FakeOpenAIServer); the run's page is opened in the
Chromium the other browser tests use, and what a person would look at is checked against
the run's own history: the validation-score chart has a point per step, in the order of the
scores, and the overview lists the last value.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

pytest.importorskip("mlflow")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: train_helpers

import train_helpers as th  # noqa: E402

from trace_nb import LLM, OptoPrime, node, train  # noqa: E402
from trace_nb.testing import FakeOpenAIServer  # noqa: E402
from trace_nb.testing.mlflow_server import mlflow_server  # noqa: E402
from trace_nb.tracking import MLflowLogger  # noqa: E402


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    """``(run page URL, training result)`` of a 3-step run logged to a real server."""
    with (
        mlflow_server(tmp_path_factory.mktemp("mlflow-ui")) as url,
        FakeOpenAIServer(replies=th.half_stepper) as srv,
    ):
        logger = MLflowLogger("browser", "ui-run", tracking_uri=url)
        param = node(0, name="offset", trainable=True)
        result = train(
            lambda ex: node(ex["x"], name="x") + param,
            th.make_examples(12),
            th.offset_feedback,
            OptoPrime([param], llm=LLM(model="fake", base_url=srv.base_url, cache=False)),
            batch_size=4,
            validation=th.make_examples(4, start=100),
            progress=False,
            tracking=logger,
        )
        assert logger.flush(60) and not logger.failed
        yield logger.url(), result


def test_the_run_page_shows_the_score_curve_and_values(page, logged_run, screenshots):
    url, result = logged_run
    scores = [row["val_score"] for row in result.history]
    assert len(scores) == 4 and scores == sorted(scores) and len(set(scores)) == 4

    page.goto(url + "/model-metrics")
    page.get_by_placeholder("Search metric charts").fill("val_score")
    legend = page.get_by_text("ui-run (val_score)", exact=True)
    legend.wait_for()
    card = page.locator('[data-testid="experiment-view-compare-runs-card"]', has=legend)
    points = card.locator("path.point")
    points.nth(len(scores) - 1).wait_for()
    page.screenshot(path=str(screenshots / "mlflow_run_val_score.png"))
    assert points.count() == len(scores)  # a point per step, 0..3
    where = [
        tuple(float(v) for v in re.findall(r"-?[\d.]+", points.nth(i).get_attribute("transform")))
        for i in range(len(scores))
    ]
    xs, ys = [p[0] for p in where], [p[1] for p in where]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)  # steps left to right
    assert ys == sorted(ys, reverse=True) and len(set(ys)) == len(ys)  # rising scores go up

    page.goto(url)
    row = page.get_by_role("row").filter(has=page.get_by_text("val_score", exact=True))
    row.first.wait_for()
    cells = row.first.get_by_role("cell").all_inner_texts()
    assert [c.strip() for c in cells] == ["val_score", f"{scores[-1]:g}"]
    assert page.get_by_text("Finished", exact=True).count() >= 1
    page.screenshot(path=str(screenshots / "mlflow_run_overview.png"))
