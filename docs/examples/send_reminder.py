#!/usr/bin/env python3
"""A billing system's side of smsgate, with the Python standard library only.

Use it as a module (copy the Client class) or from the command line:

    export SMSGATE_URL=http://127.0.0.1:8080 SMSGATE_TOKEN=...
    python3 send_reminder.py message --to +12025550121 --text "Invoice INV-1121 is due Dec 1."
    python3 send_reminder.py plan --to +12025550122 --invoice INV-1122 --amount 120.50 \
        --currency USD --due-date 2027-01-15 --timezone America/New_York --name Ana
    python3 send_reminder.py paid INV-1122
    python3 send_reminder.py status 01KAR6V1T4Y1Q0ZBC5Z2W3M6XD
    python3 send_reminder.py plan-status INV-1122

Give each invoice its own plan and each question its own number while you try it: a second
plan for an invoice with other values is refused (409), and a second message with reply
options to a number waits behind an unanswered first one (status_reason "awaiting_reply").

Each command prints the API's JSON answer. Exit code 0 when the call succeeded, 1 when smsgate
refused it (the problem is printed on standard error), 2 when smsgate could not be reached.
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid


class ApiError(Exception):
    """smsgate answered with an error (4xx or 5xx): `problem` holds its problem details."""

    def __init__(self, status, problem):
        super().__init__(f"{status}: {problem.get('detail') or problem.get('title') or problem}")
        self.status = status
        self.problem = problem


class Client:
    """A small smsgate client.

    A message is sent with an Idempotency-Key, so a retry after a timeout or a 503 never
    creates a second one: smsgate answers the retry with the first answer. Plans are one per
    invoice and marking one paid twice sends nothing, so those are safe to retry as they are.
    """

    def __init__(self, base_url, token, timeout=10.0, attempts=3):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.attempts = attempts

    def request(self, method, path, body=None, idempotency_key=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        for attempt in range(1, self.attempts + 1):
            req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read() or b"null")
            except urllib.error.HTTPError as e:
                try:
                    problem = json.loads(e.read() or b"{}")
                except ValueError:
                    problem = {"title": e.reason}
                # 503: the store could not be written, nothing was accepted: try again.
                # Other errors will not change on a retry.
                if e.code != 503 or attempt == self.attempts:
                    raise ApiError(e.code, problem) from None
            except OSError:
                # Not reached, or no answer in time (URLError, timeouts and refused
                # connections are all OSErrors): safe to retry, the Idempotency-Key is the same.
                if attempt == self.attempts:
                    raise
            time.sleep(0.5 * 2 ** attempt)
        raise AssertionError("unreachable")

    def send_message(self, to, text, metadata=None, idempotency_key=None, **fields):
        """POST /v1/messages. Give an idempotency_key you can recompute (e.g. invoice and
        step) to make a retry after a crash of your own program safe too."""
        body = {"to": to, "text": text, **fields}
        if metadata is not None:
            body["metadata"] = metadata
        return self.request("POST", "/v1/messages", body, idempotency_key or str(uuid.uuid4()))

    def message(self, message_id):
        """GET /v1/messages/{id}: the message, its status and its history."""
        return self.request("GET", "/v1/messages/" + urllib.parse.quote(message_id, safe=""))

    def create_plan(self, to, invoice, amount, currency, due_date, **fields):
        """POST /v1/reminders: the invoice's whole schedule of texts. The same request again
        returns the same plan (one plan per invoice), so it is safe to retry as it is."""
        body = {"to": to, "invoice": invoice, "amount": str(amount), "currency": currency,
                "due_date": due_date, **fields}
        return self.request("POST", "/v1/reminders", body)

    def plan(self, plan_or_invoice):
        """GET /v1/reminders/{id}: every step, its status and the replies."""
        return self.request("GET", "/v1/reminders/" + urllib.parse.quote(plan_or_invoice, safe=""))

    def mark_paid(self, plan_or_invoice, amount_paid=None, confirm=True):
        """POST /v1/reminders/{id}/paid: pending texts cancelled, one confirmation sent. Again on
        a paid plan it sends nothing, so it is safe to retry as it is."""
        body = {"confirm": confirm}
        if amount_paid is not None:
            body["amount_paid"] = str(amount_paid)
        path = "/v1/reminders/" + urllib.parse.quote(plan_or_invoice, safe="") + "/paid"
        return self.request("POST", path, body)


def main():
    p = argparse.ArgumentParser(description="Talk to smsgate from a billing system.")
    p.add_argument("--url", default=os.environ.get("SMSGATE_URL", "http://127.0.0.1:8080"))
    p.add_argument("--token", default=os.environ.get("SMSGATE_TOKEN"))
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("message", help="send one text")
    m.add_argument("--to", required=True)
    m.add_argument("--text", required=True)
    m.add_argument("--invoice", help="kept in the message's metadata")
    m.add_argument("--idempotency-key")
    r = sub.add_parser("plan", help="create an invoice's reminder plan")
    for name in ("--to", "--invoice", "--amount", "--currency", "--due-date"):
        r.add_argument(name, required=True)
    r.add_argument("--timezone")
    r.add_argument("--name")
    r.add_argument("--pay-url")
    d = sub.add_parser("paid", help="mark an invoice paid")
    d.add_argument("invoice")
    s = sub.add_parser("status", help="show a message")
    s.add_argument("message_id")
    ps = sub.add_parser("plan-status", help="show a plan")
    ps.add_argument("invoice")
    args = p.parse_args()
    if not args.token:
        p.error("no token: set SMSGATE_TOKEN or give --token")

    client = Client(args.url, args.token)
    try:
        if args.command == "message":
            meta = {"invoice": args.invoice} if args.invoice else None
            out = client.send_message(args.to, args.text, meta, args.idempotency_key)
        elif args.command == "plan":
            extra = {k: v for k, v in (("timezone", args.timezone), ("name", args.name),
                                       ("pay_url", args.pay_url)) if v}
            out = client.create_plan(args.to, args.invoice, args.amount, args.currency,
                                     args.due_date, **extra)
        elif args.command == "paid":
            out = client.mark_paid(args.invoice)
        elif args.command == "status":
            out = client.message(args.message_id)
        else:
            out = client.plan(args.invoice)
    except ApiError as e:
        print(f"smsgate refused it: {e}", file=sys.stderr)
        print(json.dumps(e.problem, indent=2), file=sys.stderr)
        return 1
    except OSError as e:
        print(f"cannot reach smsgate at {args.url}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
