# make demo / make test create .venv on first use and install the project with pinned versions.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[train,dev]"
	@touch $(STAMP)

demo: install
	$(BIN)/python -m pipelines.build_hier_openimages --output demo_out
	$(BIN)/python -m hierdata.audit demo_out
	$(BIN)/python -m training.experiment --output demo_out
	@echo "demo outputs in ./demo_out: tables/ trees/ shards/ run.json report/index.html experiment/results.md"

test: install
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest -n 2 -q

lint: install
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

bench: install
	$(BIN)/python bench/bench_mining.py
	$(BIN)/python bench/bench_shards.py
	$(BIN)/python bench/bench_audit.py
	$(BIN)/python bench/bench_train.py
	$(BIN)/python bench/bench_retrieval.py
	$(BIN)/python bench/bench_topk_sets.py

clean:
	rm -rf demo_out .pytest_cache
