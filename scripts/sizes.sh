#!/usr/bin/env bash
# Sizes of what ships: the host binary (stripped) and every guest in
# target/wasm-modules/ (plus the Extism peer guest when it was built), and, if
# binaryen's wasm-opt is available (installed with apt-get when possible), the
# size each of our guests would have after `wasm-opt -Oz`. The built guests are not
# changed: wasm-opt works on copies.
#
# The host, two ways:
#   - release: the `wasm-app` CLI built in bench-peers/ (bench-peers/cli,
#     rustc 1.96, wasmtime 49) together with the benches, so it costs one
#     crate and a link instead of a second wasmtime build; its wasmtime
#     carries the features Extism adds to it;
#   - dist, only with SIZES_DIST=1: the binary to ship (`--profile dist`: fat
#     LTO, opt-level s, one codegen unit, panic=abort), built at the root with
#     the project's toolchain; ~8 more minutes on 2 cores.
#
# Prints a table and writes it as TSV (name, bytes, bytes after wasm-opt -Oz,
# or "-" when not measured, or "component" for components, which wasm-opt
# does not take) to target/bench/sizes.tsv, read by the bench report.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

root=$(repo_root)
cd "$root"
CARGO=${CARGO:-cargo}
out="$root/target/bench"
tsv="$out/sizes.tsv"
mkdir -p "$out"

# Both workspaces' release profiles strip symbols.
host=""
if [ -x /usr/bin/cargo ]; then
  # Built with the benches: after `make bench-peers`, nothing to build.
  log "building the release host in bench-peers/ (rustc 1.96)"
  bash "$root/scripts/bench-peers.sh" --build-only >&2
  host="$root/bench-peers/target/release/wasm-app"
else
  log "no /usr/bin/cargo (Debian's cargo-web, see scripts/bench-peers.sh): no release host row"
fi
dist=""
if [ "${SIZES_DIST:-0}" != 0 ]; then
  log "building the dist profile (fat LTO, one codegen unit)"
  $CARGO build --profile dist --quiet -p wasm-app
  dist="$root/target/dist/wasm-app"
fi

wasm_opt=""
# Installed only as root (no sudo prompt in `make bench`) and within a timeout.
if have wasm-opt; then
  wasm_opt=$(command -v wasm-opt)
elif have apt-get && is_root; then
  log "installing binaryen (wasm-opt) with apt-get"
  if timeout 300 env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binaryen >/dev/null 2>&1 ||
    { timeout 300 apt-get update -qq >/dev/null 2>&1 &&
      timeout 300 env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binaryen >/dev/null 2>&1; }; then
    wasm_opt=$(command -v wasm-opt || true)
  fi
fi
[ -n "$wasm_opt" ] || log "wasm-opt not available: no -Oz column"

tmp=$(mktemp -d)
remove_on_exit "$tmp"

optimized() {
  local f=$1
  [ -n "$wasm_opt" ] || { echo -; return; }
  # Components (layer 1 in the header) are beyond wasm-opt.
  if [ "$(od -An -tx1 -j6 -N1 "$f" | tr -d ' ')" = "01" ]; then
    echo component
    return
  fi
  # -all: accept every feature the input uses (the output is only measured).
  if "$wasm_opt" -all -Oz "$f" -o "$tmp/o.wasm" 2>"$tmp/err"; then
    wc -c <"$tmp/o.wasm"
  else
    log "wasm-opt failed on $f: $(head -c 300 "$tmp/err")"
    echo -
  fi
}

: >"$tsv"
[ -z "$host" ] || printf '%s\t%s\t%s\n' "wasm-app (host, release, stripped)" "$(wc -c <"$host")" "-" >>"$tsv"
[ -z "$dist" ] || printf '%s\t%s\t%s\n' "wasm-app (host, dist profile, stripped)" "$(wc -c <"$dist")" "-" >>"$tsv"
for f in "$(modules_dir)"/*.wasm; do
  [ -f "$f" ] || continue
  printf '%s\t%s\t%s\n' "$(basename "$f")" "$(wc -c <"$f")" "$(optimized "$f")" >>"$tsv"
done
# The peer's guest: its size only. It has no size goal, and wasm-opt -Oz
# takes over two minutes on its 1.8 MB on 2 cores.
peer=bench-peers/target/wasm32-unknown-unknown/guest/extism_guest.wasm
[ ! -f "$peer" ] || printf '%s\t%s\t%s\n' "$(basename "$peer")" "$(wc -c <"$peer")" "-" >>"$tsv"

printf '%-40s %12s %18s\n' file bytes "after wasm-opt -Oz"
while IFS=$'\t' read -r name bytes opt; do
  printf '%-40s %12s %18s\n' "$name" "$bytes" "$opt"
done <"$tsv"
log "written $tsv"
