# Two commands set everything up on a fresh machine:
#   make demo   - build the guests and the host, run the demo
#   make test   - build the guests and run every test (Rust, then Python)
# Guests are built by scripts/build-guests.sh, which picks rustup's
# wasm32-wasip1 target or Debian's toolchain by itself.

CARGO ?= cargo
MODULES := target/wasm-modules
# The Python environment (scripts/python-env.sh): the package wasm_study,
# built from wasm-py/ into it, and the engines its tests use.
VENV := .venv
# pyo3's build script asks this interpreter: the same for maturin and
# clippy, so switching between them rebuilds nothing.
ifneq ($(wildcard $(VENV)/bin/python),)
export PYO3_PYTHON := $(CURDIR)/$(VENV)/bin/python
endif

.PHONY: all guests demo test test-rust test-python venv py lint fuzz bench bench-peers bench-sizes bench-report bench-python clean

all: guests
	$(CARGO) build

guests:
	bash scripts/build-guests.sh

demo: guests
	$(CARGO) run --quiet -p wasm-app -- demo --modules $(MODULES)

test: test-rust test-python

# wasm-py's tests are pytest's (a Rust test binary would link libpython).
test-rust: guests
	WASM_APP_MODULES=$(CURDIR)/$(MODULES) $(CARGO) test --workspace --exclude wasm-py

# After test-rust, whose build of the CLI the Python tests compare with.
# `timeout`: a hung Ray or Spark session fails CI instead of holding it.
test-python: guests py
	WASM_APP_MODULES=$(CURDIR)/$(MODULES) timeout 1200 $(VENV)/bin/python -m pytest -q wasm-py/tests

venv:
	bash scripts/python-env.sh $(VENV)

# The extension in the dev profile (dependencies are optimised there too,
# see Cargo.toml) and the shared target/: `maturin build --release` or
# `pip install ./wasm-py` would build wasmtime and arrow a second time.
py: venv
	VIRTUAL_ENV=$(CURDIR)/$(VENV) PYO3_PYTHON=$(CURDIR)/$(VENV)/bin/python \
	  $(VENV)/bin/maturin develop -m wasm-py/Cargo.toml --locked -q

lint:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Coverage-guided fuzzing (cargo fuzz + libFuzzer + ASan, scripts/fuzz.sh):
# FUZZ_TIME seconds per target; FUZZ_TARGETS="a b" runs only those. Installs
# cargo-fuzz if missing; the first sanitizer build takes long (see README).
FUZZ_TIME ?= 60

fuzz:
	FUZZ_TIME=$(FUZZ_TIME) bash scripts/fuzz.sh

# Criterion settings for `make bench` (groups with big inputs set 10
# samples themselves; fewer bootstrap resamples than criterion's 100 000
# still give the median's interval to a few percent).
BENCH_ARGS ?= --warm-up-time 1 --measurement-time 2 --nresamples 20000

# Every group (wasm-app's benches and the peers, from one build in
# bench-peers/), then the sizes and bench/REPORT.md from all of them.
# SIZES_DIST=1 also builds the shipped host (`--profile dist`, fat LTO:
# ~8 more minutes on 2 cores) and adds its size.
bench: guests
	$(MAKE) --no-print-directory bench-peers bench-sizes bench-report bench-python

bench-peers:
	bash scripts/bench-peers.sh $(BENCH_ARGS)

bench-sizes:
	CARGO=$(CARGO) bash scripts/sizes.sh

bench-report:
	bash scripts/bench-report.sh

# wasm_study: Python against Rust per call, Ray on 1 and 2 nodes, Spark
# mapInArrow against pure pyarrow; writes bench/PYTHON.md. PY_BENCH="--only
# rust" runs one part.
bench-python: guests py
	WASM_APP_MODULES=$(CURDIR)/$(MODULES) $(VENV)/bin/python wasm-py/bench/bench.py $(PY_BENCH)

clean:
	$(CARGO) clean
