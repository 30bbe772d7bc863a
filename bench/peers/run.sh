#!/usr/bin/env bash
# smsgate against Gammu SMSD, smstools and Kannel, each on its own copy of smsgate's modem
# simulator. Prints one markdown table and writes it into docs/benchmarks.md ("Against Gammu,
# smstools and Kannel"). Usage:
#
#   bash bench/peers/run.sh [--quick] [--reps N] [--only smsgate,gammu,smstools,kannel]
#                           [--serial] [--no-write] [--keep]
#
# The peers come from Debian: apt-get install gammu-smsd smstools kannel. A missing one is
# left out of the table (with a note). smsgate is the release build (built here if missing;
# SMSGATE_BIN points at another binary).
set -euo pipefail
cd "$(dirname "$0")/../.."

bin="${SMSGATE_BIN:-}"
if [[ -z "$bin" ]]; then
    target="${CARGO_TARGET_DIR:-target}"
    cargo build --release --quiet
    bin="$target/release/smsgate"
fi
bin="$(realpath "$bin")"

args=("$@")
only=""
for ((i = 0; i < ${#args[@]}; i++)); do
    if [[ "${args[$i]}" == "--only" ]]; then only="${args[$((i + 1))]:-}"; fi
done
if [[ -z "$only" ]]; then
    only="smsgate"
    for peer in gammu:gammu-smsd smstools:smsd kannel:bearerbox; do
        name="${peer%%:*}" cmd="${peer##*:}"
        if command -v "$cmd" >/dev/null 2>&1 || [[ -x "/usr/sbin/$cmd" ]]; then
            only="$only,$name"
        else
            echo "note: $cmd not found, $name left out (apt-get install gammu-smsd smstools kannel)" >&2
        fi
    done
    args+=(--only "$only")
fi
PATH="$PATH:/usr/sbin:/sbin" exec python3 bench/peers/peers.py --smsgate "$bin" "${args[@]}"
