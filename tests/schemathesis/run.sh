#!/usr/bin/env bash
# The API against its own OpenAPI document: schemathesis (from PyPI) generates requests for
# every operation from /openapi.json and sends them to a running `smsgate demo` (the real
# daemon with its simulated modem, on 127.0.0.1). It fails on any 5xx, any response that breaks
# the documented schema, status code, content type or headers, any operation that answers
# without the token, and (a second pass) any request the document allows that is refused.
# Bounded: a fixed number of examples per operation and a time limit per pass.
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

URL="http://127.0.0.1:$PORT/openapi.json"
CONFIG=tests/schemathesis/schemathesis.toml

set +e
timeout 600 "$VENV/bin/schemathesis" --config-file "$CONFIG" run "$URL" \
  --header "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance,ignored_auth \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "$EXAMPLES" \
  --seed "$SEED" \
  --exclude-path /v1/events \
  --max-time "${SMSGATE_ST_SECONDS:-60}" \
  --no-color
rc=$?

# Every request the document allows is accepted (positive_data_acceptance: no 4xx but the
# state-dependent ones schemathesis.toml lists). Not in the coverage phase: it draws strings
# from a pattern alone, and a phone number that matches the pattern is rarely a valid number of
# any country (hooks.py draws valid ones for the other phases). Left out, with the rule JSON
# Schema cannot state:
# - POST /v1/messages and /batch: expires_at in the future, after send_at and after the send
#   window opens; a send window that opens before it closes; at most max_parts parts.
# - POST /v1/reminders, PATCH /v1/reminders/{id}: no more decimals than the currency has; steps
#   naming templates that exist and render; a send window that opens before it closes.
# - PUT /v1/templates/{name}: the template renders within max_parts parts.
# - POST /v1/opt-outs: exactly one of number and numbers.
# - GET /v1/history/export: to or invoice (query parameters cannot require one of two).
# - POST /v1/reminders/{id}/paid: amount_paid with no more decimals than the plan's currency.
# - POST /v1/modems/{name}/ussd: timeout_seconds written as 308.0 (a JSON Schema integer) is
#   refused by the server, which reads only integers written without a fraction.
timeout 300 "$VENV/bin/schemathesis" --config-file "$CONFIG" run "$URL" \
  --header "Authorization: Bearer $TOKEN" \
  --checks positive_data_acceptance \
  --phases examples,fuzzing \
  --max-examples "$EXAMPLES" \
  --seed "$SEED" \
  --exclude-path /v1/events \
  --exclude-name "POST /v1/messages" --exclude-name "POST /v1/messages/batch" \
  --exclude-name "POST /v1/reminders" --exclude-name "PATCH /v1/reminders/{id}" \
  --exclude-name "PUT /v1/templates/{name}" --exclude-name "POST /v1/opt-outs" \
  --exclude-name "GET /v1/history/export" --exclude-name "POST /v1/modems/{name}/ussd" \
  --exclude-name "POST /v1/reminders/{id}/paid" \
  --max-time "${SMSGATE_ST_SECONDS:-60}" \
  --no-color
accepted=$?
set -e
[ "$rc" -eq 0 ] && rc=$accepted
if grep -q "panicked" "$LOG"; then
  echo "the daemon panicked during the run:" >&2
  grep -A5 "panicked" "$LOG" >&2
  exit 1
fi
exit $rc
