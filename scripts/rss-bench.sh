#!/usr/bin/env bash
# Peak host memory of `wasm-app process` over generated CSV files of growing
# size: streaming should keep it flat and far below the input size.
#   scripts/rss-bench.sh [SIZE_MB ...]      (default: 200 2000)
# Needs GNU time (/usr/bin/time) and python3; uses the release binary.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
root=$(repo_root)
cd "$root"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(200 2000)
bin="$root/target/release/wasm-app"
module="$(modules_dir)/wasm_module2.wasm"
[ -x /usr/bin/time ] || die "needs GNU time (apt-get install time)"
require_guest wasm_module2.wasm
cargo build --release -q -p wasm-app
work=$(mktemp -d)
remove_on_exit "$work"
# Compile the module once into a private cache, so the runs measure
# streaming, not Cranelift (which alone needs ~100 MB for this module).
export WASM_APP_CACHE_DIR="$work/cache"
printf 'id\n1\n' >"$work/warm.csv"
"$bin" process --module "$module" --command count --threads 1 --quiet "$work/warm.csv" -o "$work/warm.arrows"
echo "| input | peak RSS | RSS / input |"
echo "|---|---|---|"
for mb in "${sizes[@]}"; do
  csv="$work/in.csv"
  python3 - "$csv" "$mb" <<'PY'
import sys
path, mb = sys.argv[1], int(sys.argv[2])
target = mb * 1_000_000
line = "{i},document {i} talks about wasm plug-ins and arrow batches,title {i},{s}\n"
with open(path, "w", buffering=1 << 20) as f:
    f.write("id,content,title,score\n")
    written, i = 0, 0
    while written < target:
        chunk = "".join(line.format(i=j, s=j / 7) for j in range(i, i + 10000))
        f.write(chunk)
        written += len(chunk)
        i += 10000
PY
  bytes=$(stat -c %s "$csv")
  kb=$(/usr/bin/time -f "%M" "$bin" process --module "$module" --command count \
        --threads 2 --quiet "$csv" -o "$work/out.arrows" 2>&1 >/dev/null | tail -n 1)
  awk -v b="$bytes" -v k="$kb" 'BEGIN { printf "| %.0f MB | %.1f MB | %.1f %% |\n", b/1e6, k/1024, 100*k*1024/b }'
  rm -f "$csv"
done
