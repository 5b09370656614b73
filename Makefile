# Two commands set everything up on a fresh machine:
#   make demo   - build the guests and the host, run the demo
#   make test   - build the guests and run every test
# Guests are built by scripts/build-guests.sh, which picks rustup's
# wasm32-wasip1 target or Debian's toolchain by itself.

CARGO ?= cargo
MODULES := target/wasm-modules

.PHONY: all guests demo test lint bench clean

all: guests
	$(CARGO) build

guests:
	bash scripts/build-guests.sh

demo: guests
	$(CARGO) run --quiet -p wasm-app -- demo --modules $(MODULES)

test: guests
	WASM_APP_MODULES=$(CURDIR)/$(MODULES) $(CARGO) test --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: guests
	WASM_APP_MODULES=$(CURDIR)/$(MODULES) $(CARGO) bench -p wasm-app --bench calls

clean:
	$(CARGO) clean
