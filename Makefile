# Every target does its own set-up from nothing: venv, install, lite/test model.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
LITE_MODEL := models/bge-m3-lite
MODEL_STAMP := $(LITE_MODEL)/sparse_linear.pt
PACKAGING := $(VENV)/.packaging
# Per-user freedesktop locations; XDG_DATA_HOME moves them (the tests install into a temp folder).
DATA_HOME := $(or $(XDG_DATA_HOME),$(HOME)/.local/share)
APPS_DIR := $(DATA_HOME)/applications
ICONS_DIR := $(DATA_HOME)/icons/hicolor
ICON_SIZES := 16 24 32 48 64 128 256 512
# Menus find the entry without these caches, so each is refreshed only where its tool exists.
# An icon cache is refreshed but never created: in a user folder it would hide the icons that
# other programs add later without refreshing it.
REFRESH_CACHES := \
	if command -v update-desktop-database >/dev/null && [ -d "$(APPS_DIR)" ]; then \
	  update-desktop-database -q "$(APPS_DIR)"; fi; \
	if command -v gtk-update-icon-cache >/dev/null && [ -f "$(ICONS_DIR)/icon-theme.cache" ]; then \
	  gtk-update-icon-cache -q -f -t "$(ICONS_DIR)"; fi

.PHONY: setup test run bench clean package install-desktop uninstall-desktop

setup: $(INSTALLED) $(MODEL_STAMP)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,lite]'
	touch $(INSTALLED)

$(MODEL_STAMP): scripts/make_test_model.py scripts/lite_sparse_head.json | $(INSTALLED)
	$(BIN)/python scripts/make_test_model.py $(LITE_MODEL)

# One pytest worker per core, at most four (each loads torch and the lite model: ~1 GB).
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)
# torch's threads per worker: the cores shared out, not every core each (2 workers of 2 threads on 2 cores
# spun against each other: 1.3x the time, bench/README.md).
TEST_THREADS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); t=$$((n / $(TEST_WORKERS))); [ $$t -lt 1 ] && t=1; echo $$t)

test: setup
	QT_QPA_PLATFORM=offscreen DESKTOP_SEARCH_LITE_MODEL=$(LITE_MODEL) OMP_NUM_THREADS=$(TEST_THREADS) \
	  $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal --durations=15

run: setup
	$(BIN)/desktop-search

# Every benchmark runs even when an earlier one misses its target; the exit status says if any did.
bench: setup
	@status=0; \
	for bench in "quality.py --check" encode_speed.py pipeline.py extract_speed.py "search_latency.py --chunks 100000" \
	    sparse_engines.py search_during_indexing.py startup.py api_load.py; do \
	  echo "== bench/$$bench"; $(BIN)/python bench/$$bench || status=1; \
	done; exit $$status

# The launcher runs this checkout's venv by absolute path, so it needs no PATH or activation. At a terminal
# it offers a key for the quick search box (GNOME; the steps elsewhere); uninstall-desktop removes that key.
install-desktop: setup
	mkdir -p "$(APPS_DIR)"
	sed 's|@BIN@|$(CURDIR)/$(BIN)|g' resources/desktop-search.desktop > "$(APPS_DIR)/desktop-search.desktop"
	for size in $(ICON_SIZES); do \
	  install -D -m 644 resources/icons/hicolor/$${size}x$${size}/apps/desktop-search.png \
	    "$(ICONS_DIR)/$${size}x$${size}/apps/desktop-search.png"; \
	done
	install -D -m 644 resources/icons/hicolor/scalable/apps/desktop-search.svg "$(ICONS_DIR)/scalable/apps/desktop-search.svg"
	$(REFRESH_CACHES)
	$(PYTHON) scripts/bind_shortcut.py offer --command '"$(CURDIR)/$(BIN)/desktop-search-gui" --quick'

uninstall-desktop:
	rm -f "$(APPS_DIR)/desktop-search.desktop" "$(ICONS_DIR)/scalable/apps/desktop-search.svg"
	for size in $(ICON_SIZES); do rm -f "$(ICONS_DIR)/$${size}x$${size}/apps/desktop-search.png"; done
	$(REFRESH_CACHES)
	$(PYTHON) scripts/bind_shortcut.py unbind

# The self-contained folder app in dist/desktop-search/ (PyInstaller, CPU torch, lite model inside).
package: setup $(MODEL_STAMP) $(PACKAGING)
	packaging/build.sh

$(PACKAGING): pyproject.toml | $(INSTALLED)
	$(BIN)/pip install --quiet -e '.[package]'
	touch $(PACKAGING)

clean:
	rm -rf $(VENV) models bench/work
