#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time, then minimises its corpus (kept in the
# repository under fuzz/corpus/<target>/) and lists any crash found (fuzz/artifacts/<target>/).
#
#   bash bench/fuzz.sh [seconds per target, default 120] [target…]
#
# cargo-fuzz needs nightly Rust; with only a stable toolchain, RUSTC_BOOTSTRAP=1 lets stable
# accept the unstable flags it passes (sanitizer coverage).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_EACH=${1:-120}
shift || true
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz
fi
if rustc --version | grep -q nightly; then
  FUZZ=(cargo fuzz)
else
  export RUSTC_BOOTSTRAP=1
  FUZZ=(cargo fuzz)
fi
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  mapfile -t TARGETS < <("${FUZZ[@]}" list)
fi

status=0
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t: ${SECONDS_EACH}s"
  if ! "${FUZZ[@]}" run "$t" "corpus/$t" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 2>&1 | tail -3; then
    echo "!! $t found a crash: see fuzz/artifacts/$t/" >&2
    status=1
  fi
  "${FUZZ[@]}" cmin "$t" "corpus/$t" >/dev/null 2>&1 || true
  echo "   corpus: $(ls "corpus/$t" | wc -l) inputs"
done
exit $status
