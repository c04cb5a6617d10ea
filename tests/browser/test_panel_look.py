"""How the panel looks and behaves around the loop, in JupyterLab with default settings:
the dark theme's contrast, narrow and wide windows, and a kernel restart."""

from __future__ import annotations

import re

import pytest

from .test_panel_browser import button, dismiss_dialogs, open_demo

pytestmark = pytest.mark.browser

# Effective colours: walk up to the first opaque background, blending translucent ones; any
# CSS colour syntax (rgb(), color(srgb …), color-mix results) is read through a canvas.
CONTRAST_JS = """(sel) => {
  const ctx = document.createElement("canvas").getContext("2d");
  const rgba = (c) => { ctx.clearRect(0, 0, 1, 1); ctx.fillStyle = "#000"; ctx.fillStyle = c;
    ctx.fillRect(0, 0, 1, 1); const d = ctx.getImageData(0, 0, 1, 1).data;
    return [d[0], d[1], d[2], d[3] / 255]; };
  const parse = (c) => { // getImageData premultiplies nothing for opaque fills: use alpha from CSS
    const m = c.match(/\\/\\s*([\\d.]+)\\)$/) || c.match(/rgba\\([^,]+,[^,]+,[^,]+,\\s*([\\d.]+)\\)/);
    const [r, g, b] = rgba(c.replace(/\\/\\s*[\\d.]+\\)$/, ")").replace(/rgba\\(([^,]+,[^,]+,[^,]+),[^)]+\\)/, "rgb($1)"));
    return [r, g, b, m ? parseFloat(m[1]) : (c === "transparent" ? 0 : 1)]; };
  const blend = (top, under) => top.slice(0, 3).map((v, i) => v * top[3] + under[i] * (1 - top[3]));
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const out = [];
  for (const el of document.querySelectorAll(sel)) {
    if (!el.textContent.trim() || el.offsetParent === null) continue;
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let bg = [255, 255, 255];
    for (const layer of layers.reverse()) bg = blend(layer, bg);
    // SVG text is painted with fill (its CSS color is only what currentColor would be).
    const style = getComputedStyle(el);
    const fgc = parse(el instanceof SVGElement && style.fill.startsWith("rgb") ? style.fill : style.color);
    const fg = blend(fgc, bg);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    out.push({ text: el.textContent.trim().slice(0, 40), ratio: (a + 0.05) / (b + 0.05),
               fg: el instanceof SVGElement ? style.fill : style.color,
               bg: bg.map(Math.round).join(",") });
  }
  return out;
}"""

CHECKED = {
    "headings": ".trace-nb-panel h4",
    "header": ".trace-nb-header",
    "status": ".trace-nb-status-line",
    "output box": ".trace-nb-output pre",
    "diff cells": ".trace-nb-diff td",
    "badges": ".trace-nb-status",
    "reasoning": ".trace-nb-reasoning",
    "history": "table.trace-nb-history td",
    "history headers": "table.trace-nb-history th",
    "dag labels": ".trace-nb-dag-svg svg text",
    "score plot": ".trace-nb-historyview svg text",
}


def propose_once(page, word: str = "Ahoy") -> None:
    from playwright.sync_api import expect

    panel = page.locator(".trace-nb-panel")
    panel.locator(".trace-nb-feedback textarea").fill(f"Start with A. WANT {word}")
    button(panel, "Propose").click()
    expect(panel.locator(".trace-nb-card")).to_contain_text(f"a sailor would say {word}")


