# Two commands on a fresh machine with Python 3.11:
#   make run    create .venv, install spotisim, run the main job on the default data
#   make test   create .venv if needed, run the test suite
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Until experiments.run lands (issue #6) the main job builds the default synthetic
# world (seeded, MSSD schema) and validates + summarises it with the inspect CLI.
run: $(STAMP)
	$(BIN)/python -m spotisim.data.synthetic --out data/default --sessions 20000 --seed 0
	$(BIN)/python -m spotisim.data.inspect data/default/log --tracks data/default/tracks/tracks.csv

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_read.py

clean:
	rm -rf $(VENV) data runs .pytest_cache
