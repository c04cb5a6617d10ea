"""The review panel in a real Chromium, where users run it: JupyterLab and Notebook 7 with
their default settings (widget comms on a subshell thread) and Voila.

The notebook ``notebooks/panel_demo.ipynb`` starts a FakeOpenAIServer inside the kernel
whose reply proposes the word the feedback asks for (``WANT <word>``), so everything runs
offline over real HTTP. Each test asserts what the user sees after every click, and the
click → visible-result times go to ``test-output/browser/timings.json``.
"""

from __future__ import annotations

import json
import re
import time

import pytest

pytestmark = pytest.mark.browser

FRONTENDS = ["lab", "notebook", "voila"]
TIMINGS: dict[str, dict[str, list[float]]] = {}


def node(page, name: str):
    """The DAG node whose <title> is ``name``."""
    return page.locator("g.node").filter(
        has=page.locator("title", has_text=re.compile(f"^{name}$"))
    )


def button(scope, label: str):
    """The button labelled exactly ``label`` (its icon's glyph would spoil an exact role name)."""
    return scope.locator("button", has_text=re.compile(f"^\\s*{re.escape(label)}\\s*$"))


def timed(frontend: str, what: str, click, check) -> None:
    """Click, wait until the check passes, and record how long the user waited."""
    t = time.monotonic()
    click()
    check()
    TIMINGS.setdefault(frontend, {}).setdefault(what, []).append(round(time.monotonic() - t, 3))


@pytest.fixture(scope="module", autouse=True)
def write_timings(screenshots):
    yield
    if TIMINGS:
        (screenshots / "timings.json").write_text(json.dumps(TIMINGS, indent=1))


def open_demo(page, frontend: str, request) -> None:
    """Open the demo notebook in ``frontend`` and run it; wait for the panel."""
    url = request.getfixturevalue(f"{frontend}_url")
    page.goto(url, wait_until="domcontentloaded")
    if not frontend.startswith("voila"):
        run_all(page)
    page.locator(".trace-nb-panel g.node").first.wait_for(timeout=180_000)


def run_all(page) -> None:
    # Run > Run All Cells: a menu command, so no keystroke can be lost to focus.
    from playwright.sync_api import expect

    expect(page.locator(".jp-Notebook")).to_be_visible(timeout=120_000)
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
    started = page.locator(".jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]"))
    for _ in range(12):  # a Run All sent before the kernel is ready can be dropped: retry
        dismiss_dialogs(page)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
        try:
            started.first.wait_for(timeout=10_000)
            return
        except Exception:
            page.keyboard.press("Escape")
    raise AssertionError("Run All Cells never started the notebook")


def dismiss_dialogs(page) -> None:
    """Answer JupyterLab's "Select Kernel" dialog (seen at times when a kernel starts)."""
    select = page.locator(".jp-Dialog button", has_text=re.compile(r"^\s*Select\s*$"))
    for _ in range(10):
        if select.count() and select.first.is_visible():
            select.first.click()
            return
        page.wait_for_timeout(100)


def shoot(page, screenshots, name: str) -> None:
    panel = page.locator(".trace-nb-panel")
    if panel.count():
        panel.first.screenshot(path=str(screenshots / f"{name}.png"))
    else:
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_review_loop(page, frontend, request, screenshots):
    """Three rounds of feedback → Propose → Approve → Run again, an Edit saved at once,
    a Reject, Auto for 2 steps and the Cancel of a slow call, in each frontend."""

    try:
        open_demo(page, frontend, request)
        review_loop(page, frontend, screenshots)
    finally:  # also on failure: the picture says what went wrong
        shoot(page, screenshots, f"panel_{frontend}")


