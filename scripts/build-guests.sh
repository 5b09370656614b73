#!/usr/bin/env bash
# Builds the Rust guests for wasm32-wasip1 and copies them to target/wasm-modules/.
#
# Picks the toolchain route by itself:
#   1. rustup with the wasm32-wasip1 target installed (or installable within
#      a timeout: offline machines make `rustup target add` hang);
#   2. otherwise Debian's rustc-web/cargo-web with rust-src and wasi-libc,
#      building std from source (-Zbuild-std).
# Set WASM_ROUTE=rustup or WASM_ROUTE=debian to force one.
#
# The component guests (wasm-component-*) are built the same way, then turned
# into components (WASI preview 1 reactor adapter) by tools/componentize,
# which runs on the host with the normal cargo.
#
# Then builds the C guest (wasm-module-c/greeter.c) with a clang that targets
# wasm32-wasi against wasi-libc: $WASM_CC, else clang-19, else clang; on
# Debian/Ubuntu the missing packages are installed with apt-get. WASI_SYSROOT
# points clang at a wasi-libc sysroot (e.g. wasi-sdk's share/wasi-sysroot).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

root=$(repo_root)
cd "$root"
out=$(modules_dir)
target=wasm32-wasip1
guests=(wasm-module1 wasm-module2 wasm-module-net)
components=(wasm-component-greeter wasm-component-arrow wasm-component-hostile wasm-component-net)
export CARGO_TARGET_DIR="$root/target/guests"

pick_route() {
  if [ -n "${WASM_ROUTE:-}" ]; then
    echo "$WASM_ROUTE"
    return
  fi
  if rustup_has_target "$target"; then
    echo rustup
    return
  fi
  if have rustup; then
    log "trying 'rustup target add $target' (60 s at most)"
    if rustup_add_target "$target" 60; then
      echo rustup
      return
    fi
    log "rustup could not install $target; using Debian's toolchain instead"
  fi
  echo debian
}

install_debian_toolchain() {
  local pkgs=("${DEBIAN_RUST_PKGS[@]}" wasi-libc)
  [ -n "$(debs_missing "${pkgs[@]}")" ] || return 0
  have apt-get ||
    die "error: no rustup wasm32-wasip1 target and no apt-get: install the target with 'rustup target add $target'"
  apt_install "${pkgs[@]}"
}

route=$(pick_route)
log "route: $route"
pkg_args=()
for g in "${guests[@]}" "${components[@]}"; do pkg_args+=(-p "$g"); done

case "$route" in
  rustup)
    cargo build --profile guest --target "$target" "${pkg_args[@]}"
    ;;
  debian)
    install_debian_toolchain
    RUSTFLAGS="-L /usr/lib/wasm32-wasi -C link-self-contained=no" \
      debian_build_std --profile guest --target "$target" "${pkg_args[@]}"
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

# ---- components ----------------------------------------------------------

# The host-side tool is a workspace of its own (tools/componentize), built
# with the normal cargo into target/tools.
CARGO_TARGET_DIR="$root/target/tools" cargo build --quiet \
  --manifest-path "$root/tools/componentize/Cargo.toml"
for g in "${components[@]}"; do
  f="${g//-/_}.wasm"
  "$root/target/tools/debug/componentize" "$CARGO_TARGET_DIR/$target/guest/$f" "$out/$f"
  log "$out/$f ($(wc -c <"$out/$f") bytes, component)"
done

# ---- C guest -------------------------------------------------------------

c_target=wasm32-wasi
c_pkgs=(clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32)

# Without WASI_SYSROOT or /usr/share/wasi-sysroot, clang's default applies
# (Debian: /usr/include/wasm32-wasi and /usr/lib/wasm32-wasi).
c_flags=(--target="$c_target" -mexec-model=reactor)
if [ -n "${WASI_SYSROOT:-}" ]; then
  c_flags+=("--sysroot=$WASI_SYSROOT")
elif [ -d /usr/share/wasi-sysroot ]; then
  c_flags+=(--sysroot=/usr/share/wasi-sysroot)
fi

# Whether "$1" compiles and links a libc-using reactor for wasm32-wasi.
c_usable() {
  have "$1" || return 1
  local tmp rc=0
  tmp=$(mktemp -d)
  printf '#include <stdlib.h>\n__attribute__((export_name("f"))) int f(int n) { return (int)(size_t)malloc(n); }\n' >"$tmp/probe.c"
  "$1" "${c_flags[@]}" "$tmp/probe.c" -o "$tmp/probe.wasm" >/dev/null 2>&1 || rc=1
  rm -rf "$tmp"
  return $rc
}

pick_c_compiler() {
  local cands=()
  if [ -n "${WASM_CC:-}" ]; then
    cands=("$WASM_CC")
  else
    cands=(clang-19 clang)
  fi
  for cc in "${cands[@]}"; do
    if c_usable "$cc"; then
      echo "$cc"
      return 0
    fi
  done
  return 1
}

# Installs the missing C packages; fails when none was missing (installing
# cannot help then).
install_debian_c_toolchain() {
  [ -n "$(debs_missing "${c_pkgs[@]}")" ] || return 1
  apt_install "${c_pkgs[@]}"
}

c_cc=$(pick_c_compiler) || {
  if [ -z "${WASM_CC:-}" ] && have apt-get && have dpkg-query &&
    install_debian_c_toolchain; then
    c_cc=$(pick_c_compiler) || true
  fi
  if [ -z "${c_cc:-}" ]; then
    log "error: no clang that builds for $c_target against wasi-libc${WASM_CC:+ (WASM_CC=$WASM_CC)}."
    log "  Debian/Ubuntu: apt-get install ${c_pkgs[*]}"
    log "  elsewhere: install wasi-sdk (https://github.com/WebAssembly/wasi-sdk) and set"
    log "  WASM_CC=<wasi-sdk>/bin/clang WASI_SYSROOT=<wasi-sdk>/share/wasi-sysroot"
    exit 1
  fi
}
log "C guest: $c_cc"
"$c_cc" "${c_flags[@]}" -std=c11 -Oz -Wall -Wextra \
  -Wl,--gc-sections -Wl,--strip-all \
  wasm-module-c/greeter.c -o "$out/wasm_module_c.wasm"
log "$out/wasm_module_c.wasm ($(wc -c <"$out/wasm_module_c.wasm") bytes)"