def test_dark_theme_is_readable(page, request, screenshots):
    from playwright.sync_api import expect

    try:
        open_demo(page, "lab_dark", request)
        expect(page.locator("body")).to_have_attribute("data-jp-theme-name", "JupyterLab Dark")
        propose_once(page)
        page.locator(".trace-nb-card summary").first.click()  # show the LLM's reasoning
        expect(page.locator(".trace-nb-reasoning").first).to_be_visible()
        low = []
        for what, sel in CHECKED.items():
            found = page.evaluate(CONTRAST_JS, sel)
            assert found, f"nothing visible matched {what} ({sel})"
            low += [(what, r) for r in found if r["ratio"] < 4.5]
        assert not low, f"text below WCAG 4.5:1 in the dark theme: {low[:8]}"
        # The DAG is drawn in theme colours, not a white block.
        bg = page.evaluate("""() => getComputedStyle(document.querySelector(
            '.trace-nb-dag-svg svg g.graph > polygon')).fill""")
        assert bg in ("transparent", "rgba(0, 0, 0, 0)", "none"), bg
    finally:
        panel = page.locator(".trace-nb-panel")
        if panel.count():
            page.set_viewport_size({"width": 1280, "height": 2600})  # the whole panel in view
            panel.first.scroll_into_view_if_needed()
            panel.first.screenshot(path=str(screenshots / "panel_lab_dark.png"))


WIDEST_JS = """() => { const p = document.querySelector('.trace-nb-panel');
  const right = p.getBoundingClientRect().left + p.clientWidth;
  return [...p.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > right + 0.5)
    .slice(0, 5).map(e => e.className.baseVal ?? e.className).map(String); }"""


# Words (split at spaces and hyphens) whose letters lie on more than one line: a header
# broken as "ste p", a diff cell wrapped inside a word.
BROKEN_WORDS_JS = """(sel) => { const out = [];
  for (const el of document.querySelectorAll(sel)) {
    if (el.offsetParent === null) continue;
    const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let t = walk.nextNode(); t; t = walk.nextNode()) {
      const re = /[^\\s-]+/g; let m;
      while ((m = re.exec(t.data))) {
        const r = document.createRange(); r.setStart(t, m.index); r.setEnd(t, m.index + m[0].length);
        const tops = new Set([...r.getClientRects()].filter(x => x.width > 0).map(x => Math.round(x.top)));
        if (tops.size > 1) out.push(m[0].slice(0, 30));
      }
    }
  }
  return out.slice(0, 10); }"""


def broken_words(page, sel: str) -> list:
    return page.evaluate(BROKEN_WORDS_JS, sel)


def clipped_buttons(page) -> list:
    return page.evaluate("""() => [...document.querySelectorAll('.trace-nb-panel button')]
        .filter(b => b.offsetParent !== null && b.scrollWidth > b.clientWidth + 1)
        .map(b => b.textContent.trim() || b.title)""")


def overflow(page, sel: str) -> dict:
    return page.evaluate(
        """(sel) => { const e = document.querySelector(sel);
        return {scroll: e.scrollWidth, client: e.clientWidth,
                style: getComputedStyle(e).overflowX}; }""",
        sel,
    )


