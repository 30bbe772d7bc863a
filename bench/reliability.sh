#!/usr/bin/env bash
# The long crash and fault campaigns (tests/gateway/campaign.rs), then their report in
# docs/reliability.md (between the "bench/reliability" markers). Usage:
#
#   bash bench/reliability.sh [--no-write]
#
#   SMSGATE_CAMPAIGN_CYCLES   kill -9 cycles (default 60)
#   SMSGATE_CAMPAIGN_ROUNDS   rounds of the eight modem faults, 5 s each (default 3)
#   SMSGATE_CAMPAIGN_KEEP=1   keep each campaign's directory (daemon.log, network.jsonl, store)
#
# Each campaign fails (and this script exits non-zero) if a message was lost or doubled, an
# inbound text was lost or stored twice, an event was never acknowledged or a signature was bad.
set -euo pipefail
cd "$(dirname "$0")/.."

write=1
for a in "$@"; do
    case "$a" in
    --no-write) write=0 ;;
    *) echo "usage: bash bench/reliability.sh [--no-write]" >&2; exit 2 ;;
    esac
done

out="${CARGO_TARGET_DIR:-target}/reliability"
rm -rf "$out"
mkdir -p "$out"
started=$(date +%s)
for t in kill_9_campaign_long fault_campaign_long; do
    echo "== campaign::$t"
    SMSGATE_RELIABILITY_OUT="$out" cargo test --quiet --test gateway -- \
        --ignored --exact "campaign::$t" --nocapture --test-threads 1 2>&1 |
        grep -v '^campaign directory' | tail -n 60
done
elapsed=$(($(date +%s) - started))

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
block=$(
    cat <<MD
<!-- bench/reliability: begin (written by bash bench/reliability.sh) -->
Run $(date -u +%Y-%m-%d) on commit \`$(git describe --always --dirty 2>/dev/null || echo unknown)\`:
${cpu:-unknown CPU}, $(nproc) cores, Linux $(uname -r), $(rustc --version | cut -d' ' -f1-2),
debug build (as the tests run it); both campaigns took ${elapsed} s.

### kill -9

$(cat "$out/kill.md")

### Modem faults

$(cat "$out/faults.md")
<!-- bench/reliability: end -->
MD
)
echo
echo "$block"
if [[ $write == 1 ]]; then
    python3 - "$block" <<'PY'
import sys
path = "docs/reliability.md"
block = sys.argv[1]
begin = "<!-- bench/reliability: begin (written by bash bench/reliability.sh) -->"
end = "<!-- bench/reliability: end -->"
doc = open(path).read()
if begin in doc and end in doc:
    pre, rest = doc.split(begin, 1)
    post = rest.split(end, 1)[1]
    doc = pre + block + post
else:
    doc = doc.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w").write(doc)
print(f"written into {path}")
PY
fi
