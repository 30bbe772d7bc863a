#!/usr/bin/env bash
# The API against its own OpenAPI document: schemathesis (from PyPI) generates requests for
# every operation from /openapi.json and sends them to a running `smsgate demo` (the real
# daemon with its simulated modem, on 127.0.0.1). It fails on any 5xx, any response that breaks
# the documented schema, status code, content type or headers, and any operation that answers
# without the token. Bounded: a fixed number of examples per operation and a time limit.
#
#   bash tests/schemathesis/run.sh   # SMSGATE_BIN, SMSGATE_ST_EXAMPLES, SMSGATE_ST_SEED, SMSGATE_ST_SECONDS
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${SMSGATE_BIN:-target/debug/smsgate}
EXAMPLES=${SMSGATE_ST_EXAMPLES:-25}
SEED=${SMSGATE_ST_SEED:-1}
VERSION=4.32.5
VENV=target/schemathesis-venv

if [ ! -x "$VENV/bin/schemathesis" ] || ! "$VENV/bin/schemathesis" --version | grep -q "$VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$VERSION"
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TOKEN=schemathesis-token-0123456789
LOG=$(mktemp)
# Wrong tokens are sent on purpose (the ignored_auth check): no per-address lockout here.
"$BIN" demo --listen "127.0.0.1:$PORT" --token "$TOKEN" --auth-failure-limit 0 >"$LOG" 2>&1 &
DEMO=$!
trap 'kill $DEMO 2>/dev/null || true; wait $DEMO 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/readyz', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.1
done

set +e
timeout 600 "$VENV/bin/schemathesis" run "http://127.0.0.1:$PORT/openapi.json" \
  --header "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance,ignored_auth \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "$EXAMPLES" \
  --seed "$SEED" \
  --exclude-path /v1/events \
  --max-time "${SMSGATE_ST_SECONDS:-60}" \
  --no-color
rc=$?
set -e
if grep -q "panicked" "$LOG"; then
  echo "the daemon panicked during the run:" >&2
  grep -A5 "panicked" "$LOG" >&2
  exit 1
fi
exit $rc
