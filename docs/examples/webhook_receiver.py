#!/usr/bin/env python3
"""Receives smsgate's webhooks, with the Python standard library only.

    export SMSGATE_WEBHOOK_SECRET=whsec_...        # the same as [webhooks] secret
    python3 webhook_receiver.py --port 9000

It checks each delivery's Standard Webhooks signature (webhook-id, webhook-timestamp,
webhook-signature) in constant time, refuses stale timestamps, answers 204 at once, and hands
the event to a worker thread. A delivery repeated with the same webhook-id (smsgate delivers
at least once) is acknowledged again but handled once. Each handled event is printed on
standard output as one JSON line; each refused delivery is logged on standard error.

Put your own code in handle(). Keep the seen ids in your database in production: here they
are kept in memory and forgotten at restart.
"""

import argparse
import base64
import binascii
import collections
import hashlib
import hmac
import json
import os
import queue
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024  # smsgate's events are a few KB
TOLERANCE = 5 * 60  # seconds a timestamp may be off: older deliveries are replays


def signing_key(secret):
    """The HMAC key of a "whsec_<base64>" secret."""
    if not secret.startswith("whsec_"):
        raise ValueError('the secret must start with "whsec_"')
    encoded = secret[len("whsec_"):]
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error as e:
        raise ValueError(f"the secret after whsec_ is not base64: {e}") from None


def verify(key, headers, body, now=None, tolerance=TOLERANCE):
    """None when the delivery is signed with the key and recent, else why not."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        ts = int(timestamp)
    except ValueError:
        return "webhook-timestamp is not a number"
    if abs((now or time.time()) - ts) > tolerance:
        return "webhook-timestamp is too old or in the future"
    signed = f"{msg_id}.{ts}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    # The header may hold several "v1,<base64>" signatures separated by spaces.
    for sig in signatures.split(" "):
        version, _, value = sig.partition(",")
        if version == "v1" and hmac.compare_digest(expected, value.encode()):
            return None
    return "no valid signature"


class Seen:
    """The last `size` webhook-ids, to handle each event once."""

    def __init__(self, size=100_000):
        self.ids = collections.OrderedDict()
        self.size = size
        self.lock = threading.Lock()

    def first_time(self, msg_id):
        with self.lock:
            if msg_id in self.ids:
                return False
            self.ids[msg_id] = True
            if len(self.ids) > self.size:
                self.ids.popitem(last=False)
            return True


def handle(event):
    """Your code: update the invoice, alert someone on a reply, record an opt-out, ..."""
    print(json.dumps({"verified": True, "id": event["id"], "type": event["type"],
                      "data": event["data"]}), flush=True)


def worker(events):
    while True:
        event = events.get()
        try:
            handle(event)
        except Exception as e:  # one bad event must not stop the others
            print(f"handling {event.get('id')} failed: {e}", file=sys.stderr, flush=True)


def make_handler(key, seen, events, tolerance):
    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                return self.answer(413, "body too large or without a length")
            body = self.rfile.read(length)
            why = verify(key, self.headers, body, tolerance=tolerance)
            if why:
                return self.answer(401, why)
            try:
                event = json.loads(body)
            except ValueError:
                return self.answer(400, "body is not JSON")
            # Acknowledge first, work afterwards: smsgate waits at most [webhooks] timeout.
            if seen.first_time(self.headers["webhook-id"]):
                events.put(event)
            self.answer(204)

        def answer(self, status, why=None):
            if why:
                print(f"refused a delivery ({status}): {why}", file=sys.stderr, flush=True)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, fmt, *args):
            pass  # one line per refused delivery is enough

    return Receiver


def main():
    p = argparse.ArgumentParser(description="Receive smsgate's signed webhooks.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9000, help="0: any free port")
    p.add_argument("--tolerance", type=int, default=TOLERANCE, help="seconds (default 300)")
    args = p.parse_args()
    secret = os.environ.get("SMSGATE_WEBHOOK_SECRET", "")
    try:
        key = signing_key(secret)
    except ValueError as e:
        p.error(f"SMSGATE_WEBHOOK_SECRET: {e}")
    events = queue.Queue()
    threading.Thread(target=worker, args=(events,), daemon=True).start()
    server = ThreadingHTTPServer((args.host, args.port),
                                 make_handler(key, Seen(), events, args.tolerance))
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
