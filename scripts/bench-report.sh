#!/usr/bin/env bash
# Writes bench/REPORT.md from criterion's results (bench-peers/target/criterion,
# where `make bench` runs every group) and target/bench/sizes.tsv (scripts/sizes.sh).
# The work is done by the `bench-report` binary of bench-peers/host.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
root=$(repo_root)
[ -x /usr/bin/cargo ] || die "needs Debian's cargo-web (run scripts/bench-peers.sh first)"
cd "$root/bench-peers"
CARGO_TARGET_DIR="$root/bench-peers/target" \
  debian_cargo run --quiet --release -p peers-host --bin bench-report -- "$root"
