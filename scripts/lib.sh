# shellcheck shell=bash
# Shared by the scripts of scripts/: sourced (`. "$(dirname "$0")/lib.sh"`)
# after the caller's `set -euo pipefail`, never run. Defines functions and
# a few constants only; it changes no option and no directory.

# The checkout's root, found from this file (scripts/..) when sourced, so
# callers may cd anywhere afterwards.
LIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The Debian packages of the Rust toolchain that builds std from source for
# wasm targets (-Zbuild-std): rustc-web and cargo-web (rustc >= 1.96 at
# /usr/bin), std's sources, and the linker they call.
# shellcheck disable=SC2034 # used by the callers
DEBIAN_RUST_PKGS=(rustc-web cargo-web rust-web-src lld-22)

# repo_root: prints the checkout's root.
repo_root() { echo "$LIB_ROOT"; }

# modules_dir: prints the folder build-guests.sh writes the built guests to
# (the Rust side finds the same folder: wasm-abi/src/built.rs).
modules_dir() { echo "$LIB_ROOT/target/wasm-modules"; }

# log MESSAGE...: MESSAGE on stderr after the script's name ("sizes: ...");
# LOG_PREFIX overrides the name.
log() { echo "${LOG_PREFIX:-$(basename "$0" .sh)}: $*" >&2; }

# die MESSAGE...: logs MESSAGE and exits with status 1.
die() {
  log "$@"
  exit 1
}

# have COMMAND: whether COMMAND is on the PATH (or a function or builtin).
have() { command -v "$1" >/dev/null 2>&1; }

# require_guest FILE: the built guest FILE in modules_dir, or exits naming
# `make guests` (before a long build that would need it).
require_guest() {
  [ -f "$(modules_dir)/$1" ] || die "error: no $1 in $(modules_dir): build the guests with \`make guests\`"
}

# is_root: whether the script runs as root.
is_root() { [ "$(id -u)" -eq 0 ]; }

# as_root COMMAND...: runs COMMAND as root: directly when root, else with sudo.
as_root() {
  if is_root; then
    "$@"
  else
    sudo "$@"
  fi
}

# debs_missing PKG...: prints those of PKG that dpkg does not list as
# installed (all of them without dpkg), space-separated; nothing when none.
debs_missing() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  echo "${missing[*]}"
}

# apt_install PKG...: installs those of PKG not yet installed with apt-get
# (index updated first), as root; does nothing when none is missing.
apt_install() {
  local missing
  read -r -a missing <<<"$(debs_missing "$@")"
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} with apt-get"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >&2
}

# rustup_has_target TARGET: whether rustup is installed with TARGET's std.
rustup_has_target() {
  have rustup && rustup target list --installed 2>/dev/null | grep -qx "$1"
}

# rustup_add_target TARGET SECONDS: installs TARGET with rustup, giving up
# after SECONDS (offline machines make `rustup target add` hang); its output
# goes to stderr. Succeeds when TARGET is then installed.
rustup_add_target() {
  have rustup && timeout "$2" rustup target add "$1" >&2 2>&1 && rustup_has_target "$1"
}

# debian_cargo ARG...: Debian's cargo-web (/usr/bin/cargo) with its rustc
# first on the PATH, whatever rustup puts there.
debian_cargo() { PATH=/usr/bin:$PATH /usr/bin/cargo "$@"; }

# debian_build_std ARG...: `cargo build ARG...` with Debian's toolchain,
# building std from source (-Zbuild-std, allowed by RUSTC_BOOTSTRAP=1): the
# route for wasm targets whose std Debian does not ship.
debian_build_std() {
  RUSTC_BOOTSTRAP=1 debian_cargo build "$@" -Zbuild-std=std,panic_abort
}

# remove_on_exit PATH: removes PATH (a temporary folder) when the script
# exits (sets the EXIT trap, so once per script).
remove_on_exit() {
  # shellcheck disable=SC2064 # the path is fixed now, on purpose
  trap "rm -rf '$1'" EXIT
}
