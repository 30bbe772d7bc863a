"""Twilio's own Python helper library pointed at smsgate: create, fetch, list (with a filter
and paging), schedule and cancel messages, and the errors a Twilio client expects. Prints one
JSON object with what it saw; exits 1 (with the reason on stderr) when something is not what a
Twilio client gets.

    python client.py BASE_URL ACCOUNT_SID AUTH_TOKEN STATUS_CALLBACK TO
"""

import datetime
import json
import sys
import time

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

BASE, SID, TOKEN, CALLBACK, TO = sys.argv[1:6]


def client(token=TOKEN):
    c = Client(SID, token)
    c.api.base_url = BASE  # the only change an application makes
    return c


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def error_of(fn):
    try:
        fn()
    except TwilioRestException as e:
        return e
    return None


c = client()
out = {}

# Create, as most applications do.
m = c.messages.create(to=TO, from_="+15550001234", body="Invoice 1042 is due", status_callback=CALLBACK)
check(m.sid.startswith("SM") and len(m.sid) == 34, f"sid {m.sid}")
check(m.status in ("queued", "sending", "sent"), f"status {m.status}")
check(m.num_segments == "1", f"num_segments {m.num_segments!r}")
check(m.to == TO and m.body == "Invoice 1042 is due", "to and body echoed")
check(isinstance(m.date_created, datetime.datetime), "date_created parsed as RFC 2822")
check(m.direction == "outbound-api", f"direction {m.direction}")
out["sid"] = m.sid

# Fetch it back.
f = c.messages(m.sid).fetch()
check(f.sid == m.sid and f.to == TO, "fetched the same message")
out["fetched_status"] = f.status

# A long text: its segments.
long = c.messages.create(to=TO, body="x" * 200)
check(long.num_segments == "2", f"200 characters are 2 segments, not {long.num_segments}")

# List with a filter, two per page: the library follows next_page_uri.
for i in range(3):
    c.messages.create(to=TO, body=f"listed {i}")
listed = c.messages.list(to=TO, page_size=2, limit=50)
check(len(listed) >= 5, f"listed {len(listed)}")
check(all(x.to == TO for x in listed), "the To filter holds")
sids = [x.sid for x in listed]
check(len(set(sids)) == len(sids), "no message twice across pages")
check(m.sid in sids, "the first message is listed")
out["listed"] = len(listed)
today = datetime.datetime.now(datetime.timezone.utc)
future = c.messages.list(date_sent_after=today + datetime.timedelta(days=1), limit=5)
check(future == [], "nothing sent after tomorrow")

# Schedule one an hour from now, then cancel it.
at = today + datetime.timedelta(hours=1)
s = c.messages.create(to=TO, body="scheduled", schedule_type="fixed", send_at=at,
                      messaging_service_sid="MG00000000000000000000000000000000")
check(s.status == "scheduled", f"scheduled, not {s.status}")
cancelled = c.messages(s.sid).update(status="canceled")
check(cancelled.status == "canceled", f"canceled, not {cancelled.status}")
deadline = time.time() + 30
while c.messages(m.sid).fetch().status not in ("sent", "delivered"):
    check(time.time() < deadline, "the first message was sent within 30 s")
    time.sleep(0.1)
again = error_of(lambda: c.messages(m.sid).update(status="canceled"))
check(again is not None and again.code == 30409, f"a sent message cannot be canceled: {again}")
out["cancelled"] = s.sid

# Errors, as Twilio's.
e = error_of(lambda: c.messages.create(to="12", body="x"))
check(e is not None and e.status == 400 and e.code == 21211, f"invalid To: {e}")
e = error_of(lambda: c.messages.create(to=TO, body=""))
check(e is not None and e.code == 21602, f"empty body: {e}")
e = error_of(lambda: c.messages("SM" + "0" * 32).fetch())
check(e is not None and e.status == 404 and e.code == 20404, f"unknown sid: {e}")
e = error_of(lambda: client("wrong-token-0000000000").messages.create(to=TO, body="x"))
check(e is not None and e.status == 401 and e.code == 20003, f"wrong token: {e}")
out["errors"] = "ok"

print(json.dumps(out))
