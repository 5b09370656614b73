# Two commands set everything up on a fresh machine:
#   make demo   - build the guests and the host, run the demo
#   make test   - build the guests and run every test
# Guests are built by scripts/build-guests.sh, which picks rustup's
# wasm32-wasip1 target or Debian's toolchain by itself.

CARGO ?= cargo
MODULES := target/wasm-modules

.PHONY: all guests demo test lint fuzz bench bench-peers bench-sizes bench-report clean

all: guests
	$(CARGO) build

guests:
	bash scripts/build-guests.sh

demo: guests
	$(CARGO) run --quiet -p wasm-app -- demo --modules $(MODULES)

test: guests
	WASM_APP_MODULES=$(CURDIR)/$(MODULES) $(CARGO) test --workspace

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
	$(MAKE) --no-print-directory bench-peers bench-sizes bench-report

bench-peers:
	bash scripts/bench-peers.sh $(BENCH_ARGS)

bench-sizes:
	CARGO=$(CARGO) bash scripts/sizes.sh

bench-report:
	bash scripts/bench-report.sh

clean:
	$(CARGO) clean
