# Two commands for a new user: `make demo` and `make test`. Everything else is a helper of those.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NATIVE := controller/tiktok/native/libtiktok_rows.so

.PHONY: demo test test-fast lint bench venv native bq-venv clean fuzz fuzz-tools

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s); set PYTHON=/path/to/python3.11" % sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

# The native page reader (C, loaded with ctypes; the service falls back to orjson without it).
$(NATIVE): controller/tiktok/native/tiktok_rows.c controller/tiktok/native/build.py
	$(PYTHON) controller/tiktok/native/build.py

native: $(NATIVE)

# Its differential fuzzer (fuzz/): a sanitizer build against the orjson path, FUZZ_SECONDS long.
# fuzz-tools installs clang + libFuzzer's runtime where it can (root + apt), else cc is used.
# FUZZ_ARGS=--keep merges the new coverage it found into fuzz/corpus/ (the regression corpus).
FUZZ_SECONDS ?= 1800
fuzz-tools:
	@sh fuzz/tools.sh

fuzz: $(STAMP) fuzz-tools
	$(PY) -m fuzz.run --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)

# local-bigquery needs Python 3.13 in a virtualenv of its own (see local_env/bigquery_emulator.py).
bq-venv: $(STAMP)
	$(PY) -m local_env.bigquery_emulator install

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile

# Two workers, one test file each at a time (pytest-xdist): each has its own simulator,
# local-bigquery and Airflow home, so the suite's waits (rate limits, the emulator) overlap.
TEST_WORKERS ?= 2
test: $(STAMP) $(NATIVE) bq-venv lint fuzz-tools
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25

# The fast tier (tests/support/tiers.py: no local-bigquery, no service, no process, no
# Airflow): the venv and the native reader only; a test over 30 s fails, so it stays fast.
test-fast: $(STAMP) $(NATIVE)
	$(PY) -m pytest -q -m "not integration and not e2e" -n $(TEST_WORKERS) --timeout=30

demo: $(STAMP) $(NATIVE) bq-venv
	$(PY) -m local_env.demo $(DEMO_ARGS)

bench: $(STAMP) $(NATIVE) bq-venv
	$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-bq .local output/*.csv $(NATIVE)
