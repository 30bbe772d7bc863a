#!/usr/bin/env bash
# Build time from nothing, the figures of "Build time" in docs/benchmarks.md. Usage:
#
#   bash bench/build-time.sh [--release-only] [--source DIR]
#
#   1. `cargo build --release --locked` in an empty target directory: the total, and the
#      workspace's own share (its three crates, from the moment the last dependency is built to
#      the end: libraries, binary and link), read from cargo's `--timings` report;
#   2. `cargo test --locked --no-run` in an empty target directory: every test, bench and
#      example target compiled, as the first `cargo test` of a fresh clone does before running.
#
# The target directory is `$CARGO_TARGET_DIR/build-time` (`target/build-time` by default) and
# is deleted before each step. `--source DIR` measures another checkout (an older commit from
# `git archive`, say) with the same target directory. Crates must be downloaded already
# (`cargo fetch`): the figures are compile time, not network time. Other builds on the machine
# make the figures meaningless, so the script says when it sees another rustc at work.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$(pwd)

release_only=0
source_dir=$here
while [ $# -gt 0 ]; do
    case "$1" in
    --release-only) release_only=1 ;;
    --source)
        shift
        source_dir=$(cd "${1:?--source needs a directory}" && pwd)
        ;;
    *)
        echo "usage: bash bench/build-time.sh [--release-only] [--source DIR]" >&2
        exit 2
        ;;
    esac
    shift
done

base=${CARGO_TARGET_DIR:-$here/target}
target="$base/build-time"
mkdir -p "$base"

now() { date +%s.%N; }
busy() {
    if pgrep -x rustc >/dev/null || pgrep -x cargo >/dev/null; then
        echo "warning: another cargo or rustc is running; these figures are not from an idle machine" >&2
    fi
}

# The crate's share of a release build, from cargo's timing report: the end of the build minus
# the end of the last unit that is not this crate's (dependencies and their build scripts).
crate_share() {
    python3 - "$1" <<'PY'
import json, re, sys
html = open(sys.argv[1], encoding="utf-8").read()
units = json.loads(re.search(r"const UNIT_DATA = (\[.*?\]);\n", html, re.S).group(1))
end = lambda u: u["start"] + u["duration"]
# The workspace's own crates: the daemon, the codec (smsgate-sms), the driver (smsgate-modem).
ours = lambda u: u["name"] == "smsgate" or u["name"].startswith("smsgate-")
own = [u for u in units if ours(u)]
deps_end = max(end(u) for u in units if not ours(u))
total_end = max(end(u) for u in units)
parts = ", ".join(f"{u['name']} {(u.get('target') or '').strip() or 'lib'} {u['duration']:.0f} s" for u in own)
print(f"{total_end - deps_end:.1f} {deps_end:.1f} {parts}")
PY
}

cd "$source_dir"
echo "source: $source_dir ($(git -C "$source_dir" describe --always --dirty 2>/dev/null || echo 'not a git checkout'))"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(rustc --version)"

busy
rm -rf "$target"
t0=$(now)
CARGO_TARGET_DIR="$target" cargo build --release --locked --timings --quiet
t1=$(now)
release=$(echo "$t1 - $t0" | bc)
# Kept: the next step empties the target directory.
cp "$target/cargo-timings/cargo-timing.html" "$base/build-time-release.html"
read -r share deps parts < <(crate_share "$base/build-time-release.html")
printf 'release build from clean (cargo build --release): %.0f s (%.1f min)\n' "$release" "$(echo "$release / 60" | bc -l)"
printf "  dependencies done after %.0f s; the workspace's own crates: %.0f s (%s)\n" "$deps" "$share" "$parts"
echo "  cargo's report: $base/build-time-release.html"
busy

if [ "$release_only" = 0 ]; then
    rm -rf "$target"
    t0=$(now)
    CARGO_TARGET_DIR="$target" cargo test --locked --no-run --quiet 2>/dev/null
    t1=$(now)
    tests=$(echo "$t1 - $t0" | bc)
    printf 'test build from clean (cargo test --no-run): %.0f s (%.1f min)\n' "$tests" "$(echo "$tests / 60" | bc -l)"
    busy
fi
