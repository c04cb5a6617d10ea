// Clickable trace DAG for trace_nb (anywidget ESM).
// Python sets `svg` (graphviz output) and `hidden` (nodes folded into collapsed runs);
// a click on a node sets `selected` to the node id from its <title>; "Show all" sets
// `max_nodes` to 0 so Python redraws the full graph.

function render({ model, el }) {
  el.classList.add("trace-nb-dag");
  const bar = document.createElement("div");
  bar.className = "trace-nb-dag-bar";
  const note = document.createElement("span");
  const expand = document.createElement("button");
  expand.className = "trace-nb-dag-expand";
  expand.textContent = "Show all nodes";
  expand.addEventListener("click", () => {
    model.set("max_nodes", 0);
    model.save_changes();
  });
  bar.append(note, expand);
  const box = document.createElement("div");
  box.className = "trace-nb-dag-svg";
  box.style.overflow = "auto";
  box.style.maxHeight = "460px";
  el.append(bar, box);

  function highlight() {
    const selected = model.get("selected");
    for (const g of box.querySelectorAll("g.node")) {
      const title = g.querySelector("title");
      const on = title && title.textContent === selected;
      g.classList.toggle("trace-nb-selected", on);
      for (const shape of g.querySelectorAll("polygon, ellipse, path")) {
        shape.style.strokeWidth = on ? "3px" : "";
        shape.style.stroke = on ? "#e36209" : "";
      }
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
      g.style.cursor = "pointer";
      g.addEventListener("click", (event) => {
        event.stopPropagation();
        const title = g.querySelector("title");
        if (!title) return;
        model.set("selected", title.textContent);
        model.save_changes();
      });
    }
    const hidden = model.get("hidden");
    note.textContent = hidden > 0 ? `${hidden} chained operations are folded. ` : "";
    bar.style.display = hidden > 0 ? "" : "none";
    highlight();
  }

  model.on("change:svg", draw);
  model.on("change:message", draw);
  model.on("change:hidden", draw);
  model.on("change:selected", highlight);
  draw();
  return () => {
    model.off("change:svg", draw);
    model.off("change:message", draw);
    model.off("change:hidden", draw);
    model.off("change:selected", highlight);
  };
}

export default { render };
