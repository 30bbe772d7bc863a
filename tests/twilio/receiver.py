"""A Twilio webhook receiver, as an application written for Twilio has one: every request's
X-Twilio-Signature is checked with the twilio library's own RequestValidator, and each request
is written as one JSON line to LOG. An incoming message (a POST to /incoming) is answered with
TwiML that sends a reply; status callbacks (/status) get 204.

    python receiver.py PORT AUTH_TOKEN LOG
"""

import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

PORT, TOKEN, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]
validator = RequestValidator(TOKEN)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8")
        params = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        url = f"http://127.0.0.1:{PORT}{self.path}"
        valid = validator.validate(url, params, self.headers.get("X-Twilio-Signature", ""))
        with open(LOG, "a") as f:
            f.write(json.dumps({"path": self.path, "params": params, "valid": valid}) + "\n")
        if not valid:
            self.send_response(403)
            self.end_headers()
            return
        if self.path.startswith("/incoming"):
            r = MessagingResponse()
            r.message(f"Got it: {params.get('Body', '')}")
            out = str(r).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
        else:
            self.send_response(204)
            self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
server.serve_forever()
