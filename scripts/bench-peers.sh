#!/usr/bin/env bash
# Builds the Extism peer guest and runs every benchmark group of `make bench`
# from bench-peers/: wasm-app's own (`calls`, the source of
# `cargo bench -p wasm-app`) and wasm-app side by side with Extism (`peers`).
# One build of wasmtime (49, the one Extism needs; wasm-app accepts it) serves
# both. Our guests must be in target/wasm-modules/ already (`make guests`).
#
# Toolchains:
#   - the Extism guest (wasm32-unknown-unknown): rustup's target if installed
#     or installable within 120 s, else Debian's rustc-web with -Zbuild-std;
#   - the host bench: extism 1.41 needs wasmtime 49, hence rustc >= 1.96:
#     Debian's cargo-web (/usr/bin/cargo, installed with apt-get if missing).
# Extra arguments go to criterion (e.g. --warm-up-time 1 --measurement-time 3).
# `bench-peers.sh --build-only` builds the benches and the release CLI
# (step 2's build) and stops: scripts/sizes.sh takes the CLI from there.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

root=$(repo_root)
cd "$root/bench-peers"
target=wasm32-unknown-unknown
export CARGO_TARGET_DIR="$root/bench-peers/target"

# The benches and the release `wasm-app` CLI (bench-peers/cli, measured by
# scripts/sizes.sh) are built in one cargo invocation: features are unified
# across it, so both share one build of every dependency (built apart,
# wasmtime and arrow would be built twice). `cargo bench` then finds
# everything fresh (bench inherits release). Needs rustc >= 1.96.
build_hosts() {
  [ -x /usr/bin/cargo ] || apt_install rustc-web cargo-web
  debian_cargo build --release -p peers-host -p wasm-app-cli --benches --bins
}

if [ "${1:-}" = --build-only ]; then
  build_hosts
  exit 0
fi

# Before the long builds: the benches load our guests.
require_guest wasm_module1.wasm
require_guest wasm_module2.wasm

# 1. The Extism guest.
if rustup_has_target "$target" || rustup_add_target "$target" 120; then
  log "guest: rustup $target"
  cargo build --profile guest --target "$target" -p extism-guest
else
  log "guest: Debian's toolchain with -Zbuild-std"
  apt_install "${DEBIAN_RUST_PKGS[@]}"
  debian_build_std --profile guest --target "$target" -p extism-guest
fi
log "guest: $CARGO_TARGET_DIR/$target/guest/extism_guest.wasm"

# 2. The benches, with rustc >= 1.96.
build_hosts
WASM_APP_MODULES=$(modules_dir) \
  EXTISM_GUEST="$CARGO_TARGET_DIR/$target/guest/extism_guest.wasm" \
  debian_cargo bench -p peers-host --bench calls --bench peers -- "$@"
