#!/usr/bin/env bash
# Makes (once) a virtualenv with Twilio's own Python helper library, pinned, and prints the
# path of its python. Used by tests/gateway/twilio.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=9.13.0
VENV=${CARGO_TARGET_DIR:-target}/twilio-venv
if ! "$VENV/bin/python" -c "import twilio, sys; sys.exit(twilio.__version__ != '$VERSION')" 2>/dev/null; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q "twilio==$VERSION" >&2
fi
echo "$(cd "$VENV/bin" && pwd)/python"
