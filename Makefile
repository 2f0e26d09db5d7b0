# Every target does its own set-up from nothing: venv, install, lite/test model.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
LITE_MODEL := models/bge-m3-lite
MODEL_STAMP := $(LITE_MODEL)/sparse_linear.pt

.PHONY: setup test run bench clean

setup: $(INSTALLED) $(MODEL_STAMP)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

$(MODEL_STAMP): scripts/make_test_model.py | $(INSTALLED)
	$(BIN)/python scripts/make_test_model.py $(LITE_MODEL)

test: setup
	QT_QPA_PLATFORM=offscreen DESKTOP_SEARCH_LITE_MODEL=$(LITE_MODEL) $(BIN)/python -m pytest

run: setup
	$(BIN)/desktop-search

# Every benchmark runs even when an earlier one misses its target; the exit status says if any did.
bench: setup
	@status=0; \
	for bench in "quality.py --check" encode_speed.py pipeline.py "search_latency.py --chunks 100000" startup.py; do \
	  echo "== bench/$$bench"; $(BIN)/python bench/$$bench || status=1; \
	done; exit $$status

clean:
	rm -rf $(VENV) models bench/work