@pytest.mark.parametrize("width", [800, 1400])
def test_layout_adapts_to_the_window(page, request, screenshots, width):
    from playwright.sync_api import expect

    page.set_viewport_size({"width": width, "height": 1000})
    try:
        open_demo(page, "lab", request)
        expect(page.locator(".jp-FileBrowser")).to_be_visible()  # Lab's default: sidebar open
        # A long code-like value makes a wide diff; the history grows a row.
        propose_once(page, "Ahoy" + "_matey" * 30)
        panel = page.locator(".trace-nb-panel")
        assert clipped_buttons(page) == [], "buttons with cut labels"
        for label in (
            "Propose",
            "Approve all",
            "Reject all",
            "Run again",
            "Auto",
            "Stop",
            "Cancel",
            "Send feedback",
            "Approve",
            "Edit",
            "Reject",
        ):
            expect(button(panel, label).first).to_be_visible()
        # Nothing spills out of the panel: wide parts scroll inside their own box.
        whole = overflow(page, ".trace-nb-panel")
        assert whole["scroll"] <= whole["client"] + 1, (whole, page.evaluate(WIDEST_JS))
        for sel in (".trace-nb-diff", ".trace-nb-table", ".trace-nb-dag-svg"):
            box = overflow(page, sel)
            assert box["scroll"] <= box["client"] + 1 or box["style"] in ("auto", "scroll"), (
                sel,
                box,
            )
        # The history table: headers and cells never break inside a word; a table wider
        # than its box scrolls sideways inside it (at 800 px it is).
        expect(page.locator("table.trace-nb-history th").first).to_be_visible()
        for sel in ("table.trace-nb-history th", "table.trace-nb-history td", ".trace-nb-diff td"):
            assert broken_words(page, sel) == [], (sel, broken_words(page, sel))
        table = overflow(page, ".trace-nb-historyview .trace-nb-table")
        if width == 800:
            assert table["scroll"] > table["client"] and table["style"] in ("auto", "scroll"), table
        heights = page.evaluate("""() => [...document.querySelectorAll(
            '.trace-nb-historyview table.trace-nb-history th')].map(e => e.getBoundingClientRect().height)""")
        assert max(heights) < 2 * min(heights) + 1, heights  # every header on one line
        dag = page.locator(".trace-nb-dag-svg").bounding_box()
        svg = page.locator(".trace-nb-dag-svg svg").bounding_box()
        assert svg["width"] <= dag["width"] + 1, (svg, dag)  # the drawing fits its box
        details = page.locator(".trace-nb-panel .trace-nb-side").bounding_box()
        if width == 800:  # too narrow for side by side: the details go below the DAG
            assert details["y"] >= dag["y"] + dag["height"] - 1, (details, dag)
        else:
            assert abs(details["y"] - dag["y"]) < 60 and details["x"] > dag["x"], (details, dag)
        # Zoom in, then fit again.
        before = svg["width"]
        page.locator(".trace-nb-dag-zoom", has_text="+").click()
        page.locator(".trace-nb-dag-zoom", has_text="+").click()
        expect(page.locator(".trace-nb-dag-zoom", has_text="Fit")).to_have_attribute(
            "aria-pressed", "false"
        )
        assert page.locator(".trace-nb-dag-svg svg").bounding_box()["width"] > before
        page.locator(".trace-nb-dag-zoom", has_text="Fit").click()
        assert abs(page.locator(".trace-nb-dag-svg svg").bounding_box()["width"] - before) < 2
    finally:
        panel = page.locator(".trace-nb-panel")
        if panel.count():
            panel.first.screenshot(path=str(screenshots / f"panel_lab_{width}px.png"))
            for part, sel in (("history", ".trace-nb-historyview"), ("diff", ".trace-nb-diff")):
                if page.locator(sel).count():
                    page.locator(sel).first.scroll_into_view_if_needed()
                    page.locator(sel).first.screenshot(
                        path=str(screenshots / f"{part}_lab_{width}px.png")
                    )


