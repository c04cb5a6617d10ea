// Clickable trace DAG for trace_nb (anywidget ESM).
// Python sets `svg` (graphviz output) and `hidden` (nodes folded away); a click on a node
// sets `selected` to the node id from its <title>. "Show all nodes" sets `max_nodes` to 0
// and "Fold" sets it back, so Python redraws. The drawing fits its box by default; the
// zoom buttons and the mouse wheel with Ctrl zoom, dragging pans. Colours come from CSS
// (theme variables): each node gets a class `trace-nb-kind-<kind>` from its tooltip.

const FOLDED = 300;

function render({ model, el }) {
  el.classList.add("trace-nb-dag");
  const bar = document.createElement("div");
  bar.className = "trace-nb-dag-bar";
  const note = document.createElement("span");
  note.className = "trace-nb-dag-note";
  const fold = document.createElement("button");
  fold.className = "trace-nb-dag-expand";
  fold.addEventListener("click", () => {
    const all = model.get("max_nodes") === 0;
    model.set("max_nodes", all ? FOLDED : 0);
    model.save_changes();
  });
  const mk = (label, title, fn) => {
    const b = document.createElement("button");
    b.textContent = label;
    b.title = title;
    b.className = "trace-nb-dag-zoom";
    b.addEventListener("click", fn);
    return b;
  };
  let scale = 0; // 0 = fit the box; otherwise a zoom factor of the natural size
  const zoomIn = mk("+", "zoom in", () => zoom(1.25));
  const zoomOut = mk("−", "zoom out", () => zoom(0.8));
  const fit = mk("Fit", "fit the drawing to the box", () => { scale = 0; layout(); });
  const tools = document.createElement("span");
  tools.append(zoomIn, zoomOut, fit);
  bar.append(note, fold, tools);
  const box = document.createElement("div");
  box.className = "trace-nb-dag-svg";
  el.append(bar, box);

  function natural(svg) {
    const vb = svg.viewBox && svg.viewBox.baseVal;
    return vb && vb.width ? { w: vb.width, h: vb.height } : { w: 400, h: 300 };
  }

  function layout() {
    const svg = box.querySelector("svg");
    if (!svg) return;
    const n = natural(svg);
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    if (scale === 0) {
      // Fit: as wide as the box allows (never larger than natural), keeping the aspect.
      const avail = Math.max(box.clientWidth || el.clientWidth || n.w, 50);
      const w = Math.min(n.w * 1.33, avail);
      svg.style.width = `${w}px`;
      svg.style.height = `${(w * n.h) / n.w}px`;
    } else {
      svg.style.width = `${n.w * 1.33 * scale}px`;
      svg.style.height = `${n.h * 1.33 * scale}px`;
    }
    fit.setAttribute("aria-pressed", scale === 0 ? "true" : "false");
  }

  function zoom(factor) {
    const svg = box.querySelector("svg");
    if (!svg) return;
    const current = scale || svg.getBoundingClientRect().width / (natural(svg).w * 1.33) || 1;
    scale = Math.min(Math.max(current * factor, 0.1), 8);
    layout();
  }

  box.addEventListener("wheel", (event) => {
    if (!event.ctrlKey) return; // plain wheel scrolls the page
    event.preventDefault();
    zoom(event.deltaY < 0 ? 1.1 : 0.9);
  }, { passive: false });

  let drag = null;
  box.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || event.target.closest("g.node")) return;
    drag = { x: event.clientX, y: event.clientY, left: box.scrollLeft, top: box.scrollTop };
    box.classList.add("trace-nb-panning");
  });
  const onMove = (event) => {
    if (!drag) return;
    box.scrollLeft = drag.left - (event.clientX - drag.x);
    box.scrollTop = drag.top - (event.clientY - drag.y);
  };
  window.addEventListener("pointermove", onMove);
  const endDrag = () => { drag = null; box.classList.remove("trace-nb-panning"); };
  window.addEventListener("pointerup", endDrag);

  function highlight() {
    const selected = model.get("selected");
    for (const g of box.querySelectorAll("g.node")) {
      const title = g.querySelector("title");
      g.classList.toggle("trace-nb-selected", Boolean(title && title.textContent === selected));
    }
  }

  function draw() {
    const svg = model.get("svg");
    const message = model.get("message");
    box.innerHTML = svg || "";
    if (!svg) {
      const p = document.createElement("div");
      p.className = "trace-nb-dag-message";
      p.textContent = message || "(no trace yet)";
      box.append(p);
    }
    for (const g of box.querySelectorAll("g.node")) {
      const a = g.querySelector("a");
      const kind = a && (a.getAttribute("xlink:title") || a.getAttribute("title"));
      if (kind) g.classList.add(`trace-nb-kind-${kind}`);
      g.style.cursor = "pointer";
      g.addEventListener("click", (event) => {
        event.stopPropagation();
        event.preventDefault();
        const title = g.querySelector("title");
        if (!title) return;
        model.set("selected", title.textContent);
        model.save_changes();
      });
    }
    const hidden = model.get("hidden");
    const all = model.get("max_nodes") === 0;
    note.textContent = hidden > 0 ? `${hidden} node(s) folded into the grey boxes.` : "";
    fold.textContent = all ? "Fold long chains" : "Show all nodes";
    fold.setAttribute("aria-pressed", all ? "true" : "false");
    fold.style.display = hidden > 0 || all ? "" : "none";
    highlight();
    layout();
  }

  const observer = new ResizeObserver(() => { if (scale === 0) layout(); });
  observer.observe(box);
  model.on("change:svg", draw);
  model.on("change:message", draw);
  model.on("change:hidden", draw);
  model.on("change:max_nodes", draw);
  model.on("change:selected", highlight);
  draw();
  return () => {
    observer.disconnect();
    window.removeEventListener("pointerup", endDrag);
    window.removeEventListener("pointermove", onMove);
    model.off("change:svg", draw);
    model.off("change:message", draw);
    model.off("change:hidden", draw);
    model.off("change:max_nodes", draw);
    model.off("change:selected", highlight);
  };
}

export default { render };
