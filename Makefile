# Thin wrappers; tool settings live in pyproject.toml.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test test-slow lint docs demo results-demo bench results-bench perf gpu-check clean data baseline regress

install:  ## create .venv and install the package with its dev extras
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev]'

# make test on TEST_WORKERS processes (pytest-xdist). --dist loadfile keeps a test file on one
# worker, so a module's shared fixture (a smoke run, a trained model) is built once, not per worker.
TEST_WORKERS ?= 2

test:  ## the fast test suite (what CI runs), on TEST_WORKERS=2 worker processes
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-slow:  ## the long-running tests too
	$(BIN)/python -m pytest -q -m 'slow'

lint:
	$(BIN)/ruff check robustbench_ode tests

docs:  ## the README's snippet and commands, every docs link (slow: the README top to bottom in a fresh clone)
	$(BIN)/python -m pytest -q -m 'slow or not slow' tests/test_readme.py

# demo and bench write under runs/ (untracked); the committed copies under results/ change only
# through results-demo / results-bench (or DEMO_OUT=... / BENCH_OUT=... given explicitly).
DEMO_OUT ?= runs/demo
BENCH_OUT ?= runs

demo:  ## one minute on CPU: ends with the effect table (Euler-2 models collapse at finer steps, Euler-64 hold); files in runs/demo/
	OMP_NUM_THREADS=1 $(BIN)/python -m robustbench_ode run suites/demo.yaml --out $(DEMO_OUT) --no-progress

results-demo:  ## regenerate the committed demo run, results/demo/ (then commit it)
	$(MAKE) demo DEMO_OUT=results/demo

bench:  ## the default suites on CPU, each ending with its summary table: tables, plots and report under runs/
	$(BIN)/python -m robustbench_ode run suites/quick.yaml --device cpu --out $(BENCH_OUT)/quick
	$(BIN)/python -m robustbench_ode xor-fan suites/xor_fan.yaml --out $(BENCH_OUT)/xor_fan --no-progress

results-bench:  ## regenerate the committed bench runs, results/quick/ and results/xor_fan/ (then commit them)
	$(MAKE) bench BENCH_OUT=results

perf:  ## speed benchmarks (pytest-benchmark), JSON under results/perf/
	mkdir -p results/perf
	$(BIN)/python -m pytest -q -m perf --benchmark-enable --benchmark-json=results/perf/benchmarks.json tests/perf
	$(BIN)/python tests/perf/ratios.py results/perf/benchmarks.json > results/perf/ratios.md
	cat results/perf/ratios.md

gpu-check:  ## on a CUDA machine, under 8 min: pytest -m gpu and the CIFAR10-shaped benchmark (results/gpu_check.json)
	PY=$(BIN)/python scripts/gpu_check.sh

data:  ## Fashion-MNIST from Debian's dataset-fashion-mnist, unpacked under data/ (needs root for apt)
	apt-get install -y dataset-fashion-mnist
	$(BIN)/python -m robustbench_ode.datasets.preparation --root data

# One thread: results independent of the machine's core count (CPU float reductions).
SMOKE := OMP_NUM_THREADS=1 $(BIN)/python -m robustbench_ode run suites/smoke.yaml --out results/smoke --no-progress --fresh

baseline:  ## refresh results/baselines/ from the smoke suite (then commit both files)
	$(SMOKE)
	mkdir -p results/baselines
	cp results/smoke/results.csv results/baselines/smoke.csv
	cp results/smoke/suite.yaml results/baselines/smoke.suite.yaml  # what the gate checks runs against

regress:  ## the smoke suite against the committed baseline (what CI gates on)
	$(SMOKE)
	$(BIN)/python -m robustbench_ode regress results/smoke --baseline results/baselines/smoke.csv

clean:
	rm -rf results/smoke .pytest_cache
