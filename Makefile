# Two commands on a fresh machine with Python 3.11:
#   make run    create .venv, install spotisim, run the main job on the default data
#   make test   create .venv if needed, run the test suite
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install bench clean inspect

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The main job: builds (or reuses) the default synthetic world, fits (or reuses) the
# user model, trains LIRD-DDPG, evaluates it and the baselines; writes runs/lird_ddpg/.
run: $(STAMP)
	$(BIN)/python -m experiments.run --gin_file=lird_ddpg.gin

# Validate and summarise the default synthetic world (or set LOG=path/to/your/logs).
LOG ?= data/default/log
inspect: $(STAMP)
	$(BIN)/python -m spotisim.data.inspect $(LOG)

# Two test processes (the CI box has 2 cores; the tiny configs are mostly
# single-threaded Python), each test file in one process (its fixtures built once).
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_read.py

clean:
	rm -rf $(VENV) data runs .pytest_cache
