#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer, AddressSanitizer) of
# everything a guest or an input controls: fuzz/fuzz_targets/*.rs, each a
# call into wasm_app::fuzzing.
#
#   FUZZ_TIME=N      seconds per target (default 60)
#   FUZZ_TARGETS=".."  targets to run (default: all of fuzz/fuzz_targets)
#   ARROW_TESTING_DIR  Arrow test data (default ../shared/arrow-testing)
#   FUZZ_NO_BUILD=1    run the targets as last built (no cargo call)
#
# Steps: installs cargo-fuzz if missing (crates.io, ~1.5 min); builds every
# target and the seed generator in one sanitizer build into fuzz/target (the
# first one is long: wasmtime, arrow and parquet with ASan); writes the seeds
# to fuzz/seeds/TARGET (generated and copied, never committed); runs each
# target for FUZZ_TIME seconds with fuzz/corpus/TARGET as its growing corpus
# (kept between runs, not committed). Logs go to fuzz/logs/TARGET.log.
#
# Prints each target's executions per second and coverage (libFuzzer's
# final `cov:`/`ft:`), and exits non-zero if any target crashed: its input is
# in fuzz/artifacts/TARGET/. Turn it into a regression test by copying it to
# wasm-app/tests/fuzz-regressions/TARGET/ (see wasm-app/tests/fuzz_regressions.rs).
#
# Uses rustup's stable toolchain with RUSTC_BOOTSTRAP=1 for the sanitizer
# flags (-Zsanitizer); its rust-std ships the ASan runtime.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

root=$(repo_root)
cd "$root"
fuzz_time=${FUZZ_TIME:-60}
testing=${ARROW_TESTING_DIR:-$root/../shared/arrow-testing}
export RUSTC_BOOTSTRAP=1
# rustup's cargo, not Debian's (its rustc has no sanitizer runtime).
export PATH="$HOME/.cargo/bin:$PATH"

# Largest input per target (libFuzzer's -max_len); 0 lets libFuzzer choose
# from the seeds. inspect compiles every input with Cranelift: small inputs
# keep its rate usable.
max_len() {
  case "$1" in
    inspect) echo 8192 ;;
    policy_toml | cli_values) echo 1024 ;;
    *) echo 0 ;;
  esac
}

if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz (cargo install --locked cargo-fuzz)"
  cargo install --locked cargo-fuzz
fi

if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  targets=()
  for f in fuzz/fuzz_targets/*.rs; do
    t=$(basename "$f" .rs)
    targets+=("$t")
  done
fi

if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  log "building the targets and the seed generator (fuzz/target)"
  cargo fuzz build >&2
fi
bin="$root/fuzz/target/x86_64-unknown-linux-gnu/release"

# ---- seeds ---------------------------------------------------------------

seeds="$root/fuzz/seeds"
rm -rf "$seeds"
mkdir -p "$seeds"
for t in "${targets[@]}"; do mkdir -p "$seeds/$t"; done
"$bin/seeds" "$testing" "$seeds" >&2

copy() { # copy TARGET FILES...
  local t=$1
  shift
  [ -d "$seeds/$t" ] || return 0
  for f in "$@"; do
    [ -f "$f" ] && cp "$f" "$seeds/$t/"
  done
  return 0
}
golden="$testing/integration-1.0.0-littleendian"
if [ -d "$golden" ]; then
  copy guest_stream "$golden"/*.stream "$testing"/fuzz-ipc-stream/*
  copy read_ipc_stream "$golden"/*.stream "$testing"/fuzz-ipc-stream/*
  copy read_ipc_file "$golden"/*.arrow_file
else
  log "no Arrow test data in $testing (set ARROW_TESTING_DIR): generated seeds only"
fi
# Modules: every .wat of the tests, and the small built guests.
copy inspect wasm-app/tests/hostile/*.wat wasm-app/tests/data/*.wat
for f in "$(modules_dir)"/*.wasm; do
  [ -f "$f" ] && [ "$(wc -c <"$f")" -le "$(max_len inspect)" ] && copy inspect "$f"
done
# The README's policy example, and values as the CLI flags take them.
if [ -d "$seeds/policy_toml" ]; then
  awk '/^## Policy/ {p = 1} p && /^```toml/ {c = 1; next} c && /^```/ {exit} c' README.md \
    >"$seeds/policy_toml/readme.toml"
  printf 'max-memory = "1GiB"\n[[dir]]\nhost = "/srv"\nwritable = true\n' >"$seeds/policy_toml/dir.toml"
fi
if [ -d "$seeds/cli_values" ]; then
  i=0
  for v in 64MiB "10 MB" 4096 512KiB 1_000kb 500ms "1m 30s" 2h /data::/d in \
    "a=b" $'k=v\nx=' 0123456789abcdefABCDEF0123456789abcdef0123456789abcdef0123456789; do
    printf '%s' "$v" >"$seeds/cli_values/$i"
    i=$((i + 1))
  done
fi

# ---- runs ----------------------------------------------------------------

mkdir -p fuzz/logs
summary=()
crashed=()
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  log "$t: ${fuzz_time}s"
  rc=0
  mkdir -p "fuzz/artifacts/$t"
  # What `cargo fuzz run` does after its build, without a cargo call per target.
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0" \
    "$bin/$t" -artifact_prefix="fuzz/artifacts/$t/" \
    -max_total_time="$fuzz_time" -timeout=20 -max_len="$(max_len "$t")" \
    -print_final_stats=1 "fuzz/corpus/$t" "$seeds/$t" >"fuzz/logs/$t.log" 2>&1 || rc=$?
  # The last status line: "#RUNS DONE cov: N ft: N corp: ... exec/s: N rss: ..."
  last=$(grep -E '^#[0-9]+' "fuzz/logs/$t.log" | tail -1 || true)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "fuzz/logs/$t.log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "fuzz/logs/$t.log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  eps=$(sed -n 's/.* exec\/s: \([0-9]*\).*/\1/p' <<<"$last")
  if [ "$rc" -ne 0 ]; then
    crashed+=("$t")
    status="CRASH (see fuzz/logs/$t.log, fuzz/artifacts/$t/)"
  else
    status=ok
  fi
  summary+=("$(printf '%-16s %9s %7s %7s %8s %5s  %s' "$t" "${runs:--}" "${eps:--}" "${cov:--}" "${ft:--}" "${secs:--}" "$status")")
done

printf '%-16s %9s %7s %7s %8s %5s  %s\n' target runs exec/s cov ft secs status
printf '%s\n' "${summary[@]}"
if [ ${#crashed[@]} -gt 0 ]; then
  log "crashed: ${crashed[*]}"
  exit 1
fi
