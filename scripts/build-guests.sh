#!/usr/bin/env bash
# Builds the Rust guests for wasm32-wasip1 and copies them to target/wasm-modules/.
#
# Picks the toolchain route by itself:
#   1. rustup with the wasm32-wasip1 target installed (or installable within
#      a timeout: offline machines make `rustup target add` hang);
#   2. otherwise Debian's rustc-web/cargo-web with rust-src and wasi-libc,
#      building std from source (-Zbuild-std).
# Set WASM_ROUTE=rustup or WASM_ROUTE=debian to force one.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out="$root/target/wasm-modules"
target=wasm32-wasip1
guests=(wasm-module1 wasm-module2)
export CARGO_TARGET_DIR="$root/target/guests"

log() { echo "build-guests: $*" >&2; }

have_rustup_target() {
  command -v rustup >/dev/null 2>&1 &&
    rustup target list --installed 2>/dev/null | grep -qx "$target"
}

pick_route() {
  if [ -n "${WASM_ROUTE:-}" ]; then
    echo "$WASM_ROUTE"
    return
  fi
  if have_rustup_target; then
    echo rustup
    return
  fi
  if command -v rustup >/dev/null 2>&1; then
    log "trying 'rustup target add $target' (60 s at most)"
    if timeout 60 rustup target add "$target" >&2 2>&1 && have_rustup_target; then
      echo rustup
      return
    fi
    log "rustup could not install $target; using Debian's toolchain instead"
  fi
  echo debian
}

install_debian_toolchain() {
  local pkgs=(rustc-web cargo-web rust-web-src wasi-libc lld-22)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  command -v apt-get >/dev/null 2>&1 || {
    log "error: no rustup wasm32-wasip1 target and no apt-get: install the target with 'rustup target add $target'"
    exit 1
  }
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  log "installing ${missing[*]} with apt-get"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >&2
}

route=$(pick_route)
log "route: $route"
pkg_args=()
for g in "${guests[@]}"; do pkg_args+=(-p "$g"); done

case "$route" in
  rustup)
    cargo build --profile guest --target "$target" "${pkg_args[@]}"
    ;;
  debian)
    install_debian_toolchain
    PATH=/usr/bin:$PATH RUSTC_BOOTSTRAP=1 \
      RUSTFLAGS="-L /usr/lib/wasm32-wasi -C link-self-contained=no" \
      /usr/bin/cargo build --profile guest --target "$target" "${pkg_args[@]}" \
      -Zbuild-std=std,panic_abort
    ;;
  *)
    log "error: unknown WASM_ROUTE '$route' (use rustup or debian)"
    exit 2
    ;;
esac

mkdir -p "$out"
for g in "${guests[@]}"; do
  f="${g//-/_}.wasm"
  cp "$CARGO_TARGET_DIR/$target/guest/$f" "$out/$f"
  log "$out/$f ($(wc -c <"$out/$f") bytes)"
done
