#!/usr/bin/env bash
# Writes bench/REPORT.md from criterion's results (bench-peers/target/criterion,
# where `make bench` runs every group) and target/bench/sizes.tsv (scripts/sizes.sh).
# The work is done by the `bench-report` binary of bench-peers/host.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x /usr/bin/cargo ] || { echo "bench-report: needs Debian's cargo-web (run scripts/bench-peers.sh first)" >&2; exit 1; }
cd "$root/bench-peers"
PATH=/usr/bin:$PATH CARGO_TARGET_DIR="$root/bench-peers/target" \
  /usr/bin/cargo run --quiet --release -p peers-host --bin bench-report -- "$root"
