"""The review panel in a real browser: Voila (the full review loop) and JupyterLab (smoke).

The notebook ``notebooks/panel_demo.ipynb`` starts a FakeOpenAIServer with a scripted
reply inside the kernel, so everything runs offline over real HTTP.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

FEEDBACK = "Please start with the letter A, like a sailor would."


def node(page, name: str):
    """The DAG node whose <title> is ``name``."""
    return page.locator("g.node").filter(has=page.locator("title", has_text=re.compile(f"^{name}$")))


def button(scope, label: str):
    """The button labelled exactly ``label`` (its icon's glyph would spoil an exact role name)."""
    return scope.locator("button", has_text=re.compile(f"^\\s*{label}\\s*$"))


def check_dag_and_details(page) -> None:
    from playwright.sync_api import expect

    page.locator(".trace-nb-panel g.node").first.wait_for(timeout=120_000)
    titles = page.locator(".trace-nb-panel g.node title").all_text_contents()
    assert {"greeting", "upper"} <= set(titles), titles
    node(page, "greeting").click()
    details = page.locator(".trace-nb-details")
    expect(details).to_contain_text("hello there")
    expect(details).to_contain_text("The greeting should start with the letter A.")
    node(page, "upper").click()
    expect(details).to_contain_text("HELLO THERE")
    expect(details).to_contain_text("uppercase")  # the operator's documentation


def test_review_loop_in_voila(page, voila_url, screenshots):
    page.goto(voila_url, wait_until="domcontentloaded")
    try:
        review_loop(page, screenshots)
    finally:  # also on failure: the picture says what went wrong
        page.set_viewport_size({"width": 1280, "height": 1800})  # Voila scrolls inside its body
        page.screenshot(path=str(screenshots / "panel_voila.png"))


def review_loop(page, screenshots) -> None:
    from playwright.sync_api import expect

    check_dag_and_details(page)
    expect(page.locator(".trace-nb-output")).to_contain_text("HELLO THERE")
    box = page.locator(".trace-nb-feedback textarea")
    expect(box).to_have_value("The greeting should start with the letter A.")  # from --feedback
    box.fill(FEEDBACK)
    button(page, "Propose").click()
    card = page.locator(".trace-nb-card")
    expect(card).to_contain_text("Ahoy")
    expect(card).to_contain_text("a sailor would say Ahoy")  # the LLM's reasoning (collapsed)
    page.set_viewport_size({"width": 1280, "height": 1800})
    page.screenshot(path=str(screenshots / "panel_voila_proposal.png"))
    page.set_viewport_size({"width": 1280, "height": 900})
    node(page, "greeting").click()
    expect(page.locator(".trace-nb-details")).to_contain_text(FEEDBACK)  # typed feedback was sent
    button(card, "Approve").click()
    expect(card).to_contain_text("approved by human")
    old_plot = page.locator(".trace-nb-historyview img").get_attribute("src")
    button(page, "Run again").click()
    expect(page.locator(".trace-nb-output")).to_contain_text("AHOY")
    # The score plot is redrawn with the new run's score (a new image).
    page.wait_for_function("""(old) => { const img = document.querySelector(".trace-nb-historyview img");
                                          return img.src !== old && img.complete; }""", arg=old_plot)
    expect(page.locator(".trace-nb-outputview")).to_contain_text("%trace_writeback browser_demo")
    expect(page.locator(".trace-nb-panel g.node title", has_text="greeting")).to_have_count(1)
    expect(page.locator(".trace-nb-historyview")).to_contain_text("1 LLM calls")
    expect(page.locator(".trace-nb-errors")).to_have_text("")


def test_panel_smoke_in_jupyterlab(page, lab_url, screenshots):
    from playwright.sync_api import expect

    page.goto(lab_url, wait_until="domcontentloaded")
    expect(page.locator(".jp-StatusBar-Widget", has_text="| Idle")).to_be_visible(timeout=120_000)
    try:
        # Run > Run All Cells: a menu command, so no keystroke can be lost to focus.
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
        check_dag_and_details(page)
        button(page, "Propose").click()
        expect(page.locator(".trace-nb-card")).to_contain_text("Ahoy")
    finally:
        page.screenshot(path=str(screenshots / "panel_lab.png"))