def test_kernel_restart_disables_the_panel_and_offers_the_saved_values(page, request, screenshots):
    from playwright.sync_api import expect

    try:
        open_demo(page, "lab", request)
        propose_once(page, "Ahoy")
        panel = page.locator(".trace-nb-panel")
        button(panel.locator(".trace-nb-card"), "Approve").click()
        expect(panel.locator(".trace-nb-card")).to_contain_text("approved by human")
        button(panel, "Run again").click()
        expect(panel.locator(".trace-nb-output")).to_contain_text("AHOY THERE")
        # Kernel > Restart Kernel…, confirmed.
        page.get_by_role("menuitem", name="Kernel", exact=True).click()
        page.get_by_role("menuitem", name=re.compile(r"^Restart Kernel…")).click()
        page.locator(".jp-Dialog button", has_text=re.compile(r"^\s*Restart\s*$")).click()
        expect(page.locator(".trace-nb-panel.jupyter-widgets-disconnected")).to_have_count(
            1, timeout=60_000
        )
        note = page.evaluate("""() => getComputedStyle(document.querySelector(
            '.trace-nb-panel.jupyter-widgets-disconnected'), '::before').content""")
        assert "re-run the %%trace cell" in note, note
        page.locator(".trace-nb-panel").first.screenshot(
            path=str(screenshots / "panel_lab_restarted.png")
        )
        # Run All again: the cell's values, and an offer to restore the approved ones.
        dismiss_dialogs(page)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
        dismiss_dialogs(page)
        fresh = page.locator(".trace-nb-panel:not(.jupyter-widgets-disconnected)")
        expect(fresh.locator(".trace-nb-output")).to_contain_text("HELLO THERE", timeout=120_000)
        expect(fresh).to_contain_text("Saved values from an earlier kernel: greeting='Ahoy there'")
        button(fresh, "Restore saved values").click()
        expect(fresh.locator(".trace-nb-output")).to_contain_text("AHOY THERE")
        expect(fresh.locator(".trace-nb-status-line")).to_contain_text("restored greeting")
    finally:
        page.screenshot(path=str(screenshots / "panel_lab_restore.png"))


def test_review_with_evidence_in_jupyterlab(page, request, screenshots):
    """Feedback on an intermediate node, Preview on the card, and the parameter's versions."""
    from playwright.sync_api import expect

    from .test_panel_browser import node

    try:
        open_demo(page, "lab", request)
        panel = page.locator(".trace-nb-panel")
        node(page, "upper_1").click()
        side = panel.locator(".trace-nb-side")
        side.locator("textarea").fill("this step shouts; WANT Ahoy")
        button(side, "Feedback on this node").click()
        expect(panel.locator(".trace-nb-status-line")).to_contain_text("feedback on upper_1 sent")
        propose_once(page, "Ahoy")
        card = panel.locator(".trace-nb-card")
        button(card, "Preview").click()
        expect(card.locator(".trace-nb-preview")).to_contain_text("0 → 1")
        expect(card.locator(".trace-nb-preview")).to_contain_text("ran the cell 2 times")
        expect(panel.locator(".trace-nb-status-line")).to_contain_text("mean score 0 → 1")
        button(card, "Approve").click()
        expect(card).to_contain_text("approved by human")
        node(page, "greeting").click()
        expect(side).to_contain_text("versions of greeting")
        expect(side).to_contain_text("v1 ◀ current")
        expect(panel.locator(".trace-nb-errors")).to_have_text("")
    finally:
        panel = page.locator(".trace-nb-panel")
        if panel.count():
            panel.first.screenshot(path=str(screenshots / "panel_lab_evidence.png"))


def test_choosing_among_candidates_in_jupyterlab(page, request, screenshots):
    """Two candidates side by side; Approve on the second picks it; the first is not chosen."""
    from playwright.sync_api import expect

    try:
        open_demo(page, "lab_candidates", request)
        panel = page.locator(".trace-nb-panel")
        button(panel, "Propose").click()
        row = panel.locator(".trace-nb-candidates")
        expect(row.locator(".trace-nb-card")).to_have_count(2)
        first, second = row.locator(".trace-nb-card").nth(0), row.locator(".trace-nb-card").nth(1)
        expect(first).to_contain_text("candidate 0")
        expect(second).to_contain_text("Avast there")
        a, b = first.bounding_box(), second.bounding_box()
        assert abs(a["y"] - b["y"]) < 5 and b["x"] > a["x"]  # side by side
        button(second, "Approve").click()
        expect(second).to_contain_text("approved by human")
        expect(first).to_contain_text("not chosen by human")
        button(panel, "Run again").click()
        expect(panel.locator(".trace-nb-output")).to_contain_text("AVAST THERE")
        expect(panel.locator(".trace-nb-errors")).to_have_text("")
    finally:
        panel = page.locator(".trace-nb-panel")
        if panel.count():
            panel.first.screenshot(path=str(screenshots / "panel_lab_candidates.png"))