def review_loop(page, frontend: str, screenshots) -> None:
    from playwright.sync_api import expect

    panel = page.locator(".trace-nb-panel")
    status = panel.locator(".trace-nb-status-line")
    output = panel.locator(".trace-nb-output")
    card = panel.locator(".trace-nb-card")
    box = panel.locator(".trace-nb-feedback textarea")
    errors = panel.locator(".trace-nb-errors")
    expect(output).to_contain_text("HELLO THERE")
    expect(box).to_have_value(re.compile("^The greeting should start with the letter A."))
    node(page, "greeting").click()
    expect(panel.locator(".trace-nb-details")).to_contain_text("hello there")

    for i, word in enumerate(["Ahoy", "Avast", "Aye"]):
        box.fill(f"Please start with A, like a sailor. WANT {word}")
        timed(
            frontend,
            "propose",
            lambda: button(panel, "Propose").click(),
            lambda w=word: expect(card).to_contain_text(f"{w} there"),
        )
        expect(status).to_contain_text("1 proposal(s), 1 valid")
        expect(card).to_contain_text(f"a sailor would say {word}")  # the reasoning
        if i == 0:
            shoot(page, screenshots, f"panel_{frontend}_proposal")
            # Lab and Notebook 7 run with "Kernel Comms over subshells" on (their default):
            # the kernel has a subshell thread for the widget comms. ipykernel routes a
            # comm's messages to the shell it last published from, so a callback may run on
            # the main thread or on that subshell; the panel must work either way (the
            # subshell path is driven directly in tests/test_kernel_subshell.py).
            probe = page.locator(".callback-thread")
            expect(probe).to_contain_text("callbacks on ")
            expect(probe).to_contain_text(
                "subshells: 0" if frontend == "voila" else re.compile(r"subshells: [1-9]")
            )
        timed(
            frontend,
            "approve",
            lambda: button(card, "Approve").click(),
            lambda: expect(card).to_contain_text("approved by human"),
        )
        timed(
            frontend,
            "run again",
            lambda: button(panel, "Run again").click(),
            lambda w=word: expect(output).to_contain_text(f"{w.upper()} THERE"),
        )
        expect(box).to_have_value(re.compile("WANT Auto"))  # the --feedback function's text
        expect(panel.locator(".trace-nb-historyview")).to_contain_text(f"{i + 1} LLM calls")
        expect(errors).to_have_text("")

    # An edit typed and saved at once: the saved value is exactly what was typed.
    typed = "Ahoy matey, welcome aboard the good ship Trace (edited by hand)"
    box.fill("WANT Ahem")
    button(panel, "Propose").click()
    expect(card).to_contain_text("Ahem there")
    button(card, "Edit").click()
    editor = card.locator("textarea")
    editor.fill(typed)
    timed(
        frontend,
        "save edit",
        lambda: button(card, "Save edit").click(),
        lambda: expect(card).to_contain_text("edited"),
    )
    expect(card).to_contain_text("welcome aboard the good ship Trace")
    button(card, "Approve").click()
    expect(card).to_contain_text("approved by human")
    button(panel, "Run again").click()
    expect(output).to_contain_text(typed.upper())
    expect(box).to_have_value(re.compile("WANT Auto"))  # the --feedback function's text

    # A reject changes nothing.
    box.fill("WANT Nope")
    button(panel, "Propose").click()
    expect(card).to_contain_text("Nope there")
    timed(
        frontend,
        "reject",
        lambda: button(card, "Reject").click(),
        lambda: expect(card).to_contain_text("rejected by human"),
    )
    button(panel, "Run again").click()
    expect(output).to_contain_text(typed.upper())
    expect(box).to_have_value(re.compile("WANT Auto"))

    # Auto, 2 steps: the --feedback function asks for Auto<n> each run.
    steps = panel.locator(".widget-inline-hbox", has_text="Auto N steps").locator("input")
    steps.fill("2")
    steps.press("Tab")
    timed(
        frontend,
        "auto 2 steps",
        lambda: button(panel, "Auto").click(),
        lambda: expect(status).to_contain_text(
            "auto run finished after 2 of 2 step(s)", timeout=120_000
        ),
    )
    expect(output).to_contain_text(re.compile(r"AUTO\d+ THERE"))
    expect(panel.locator(".trace-nb-historyview")).to_contain_text("2 approved by auto")

    # Cancel of a slow call: the status says it works (with elapsed seconds), Cancel frees it.
    box.fill("WANT Slowpoke SLOW")
    button(panel, "Propose").click()
    expect(status).to_contain_text("working… asking the LLM")
    expect(status.locator(".trace-nb-elapsed")).to_contain_text(re.compile(r"[1-9]\d* s"))
    expect(button(panel, "Propose")).to_be_disabled()
    timed(
        frontend,
        "cancel",
        lambda: button(panel, "Cancel").click(),
        lambda: expect(status).to_contain_text("cancelled"),
    )
    expect(button(panel, "Propose")).to_be_enabled()
    expect(card).to_have_count(0)
    expect(errors).to_have_text("")
