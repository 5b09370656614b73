#!/usr/bin/env bash
# Creates (or brings up to date) the project's Python environment: a venv at
# VENV (default .venv) with wasm-py/requirements.txt installed, for the
# Python package wasm_study and its engine tests (Ray, Spark, DuckDB,
# Polars). Also installs what those need from Debian: a JDK runtime for
# Spark, and python3-venv when Debian's Python is the one used.
#
#   scripts/python-env.sh [VENV]
#
# Environment: PYTHON (an interpreter >= 3.11; found when unset), WHEELS (the
# wheelhouse, default VENV/wheels: every download and the wheel built from
# pyspark's source are kept there, so a second install downloads nothing).
# Does nothing when VENV's stamp matches the requirements and interpreter.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(repo_root)"

VENV=${1:-.venv}
REQS=wasm-py/requirements.txt
WHEELS=${WHEELS:-$VENV/wheels}

# python_ok PY: whether PY runs and is CPython >= 3.11 (pyarrow 26, pyspark
# 4.3, polars 2.1 and duckdb 2 all require it).
python_ok() {
  "$1" -c 'import sys; sys.exit(not (sys.version_info >= (3, 11) and sys.implementation.name == "cpython"))' 2>/dev/null
}

find_python() {
  local p
  for p in ${PYTHON:+"$PYTHON"} python3 python3.13 python3.12 python3.11 /usr/bin/python3; do
    if have "$p" && python_ok "$p"; then
      command -v "$p"
      return 0
    fi
  done
  return 1
}

# Spark runs on a JVM; Java 17 is what pyspark 4.3 needs and Debian 12 ships.
apt_install openjdk-17-jre-headless

if ! PY=$(find_python); then
  apt_install python3 python3-venv
  PY=$(find_python) || die "error: no Python >= 3.11 found (set PYTHON=/path/to/python3.11)"
fi
case "$PY" in
  /usr/bin/*) apt_install python3-venv ;;
esac

stamp="$VENV/.requirements.sha256"
want="$(sha256sum "$REQS" | cut -d' ' -f1) $("$PY" -c 'import sys; print(sys.version.split()[0])')"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

log "creating $VENV with $PY ($("$PY" --version 2>&1))"
"$PY" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check --quiet)
mkdir -p "$WHEELS"
# Wheels first (downloads only what the wheelhouse lacks, builds pyspark's
# sdist once), then an install from the wheelhouse alone.
"${pip[@]}" wheel --wheel-dir "$WHEELS" --find-links "$WHEELS" -r "$REQS"
"${pip[@]}" install --no-index --find-links "$WHEELS" -r "$REQS"
echo "$want" >"$stamp"
log "$VENV ready"
