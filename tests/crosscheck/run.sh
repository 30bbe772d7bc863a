#!/usr/bin/env bash
# Cross-check smsgate's PDU codec against independent Python implementations.
# Usage (from anywhere): tests/crosscheck/run.sh [COUNT] [crosscheck.py options]
# Env: SMSGATE_BIN=/path/to/smsgate skips `cargo build`; PYTHON=python3.x picks the interpreter.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/target/crosscheck-venv"
req="$here/requirements.txt"

if [[ ! -x "$venv/bin/python" ]]; then
    mkdir -p "$root/target"
    "${PYTHON:-python3}" -m venv "$venv"
fi
# Reinstall only when requirements.txt changed since the last successful install.
stamp="$venv/.requirements.sha256"
want="$("$venv/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$req")"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$req"
    echo "$want" > "$stamp"
fi

if [[ -z "${SMSGATE_BIN:-}" ]]; then
    (cd "$root" && cargo build --quiet --bin smsgate)
    export SMSGATE_BIN="$root/target/debug/smsgate"
fi

exec "$venv/bin/python" "$here/crosscheck.py" "$@"
