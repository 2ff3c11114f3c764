# caa: CodeArtifact Analytics. `make help` lists every target.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DB     ?= data/caa.duckdb
PORT   ?= 8501

.DEFAULT_GOAL := help
.PHONY: help demo test bench lint collect dashboard clean lock

help: ## list every target
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The install takes the exact releases of constraints.txt (pip, the build's setuptools, every package), the set
# the suite last passed with, so a clean clone installs what was tested, not whatever came out since. `make lock`
# moves them to the newest releases pyproject.toml allows; run `make test` before committing the new file.
LOCK := constraints.txt
$(STAMP): pyproject.toml $(LOCK) collectors/_ctjson.c # the install compiles the trail decoder (gcc, Python headers)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade -c $(LOCK) pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) --build-constraint $(LOCK) -e '.[test]'
	touch $(STAMP)

demo: $(STAMP) ## build the seeded demo estate, run the real collectors over it, serve the dashboard
	$(BIN)/caa demo --db $(DB) --port $(PORT)

CHROMIUM := /usr/bin/chromium
$(CHROMIUM): # the browser tests drive Debian's chromium (never a downloaded browser build)
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

JAVA := /usr/bin/java
$(JAVA): # the Spark extract's tests run pyspark in local mode on Debian's Java 17
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null

test: $(STAMP) $(CHROMIUM) $(JAVA) ## run the whole test suite (installs Debian chromium and Java 17 for the browser and Spark tests)
	$(BIN)/python -m pytest -n 2 --dist loadfile

BENCH_RUNS   ?= 3
BENCH_EVENTS ?= 5000000
BENCH_DASHBOARD_EVENTS ?= 10000000
bench: $(STAMP) ## ingest, S3, inventory, spike and dashboard figures vs floors and targets (README: a quick run)
	BENCH_RUNS=$(BENCH_RUNS) BENCH_EVENTS=$(BENCH_EVENTS) BENCH_DASHBOARD_EVENTS=$(BENCH_DASHBOARD_EVENTS) \
		$(BIN)/python -m bench.run

lint: $(STAMP) ## ruff over the code
	$(BIN)/ruff check .

collect: $(STAMP) ## run every collector against the accounts in caa.toml
	$(BIN)/caa collect all --db $(DB)

dashboard: $(STAMP) ## serve the dashboard over the store (127.0.0.1)
	$(BIN)/caa dashboard --db $(DB) --port $(PORT)

clean: ## remove the venv, caches and everything under data/
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info build collectors/_ctjson*.so
	find data -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

LOCK_VENV := data/lock-venv
lock: ## resolve the newest releases pyproject.toml allows into constraints.txt (then run make test)
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip 'setuptools>=74.1'
	$(LOCK_VENV)/bin/python -m pip install --quiet --no-build-isolation -e '.[test]'
	{ echo "# Written by make lock on $$(date -u +%F) (Python $$($(LOCK_VENV)/bin/python -c 'import platform; print(platform.python_version())')): the releases make installs."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable | grep -v '^wheel=='; } > $(LOCK)
	rm -rf $(LOCK_VENV)
