"""The review panel and its parts (the only place in trace_nb that imports ipywidgets)."""
