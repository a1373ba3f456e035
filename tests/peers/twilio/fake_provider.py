#!/usr/bin/env python3
"""Scripted fake of Twilio's REST API 2010-04-01 (Messages, Calls) for Rappel's tests.

    python fake_provider.py --port P --auth-token T [--host 127.0.0.1] [--public-url URL]

Meant to sit behind `prism proxy --errors` (which checks every request and response against
Twilio's OpenAPI description), so every JSON it answers with is a complete resource per the
spec. State is kept per AccountSid (the `/2010-04-01/Accounts/{AccountSid}/...` path segment):
tests that use different account SIDs never see each other's messages, calls or callbacks.

Scripts, chosen by the LAST 4 DIGITS of the `To` number (`whatsapp:` prefix stripped):

  messages (POST Messages.json)
    0006  201, then status callback `undelivered` with ErrorCode 30006 (landline)
    1211  400 code 21211 (invalid To), nothing created
    1610  400 code 21610 (recipient opted out), nothing created
    1614  400 code 21614 (not a mobile number), nothing created
    3016  201, then status callback `failed` with ErrorCode 63016 (WhatsApp 24 h window)
    0429  the first 3 requests (messages and calls) for that number in that account: 429,
          Retry-After: 1, code 20429; then as "other"
    0500  the message is created (visible in GET lists, callbacks sent) but the answer is 500
    0408  the message is created, the answer (201) comes only after 10 s (its lifecycle does
          not wait for that late answer)
    other 201, callbacks `sent` then `delivered`
  A message sent with `ContentSid` and no `Body` (WhatsApp template) gets the rendered body
  "Template <ContentSid>: " + the ContentVariables values joined by " | ", in key order
  (numeric keys numerically: 1, 2, ..., 10).
  calls (POST Calls.json) — 1211, 0429, 0500 and 0408 behave as for messages, then:
    0011  human, keypad digits 1, 1        0122  human, digits 1, 2, 2
    0013  human, digits 1, 3               0062  answering machine (no digits)
    0099  no-answer                         0098  busy
    other human, digits 1, 1

Control API (not Twilio; call the fake's own port, not Prism):
  GET  /_fake/health
  GET  /_fake/{AccountSid}/requests              every API request: method, path, query, form,
                                                 status, received_at / answered_at (unix seconds,
                                                 float; answered_at null while in flight)
  GET  /_fake/{AccountSid}/twiml                 every TwiML fetch / Gather post
  GET  /_fake/{AccountSid}/callbacks             every webhook sent and Rappel's status
  GET  /_fake/{AccountSid}/messages              stored message resources
  GET  /_fake/{AccountSid}/calls                 stored call resources
  GET  /_fake/{AccountSid}/pending               {"pending": n} background tasks still running
                                                 (lifecycles, queued time and delayed callbacks
                                                 included) + POSTs still waiting out answer_delay_ms
  GET  /_fake/{AccountSid}/config                the account's timing config (below)
  POST /_fake/{AccountSid}/config                JSON, any subset of the keys below; answers with
                                                 the resulting config (400 on an unknown key or
                                                 a bad value, nothing changed then)
  POST /_fake/{AccountSid}/inbound               JSON {url, from, to, body, channel, ...}
  POST /_fake/{AccountSid}/replay-last-callback  re-sends the last webhook as it was

Timing config, per account (defaults = the behaviour without config; each message or call
uses the config as it was when it was created):
  answer_delay_ms [min, max]      [0, 0]  every POST Messages.json / Calls.json (errors
                                          included) is answered after a uniform random wait in
                                          [min, max] ms; the resource exists (GET, lists) from
                                          the moment the request is received
  callbacks_before_answer bool    false   false: a message's or call's lifecycle (status
                                          changes, callbacks, TwiML fetches) starts once the
                                          fake has written its answer to the POST; true: it
                                          starts at creation, so callbacks may reach the
                                          client before the (delayed) answer
  queued_seconds number           0       a created message stays `queued` with date_sent
                                          null, a call `queued` (start_time null, no callback)
                                          for that long, counted from creation; meanwhile the
                                          DateSent / StartTime list filters leave it out, as
                                          Twilio does (unfiltered lists show it)
  status_delay_ms [min, max]|null null    null: one 50 ms pause before the first status
                                          change; [min, max]: a uniform random pause before
                                          every status change (each callback), so callbacks of
                                          different messages may interleave out of order
  callback_duplicates bool        false   every status callback (message, call, async AMD) is
                                          sent twice in a row, same signature and
                                          I-Twilio-Idempotency-Token; /callbacks marks the
                                          second `"duplicate": true`
A single number is accepted for a [min, max] range (n means [n, n]).

List pages (GET Messages.json / Calls.json: filters To, From, DateSent[<>], StartTime[<>], Status,
PageSize, Page) give first_page_uri / uri / next_page_uri as ABSOLUTE URLs on --public-url: real
Twilio sends relative ones, but the spec says `format: uri` and Prism rejects relative URIs. A
client should resolve next_page_uri as a URL reference (absolute or relative both work).

Webhooks carry `X-Twilio-Signature` computed with the twilio SDK's RequestValidator over the URL
exactly as given by the client (query string included): it is POSTed to that very URL.
/callbacks entries carry `sent_at` (unix seconds, float). One log line per request on stderr,
without numbers or bodies.
"""
import argparse
import base64
import email.utils
import json
import random
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from twilio.request_validator import RequestValidator

API = "2010-04-01"
ACCOUNT_RE = r"AC[0-9a-fA-F]{32}"
PATH_RE = re.compile(r"^/2010-04-01/Accounts/(" + ACCOUNT_RE + r")(/.*)?$")
CONTROL_RE = re.compile(r"^/_fake/(" + ACCOUNT_RE + r")/([a-z-]+)$")
CALLBACK_DELAY = 0.05
SLOW_ANSWER_SECONDS = 10.0
RATE_LIMITED_TRIES = 3
MAX_TWIML_ROUNDS = 10
HTTP_TIMEOUT = 10.0
ANSWER_WAIT_LIMIT = 120.0  # a lifecycle waiting for its POST's answer never waits longer

DEFAULT_CONFIG = {
    "answer_delay_ms": [0, 0],
    "callbacks_before_answer": False,
    "queued_seconds": 0,
    "status_delay_ms": None,  # None: CALLBACK_DELAY once, before the first status change
    "callback_duplicates": False,
}

MESSAGE_SCRIPTS = {
    "0006": ("undelivered", 30006, "Landline or unreachable carrier"),
    "3016": ("failed", 63016, "Failed to send freeform message because you are outside the allowed window."),
}
CALL_DIGITS = {"0011": ["1", "1"], "0122": ["1", "2", "2"], "0013": ["1", "3"]}


def twilio_error(code, message, status):
    return {
        "code": code,
        "message": message,
        "more_info": "https://www.twilio.com/docs/errors/%d" % code,
        "status": status,
    }


REJECTIONS = {
    "1211": (400, 21211, "The 'To' number is not a valid phone number."),
    "1610": (400, 21610, "Attempt to send to unsubscribed recipient"),
    "1614": (400, 21614, "The 'To' number is not a valid mobile number."),
}


def rfc2822(ts):
    return email.utils.formatdate(ts, usegmt=False).replace("-0000", "+0000")


def utc_date(ts):
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def new_sid(prefix):
    return prefix + secrets.token_hex(16)


def last4(number):
    number = (number or "").strip()
    if number.lower().startswith("whatsapp:"):
        number = number[len("whatsapp:"):]
    digits = re.sub(r"\D", "", number)
    return digits[-4:]


def number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_config(data, current):
    """The config after applying the JSON object `data` to `current`; ValueError if invalid."""
    if not isinstance(data, dict):
        raise ValueError("a JSON object is expected")
    out = dict(current)
    for key, value in data.items():
        if key not in DEFAULT_CONFIG:
            raise ValueError("unknown key %s (known: %s)" % (key, ", ".join(DEFAULT_CONFIG)))
        if key in ("answer_delay_ms", "status_delay_ms"):
            if value is None and key == "status_delay_ms":
                out[key] = None
                continue
            if number(value):
                value = [value, value]
            if not (isinstance(value, list) and len(value) == 2 and all(map(number, value))
                    and 0 <= value[0] <= value[1]):
                raise ValueError("%s: [min, max] with 0 <= min <= max expected" % key)
            out[key] = list(value)
        elif key == "queued_seconds":
            if not number(value) or value < 0:
                raise ValueError("queued_seconds: a number >= 0 expected")
            out[key] = value
        else:
            if not isinstance(value, bool):
                raise ValueError("%s: true or false expected" % key)
            out[key] = value
    return out


def template_body(content_sid, raw_variables):
    """What the fake shows as the body of a WhatsApp template message."""
    try:
        variables = json.loads(raw_variables) if raw_variables else {}
    except ValueError:
        variables = None
    if isinstance(variables, dict):
        def order(key):
            return (0, int(key), "") if key.isascii() and key.isdigit() else (1, 0, key)
        keys = sorted(variables, key=order)
        values = [variables[k] if isinstance(variables[k], str) else json.dumps(variables[k])
                  for k in keys]
    else:
        values = [raw_variables]
    return "Template %s: %s" % (content_sid, " | ".join(values))


def first(form, key, default=None):
    values = form.get(key)
    return values[0] if values else default


def truthy(value):
    return str(value).strip().lower() in ("true", "1", "yes")


GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€\x0c"
)
GSM7_EXT = set("^{}\\[~]|€\x0c")


def segments(body):
    if not body:
        return 1
    if all(c in GSM7 for c in body):
        units = sum(2 if c in GSM7_EXT else 1 for c in body)
        return 1 if units <= 160 else -(-units // 153)
    units = sum(2 if ord(c) > 0xFFFF else 1 for c in body)
    return 1 if units <= 70 else -(-units // 67)


class MultiParams(dict):
    """dict of lists that twilio's RequestValidator reads through getall()."""

    def getall(self, name):
        return self[name]


def flat(params):
    """Webhook params as (key, value) pairs, lists expanded."""
    pairs = []
    for key, value in params.items():
        if isinstance(value, list):
            pairs.extend((key, v) for v in value)
        else:
            pairs.append((key, value))
    return pairs


class Account:
    def __init__(self, sid):
        self.sid = sid
        self.lock = threading.Lock()
        self.messages = []  # resource dicts, creation order
        self.calls = []
        self.requests = []
        self.twiml = []
        self.callbacks = []
        self.rate_limited = {}  # To number (no whatsapp:) -> 429s answered
        self.last_callback = None  # (method, url, params, headers, kind)
        self.pending = 0
        self.config = parse_config({}, DEFAULT_CONFIG)

    def settings(self):
        """A snapshot of the timing config (each message / call keeps the one of its creation)."""
        with self.lock:
            return json.loads(json.dumps(self.config))


class Fake:
    def __init__(self, auth_token, public_url):
        self.auth_token = auth_token
        self.public_url = public_url.rstrip("/")
        self.validator = RequestValidator(auth_token)
        self.accounts = {}
        self.lock = threading.Lock()

    def account(self, sid):
        with self.lock:
            acc = self.accounts.get(sid)
            if acc is None:
                acc = self.accounts[sid] = Account(sid)
            return acc

    # ---- webhooks -------------------------------------------------------------------------

    def sign(self, url, params):
        pairs = MultiParams()
        for key, value in flat(params):
            pairs.setdefault(key, []).append(value)
        return self.validator.compute_signature(url, pairs)

    def webhook_headers(self, url, params, method):
        """Signature (over the URL exactly as given, query included), user agent, fresh
        idempotency token."""
        if method == "GET":
            sep = "&" if "?" in url else "?"
            full = url + sep + urllib.parse.urlencode(flat(params)) if params else url
            headers = {"X-Twilio-Signature": self.sign(full, {})}
        else:
            headers = {"X-Twilio-Signature": self.sign(url, params)}
        headers["User-Agent"] = "TwilioProxy/1.1"
        headers["I-Twilio-Idempotency-Token"] = secrets.token_hex(16)
        return headers

    def send_webhook(self, acc, kind, url, params, method="POST", record=True, headers=None,
                     replay=False, duplicate=False):
        """Sends a signed webhook; returns (status, body text, content type). Records it."""
        method = (method or "POST").upper()
        if headers is None:
            headers = self.webhook_headers(url, params, method)
        sent_at = time.time()
        if method == "GET":
            sep = "&" if "?" in url else "?"
            target = url + sep + urllib.parse.urlencode(flat(params)) if params else url
            data = None
        else:
            target = url
            data = urllib.parse.urlencode(flat(params)).encode("utf-8")
            headers = dict(headers)
            headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        req = urllib.request.Request(target, data=data, method=method, headers=headers)
        status, body, ctype, error = None, "", "", None
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
                status = resp.status
                ctype = resp.headers.get("Content-Type", "")
                body = resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            status = e.code
            ctype = e.headers.get("Content-Type", "") if e.headers else ""
            try:
                body = e.read().decode("utf-8", "replace")
            except Exception:  # noqa: BLE001 - body of an error answer is best effort
                body = ""
        except Exception as e:  # noqa: BLE001 - connection refused, timeout...
            error = "%s: %s" % (type(e).__name__, e)
        log("webhook %s %s -> %s" % (kind, method, status if status is not None else error))
        if record:
            entry = {"kind": kind, "url": url, "method": method, "params": params,
                     "signature": headers.get("X-Twilio-Signature"), "status": status,
                     "sent_at": sent_at}
            if error:
                entry["error"] = error
            if replay:
                entry["replay"] = True
            if duplicate:
                entry["duplicate"] = True
            with acc.lock:
                acc.callbacks.append(entry)
                acc.last_callback = (method, url, params, headers, kind)
        return status, body, ctype, error

    def background(self, acc, fn, *args):
        with acc.lock:
            acc.pending += 1

        def run():
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001 - keep the server alive, say what broke
                log("background task failed: %s: %s" % (type(e).__name__, e))
            finally:
                with acc.lock:
                    acc.pending -= 1

        threading.Thread(target=run, daemon=True).start()

    def status_callback(self, acc, cfg, kind, url, params, method):
        """A status webhook, sent twice (same headers) when callback_duplicates is on."""
        method = (method or "POST").upper()
        headers = self.webhook_headers(url, params, method)
        self.send_webhook(acc, kind, url, params, method, headers=headers)
        if cfg["callback_duplicates"]:
            self.send_webhook(acc, kind, url, params, method, headers=headers, duplicate=True)

    # ---- timing (per-account config) --------------------------------------------------------

    def answer_delay(self, acc, cfg):
        """Sleeps answer_delay_ms before a POST is answered; counted in `pending`."""
        low, high = cfg["answer_delay_ms"]
        if high <= 0:
            return
        with acc.lock:
            acc.pending += 1
        try:
            time.sleep(random.uniform(low, high) / 1000.0)
        finally:
            with acc.lock:
                acc.pending -= 1

    def wait_turn(self, item, cfg, answered):
        """Start of a lifecycle: the POST's answer (unless callbacks_before_answer), then what
        is left of queued_seconds since creation."""
        if not cfg["callbacks_before_answer"]:
            answered.wait(ANSWER_WAIT_LIMIT)
        left = item["_created"] + cfg["queued_seconds"] - time.time()
        if left > 0:
            time.sleep(left)

    def status_pause(self, cfg, first_change):
        """Before a status change: CALLBACK_DELAY before the first one (default), or a random
        status_delay_ms before each."""
        delay = cfg["status_delay_ms"]
        if delay is None:
            if first_change:
                time.sleep(CALLBACK_DELAY)
        else:
            time.sleep(random.uniform(delay[0], delay[1]) / 1000.0)

    # ---- messages -------------------------------------------------------------------------

    def message_resource(self, acc, form, now, queued=False):
        sid = new_sid("SM")
        body = first(form, "Body", "")
        if not body and first(form, "ContentSid"):
            body = template_body(first(form, "ContentSid"), first(form, "ContentVariables"))
        media = form.get("MediaUrl", [])
        base = "/%s/Accounts/%s/Messages/%s" % (API, acc.sid, sid)
        return {
            "account_sid": acc.sid,
            "api_version": API,
            "body": body,
            "date_created": rfc2822(now),
            "date_sent": None if queued else rfc2822(now),
            "date_updated": rfc2822(now),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": first(form, "From"),
            "messaging_service_sid": first(form, "MessagingServiceSid"),
            "num_media": str(len(media)),
            "num_segments": str(segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": base + "/Media.json"},
            "to": first(form, "To"),
            "uri": base + ".json",
            "_created": now,
            "_sent": None if queued else now,  # what the DateSent filters look at
        }

    def create_message(self, acc, form, answered):
        cfg = acc.settings()
        script, result = self.new_message(acc, form, cfg, answered)
        self.answer_delay(acc, cfg)
        return self.late_script(script, result, answered)

    def new_message(self, acc, form, cfg, answered):
        """(script, answer); script is None when nothing was created."""
        to = first(form, "To")
        if not to:
            return None, (400, twilio_error(21604, "A 'To' phone number is required.", 400), {})
        if not first(form, "From") and not first(form, "MessagingServiceSid"):
            return None, (400, twilio_error(21603, "A 'From' phone number is required.", 400), {})
        if not first(form, "Body") and not form.get("MediaUrl") and not first(form, "ContentSid"):
            return None, (400, twilio_error(21602, "Message body is required.", 400), {})
        script = last4(to)
        early = self.early_script(acc, script, to)
        if early:
            return None, early
        now = time.time()
        msg = self.message_resource(acc, form, now, queued=cfg["queued_seconds"] > 0)
        with acc.lock:
            acc.messages.append(msg)
        self.background(acc, self.message_lifecycle, acc, msg, form, script, cfg, answered)
        return script, (201, public(msg), {})

    def early_script(self, acc, script, to, call=False):
        if script in REJECTIONS and not (call and script != "1211"):  # 21610/21614: messaging only
            status, code, text = REJECTIONS[script]
            return status, twilio_error(code, text, status), {}
        if script == "0429":
            number = re.sub(r"^whatsapp:", "", to.strip(), flags=re.I)
            with acc.lock:
                n = acc.rate_limited.get(number, 0)
                if n < RATE_LIMITED_TRIES:
                    acc.rate_limited[number] = n + 1
                    return (429, twilio_error(20429, "Too Many Requests", 429), {"Retry-After": "1"})
        return None

    def late_script(self, script, result, answered):
        if script == "0500":
            return 500, twilio_error(20500, "Internal Server Error", 500), {}
        if script == "0408":
            answered.set()  # the lifecycle goes on while the answer is late
            time.sleep(SLOW_ANSWER_SECONDS)
        return result

    def message_lifecycle(self, acc, msg, form, script, cfg, answered):
        final, code, text = MESSAGE_SCRIPTS.get(script, ("delivered", None, None))
        url = first(form, "StatusCallback")
        method = first(form, "StatusCallbackMethod", "POST")
        self.wait_turn(msg, cfg, answered)
        steps = ["sent", final] if final != "failed" else [final]
        for i, status in enumerate(steps):
            self.status_pause(cfg, i == 0)
            now = time.time()
            with acc.lock:
                msg["status"] = status
                msg["date_updated"] = rfc2822(now)
                if msg["_sent"] is None:  # leaves the queue
                    msg["_sent"] = now
                    msg["date_sent"] = rfc2822(now)
                if status in ("undelivered", "failed"):
                    msg["error_code"] = code
                    msg["error_message"] = text
            if not url:
                continue
            params = {
                "AccountSid": acc.sid,
                "ApiVersion": API,
                "From": msg["from"] or "",
                "MessageSid": msg["sid"],
                "MessageStatus": status,
                "SmsSid": msg["sid"],
                "SmsStatus": status,
                "To": msg["to"],
            }
            if msg["messaging_service_sid"]:
                params["MessagingServiceSid"] = msg["messaging_service_sid"]
            if status in ("undelivered", "failed") and code:
                params["ErrorCode"] = str(code)
            self.status_callback(acc, cfg, "message-status", url, params, method)

    # ---- calls ----------------------------------------------------------------------------

    def call_resource(self, acc, form, now, queued=False):
        sid = new_sid("CA")
        base = "/%s/Accounts/%s/Calls/%s" % (API, acc.sid, sid)
        subs = ["notifications", "recordings", "payments", "events", "siprec", "streams",
                "transcriptions", "user_defined_message_subscriptions", "user_defined_messages"]
        names = {"user_defined_message_subscriptions": "UserDefinedMessageSubscriptions",
                 "user_defined_messages": "UserDefinedMessages"}
        return {
            "account_sid": acc.sid,
            "answered_by": None,
            "api_version": API,
            "caller_name": None,
            "date_created": rfc2822(now),
            "date_updated": rfc2822(now),
            "direction": "outbound-api",
            "duration": None,
            "end_time": None,
            "forwarded_from": None,
            "from": first(form, "From"),
            "from_formatted": first(form, "From"),
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": sid,
            "start_time": None,
            "status": "queued",
            "subresource_uris": {
                k: "%s/%s.json" % (base, names.get(k, k.capitalize())) for k in subs
            },
            "to": first(form, "To"),
            "to_formatted": first(form, "To"),
            "trunk_sid": None,
            "uri": base + ".json",
            "_created": now,
            # what the StartTime filters look at: dialing time (start_time itself stays null
            # until the call is answered, as the fake always did)
            "_start": None if queued else now,
        }

    def create_call(self, acc, form, answered):
        cfg = acc.settings()
        script, result = self.new_call(acc, form, cfg, answered)
        self.answer_delay(acc, cfg)
        return self.late_script(script, result, answered)

    def new_call(self, acc, form, cfg, answered):
        """(script, answer); script is None when nothing was created."""
        to = first(form, "To")
        if not to:
            return None, (400, twilio_error(21201, "No 'To' number is specified", 400), {})
        if not first(form, "From"):
            return None, (400, twilio_error(21213, "No 'From' number is specified", 400), {})
        if not (first(form, "Url") or first(form, "Twiml") or first(form, "ApplicationSid")):
            return None, (400, twilio_error(21205, "Url parameter is required.", 400), {})
        script = last4(to)
        early = self.early_script(acc, script, to, call=True)
        if early:
            return None, early
        now = time.time()
        call = self.call_resource(acc, form, now, queued=cfg["queued_seconds"] > 0)
        with acc.lock:
            acc.calls.append(call)
        self.background(acc, self.call_lifecycle, acc, call, form, script, cfg, answered)
        return script, (201, public(call), {})

    def call_params(self, acc, call, status, answered_by=None):
        params = {
            "AccountSid": acc.sid,
            "ApiVersion": API,
            "CallSid": call["sid"],
            "CallStatus": status,
            "Called": call["to"],
            "Caller": call["from"],
            "Direction": "outbound-api",
            "From": call["from"],
            "To": call["to"],
        }
        if answered_by:
            params["AnsweredBy"] = answered_by
        return params

    def call_lifecycle(self, acc, call, form, script, cfg, answered):
        events = []
        for value in form.get("StatusCallbackEvent", []):
            events.extend(value.replace(",", " ").split())
        status_url = first(form, "StatusCallback")
        if status_url and not events:
            events = ["completed"]
        status_method = first(form, "StatusCallbackMethod", "POST")
        amd = bool(first(form, "MachineDetection"))
        async_amd = amd and truthy(first(form, "AsyncAmd", "false"))
        seq = [0]

        def status_event(event, call_status, extra=None):
            if not status_url or event not in events:
                return
            params = self.call_params(acc, call, call_status,
                                      call["answered_by"] if amd and event != "initiated" and event != "ringing" else None)
            params["CallbackSource"] = "call-progress-events"
            params["SequenceNumber"] = str(seq[0])
            params["Timestamp"] = rfc2822(time.time())
            seq[0] += 1
            params.update(extra or {})
            self.status_callback(acc, cfg, "call-status", status_url, params, status_method)

        def set_status(status, **fields):
            with acc.lock:
                call["status"] = status
                call["date_updated"] = rfc2822(time.time())
                call.update(fields)

        self.wait_turn(call, cfg, answered)
        with acc.lock:
            if call["_start"] is None:  # leaves the queue: dialing starts
                call["_start"] = time.time()
        self.status_pause(cfg, True)
        status_event("initiated", "initiated")
        self.status_pause(cfg, False)
        set_status("ringing")
        status_event("ringing", "ringing")
        self.status_pause(cfg, False)
        started = time.time()
        if script in ("0099", "0098"):
            final = "no-answer" if script == "0099" else "busy"
            set_status(final, duration="0", end_time=rfc2822(time.time()))
            status_event("completed", final, {"CallDuration": "0", "Duration": "0"})
            return
        machine = script == "0062"
        answered_by = ("machine_end_beep" if machine else "human") if amd else None
        set_status("in-progress", start_time=rfc2822(started), answered_by=answered_by)
        if async_amd:
            amd_url = first(form, "AsyncAmdStatusCallback")
            if amd_url:
                params = {"AccountSid": acc.sid, "AnsweredBy": answered_by, "CallSid": call["sid"],
                          "MachineDetectionDuration": "2340"}
                self.status_pause(cfg, False)
                self.status_callback(acc, cfg, "amd", amd_url, params,
                                     first(form, "AsyncAmdStatusCallbackMethod", "POST"))
        status_event("answered", "in-progress")
        digits = [] if machine else list(CALL_DIGITS.get(script, ["1", "1"]))
        rounds = self.dialog(acc, call, form, answered_by, digits)
        duration = str(3 + 4 * rounds)
        self.status_pause(cfg, False)
        set_status("completed", duration=duration, end_time=rfc2822(time.time()))
        status_event("completed", "completed", {"CallDuration": duration, "Duration": "1"})

    def dialog(self, acc, call, form, answered_by, digits):
        """Plays the callee: fetches TwiML, answers each <Gather> with the next digit."""
        base_params = self.call_params(acc, call, "in-progress", answered_by)
        url = first(form, "Url")
        method = first(form, "Method", "POST")
        inline = first(form, "Twiml")
        params = dict(base_params)
        rounds = 0
        while rounds < MAX_TWIML_ROUNDS:
            redirect = call.pop("_redirect", None)
            if redirect:
                url, method, inline = redirect
                params = dict(base_params)
            if inline is not None:
                body, status, ctype = inline, None, "inline"
                self.record_twiml(acc, url, params, status, ctype, body, inline=True)
                inline = None
            elif url:
                status, body, ctype, error = self.send_webhook(acc, "twiml", url, params, method,
                                                               record=False)
                self.record_twiml(acc, url, params, status, ctype, body, error=error)
                if status != 200 or not is_xml(ctype):
                    break
            else:
                break
            rounds += 1
            try:
                root = ET.fromstring(body)
            except ET.ParseError:
                break
            nxt = next_step(root)
            if nxt is None:
                break
            kind, target, target_method = nxt
            current = url
            if kind == "gather":
                if not digits:
                    break
                params = dict(base_params)
                params["Digits"] = digits.pop(0)
                params["FinishedOnKey"] = ""
                params["msg"] = "Gather End"
            else:  # redirect
                params = dict(base_params)
            url = urllib.parse.urljoin(current or "", target) if target else current
            method = target_method or "POST"
            if not url:
                break
        return rounds

    def record_twiml(self, acc, url, params, status, ctype, body, inline=False, error=None):
        entry = {"url": url, "params": params, "status": status, "content_type": ctype,
                 "body": body}
        if inline:
            entry["inline"] = True
        if error:
            entry["error"] = error
        with acc.lock:
            acc.twiml.append(entry)

    def update_call(self, acc, call_sid, form):
        with acc.lock:
            call = next((c for c in acc.calls if c["sid"] == call_sid), None)
        if call is None:
            return 404, not_found(), {}
        status = first(form, "Status")
        with acc.lock:
            if status in ("canceled", "completed"):
                call["status"] = status if call["status"] in ("queued", "ringing") else "completed"
            if first(form, "Url") or first(form, "Twiml"):
                call["_redirect"] = (first(form, "Url"), first(form, "Method", "POST"),
                                     first(form, "Twiml"))
            call["date_updated"] = rfc2822(time.time())
        return 200, public(call), {}

    # ---- lists ----------------------------------------------------------------------------

    def list_page(self, acc, key, items, query, path):
        try:
            page_size = max(1, min(1000, int(first(query, "PageSize", "50"))))
        except ValueError:
            page_size = 50
        try:
            page = max(0, int(first(query, "Page", "0")))
        except ValueError:
            page = 0
        chunk = items[page * page_size:(page + 1) * page_size]
        base_q = [(k, v) for k, vs in query.items() for v in vs
                  if k not in ("Page", "PageSize", "PageToken")]

        def uri(p):
            # Twilio answers with relative URIs, but the spec says `format: uri`, which Prism
            # enforces (absolute only): give them against the public base URL.
            q = base_q + [("PageSize", str(page_size)), ("Page", str(p))]
            return self.public_url + path + "?" + urllib.parse.urlencode(q)

        more = len(items) > (page + 1) * page_size
        return {
            key: [public(x) for x in chunk],
            "end": page * page_size + max(len(chunk) - 1, 0),
            "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1) if more else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
            "start": page * page_size,
            "uri": uri(page),
        }

    def filter_by_date(self, items, query, name, field):
        exact = first(query, name)
        le = first(query, name + "<")
        ge = first(query, name + ">")
        if not (exact or le or ge):
            return items
        out = []
        for item in items:
            ts = item.get(field, item["_created"])
            if ts is None:  # still queued: date_sent / start_time null, no filter matches
                continue
            day = utc_date(ts)
            if exact and day != exact[:10]:
                continue
            if le and day > le[:10]:
                continue
            if ge and day < ge[:10]:
                continue
            out.append(item)
        return out

    def list_messages(self, acc, query, path):
        with acc.lock:
            items = list(acc.messages)
        for key, field in (("To", "to"), ("From", "from")):
            want = first(query, key)
            if want:
                items = [m for m in items if m[field] == want]
        items = self.filter_by_date(items, query, "DateSent", "_sent")
        items.reverse()  # newest first, as Twilio does
        return 200, self.list_page(acc, "messages", items, query, path), {}

    def list_calls(self, acc, query, path):
        with acc.lock:
            items = list(acc.calls)
        for key, field in (("To", "to"), ("From", "from"), ("Status", "status")):
            want = first(query, key)
            if want:
                items = [c for c in items if c[field] == want]
        items = self.filter_by_date(items, query, "StartTime", "_start")
        items.reverse()
        return 200, self.list_page(acc, "calls", items, query, path), {}

    # ---- inbound --------------------------------------------------------------------------

    def inbound(self, acc, data):
        url = data.get("url")
        if not url:
            return 400, {"error": "url is required"}
        channel = data.get("channel", "sms")
        frm, to = data.get("from", ""), data.get("to", "")
        if channel == "whatsapp":
            frm = frm if frm.startswith("whatsapp:") else "whatsapp:" + frm
            to = to if to.startswith("whatsapp:") else "whatsapp:" + to
        sid = new_sid("SM")
        body = data.get("body", "")
        params = {
            "AccountSid": acc.sid,
            "ApiVersion": API,
            "Body": body,
            "From": frm,
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": str(segments(body)),
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": to,
        }
        if data.get("messaging_service_sid"):
            params["MessagingServiceSid"] = data["messaging_service_sid"]
        if channel == "whatsapp":
            params["ProfileName"] = data.get("profile_name", "Patient")
            params["WaId"] = re.sub(r"\D", "", frm)
            params["MessageType"] = "button" if data.get("button_payload") else "text"
            if data.get("button_payload") is not None:
                params["ButtonPayload"] = data["button_payload"]
            if data.get("button_text") is not None:
                params["ButtonText"] = data["button_text"]
            if data.get("original_replied_message_sid"):
                params["OriginalRepliedMessageSid"] = data["original_replied_message_sid"]
        now = time.time()
        msg = {
            "account_sid": acc.sid, "api_version": API, "body": body,
            "date_created": rfc2822(now), "date_sent": rfc2822(now), "date_updated": rfc2822(now),
            "direction": "inbound", "error_code": None, "error_message": None, "from": frm,
            "messaging_service_sid": data.get("messaging_service_sid"), "num_media": "0",
            "num_segments": params["NumSegments"], "price": None, "price_unit": "USD", "sid": sid,
            "status": "received",
            "subresource_uris": {"media": "/%s/Accounts/%s/Messages/%s/Media.json" % (API, acc.sid, sid)},
            "to": to, "uri": "/%s/Accounts/%s/Messages/%s.json" % (API, acc.sid, sid), "_created": now,
        }
        with acc.lock:
            acc.messages.append(msg)
        status, text, _, error = self.send_webhook(acc, "inbound", url, params, "POST")
        out = {"status": status, "message_sid": sid, "body": text}
        if error:
            out["error"] = error
        return 200, out

    def replay(self, acc):
        with acc.lock:
            last = acc.last_callback
        if last is None:
            return 404, {"error": "no callback sent yet for this account"}
        method, url, params, headers, kind = last
        status, text, _, error = self.send_webhook(acc, kind, url, params, method, headers=headers,
                                                   replay=True)
        out = {"status": status, "kind": kind, "url": url, "body": text}
        if error:
            out["error"] = error
        return 200, out


def public(resource):
    return {k: v for k, v in resource.items() if not k.startswith("_")}


def is_xml(ctype):
    ctype = (ctype or "").split(";")[0].strip().lower()
    return ctype in ("text/xml", "application/xml")


def local(tag):
    return tag.rsplit("}", 1)[-1]


def next_step(root):
    """What a caller's phone does after this TwiML: ('gather', action, method),
    ('redirect', url, method) or None (hang up / end of document)."""
    if local(root.tag) != "Response":
        return None
    for el in root:
        name = local(el.tag)
        if name == "Hangup" or name == "Reject":
            return None
        if name == "Gather":
            return ("gather", el.get("action"), el.get("method"))
        if name == "Redirect":
            return ("redirect", (el.text or "").strip(), el.get("method"))
    return None


def not_found():
    return twilio_error(20404, "The requested resource was not found", 404)


def log(line):
    sys.stderr.write("%s fake-twilio %s\n" % (time.strftime("%H:%M:%S"), line))
    sys.stderr.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms stalls
    server_version = "FakeTwilio/1.0"
    fake = None  # set by main

    def log_message(self, fmt, *args):  # default access log would print queries (numbers)
        pass

    def reply(self, status, payload, headers=None, ctype="application/json"):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.status_sent = status

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def authorized(self, account_sid):
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except Exception:  # noqa: BLE001 - malformed header is just unauthorized
            return False
        return user == account_sid and secrets.compare_digest(password, self.fake.auth_token)

    def handle_any(self):
        self.status_sent = None
        self.received_at = time.time()
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        raw = self.read_body()
        try:
            if path.startswith("/_fake/"):
                self.control(path, raw)
            else:
                self.api(path, parsed.query, raw)
        except Exception as e:  # noqa: BLE001 - never leave the client hanging
            log("error handling %s %s: %s: %s" % (self.command, path, type(e).__name__, e))
            if self.status_sent is None:
                self.reply(500, twilio_error(20500, "Internal Server Error", 500))
        log("%s %s -> %s" % (self.command, path, self.status_sent))

    do_GET = do_POST = do_DELETE = do_PUT = handle_any

    def api(self, path, query_string, raw):
        m = PATH_RE.match(path)
        if not m:
            return self.reply(404, not_found())
        acc = self.fake.account(m.group(1))
        rest = m.group(2) or ""
        query = urllib.parse.parse_qs(query_string, keep_blank_values=True)
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        form = {}
        if raw and ctype == "application/x-www-form-urlencoded":
            form = urllib.parse.parse_qs(raw.decode("utf-8"), keep_blank_values=True)
        record = {"method": self.command, "path": path, "query": query, "form": form,
                  "status": None, "time": time.time(), "received_at": self.received_at,
                  "answered_at": None}
        with acc.lock:
            acc.requests.append(record)
        answered = threading.Event()  # set once the answer is written: lifecycles may go on
        try:
            if not self.authorized(acc.sid):
                status, payload, headers = 401, twilio_error(20003, "Authenticate", 401), {
                    "WWW-Authenticate": 'Basic realm="Twilio API"'}
            else:
                status, payload, headers = self.route(acc, self.command, rest, form, query, path,
                                                      answered)
            with acc.lock:  # before writing: a client that got the answer sees both set
                record["status"] = status
                record["answered_at"] = time.time()
            self.reply(status, payload, headers)
        finally:
            with acc.lock:
                if record["answered_at"] is None:
                    record["answered_at"] = time.time()
            answered.set()

    def route(self, acc, method, rest, form, query, path, answered):
        fake = self.fake
        if rest == "/Messages.json":
            if method == "POST":
                return fake.create_message(acc, form, answered)
            if method == "GET":
                return fake.list_messages(acc, query, path)
        elif rest == "/Calls.json":
            if method == "POST":
                return fake.create_call(acc, form, answered)
            if method == "GET":
                return fake.list_calls(acc, query, path)
        m = re.match(r"^/(Messages|Calls)/((?:SM|MM|CA)[0-9a-fA-F]{32})\.json$", rest)
        if m:
            items = acc.messages if m.group(1) == "Messages" else acc.calls
            with acc.lock:
                item = next((x for x in items if x["sid"] == m.group(2)), None)
            if method == "GET":
                return (200, public(item), {}) if item else (404, not_found(), {})
            if method == "POST" and m.group(1) == "Calls":
                return fake.update_call(acc, m.group(2), form)
        return 404, not_found(), {}

    def control(self, path, raw):
        if path == "/_fake/health":
            return self.reply(200, {"status": "ok"})
        m = CONTROL_RE.match(path)
        if not m:
            return self.reply(404, {"error": "unknown control path"})
        acc = self.fake.account(m.group(1))
        what = m.group(2)
        if self.command == "GET":
            with acc.lock:
                lists = {
                    "requests": acc.requests, "twiml": acc.twiml, "callbacks": acc.callbacks,
                    "messages": [public(x) for x in acc.messages],
                    "calls": [public(x) for x in acc.calls],
                }
                if what in lists:
                    return self.reply(200, json.loads(json.dumps(lists[what])))
                if what == "pending":
                    return self.reply(200, {"pending": acc.pending})
                if what == "config":
                    return self.reply(200, json.loads(json.dumps(acc.config)))
        elif self.command == "POST":
            if what == "config":
                try:
                    data = json.loads(raw.decode("utf-8") or "{}")
                    with acc.lock:
                        acc.config = parse_config(data, acc.config)
                        config = json.loads(json.dumps(acc.config))
                except ValueError as e:
                    return self.reply(400, {"error": "config: %s" % e})
                return self.reply(200, config)
            if what == "inbound":
                try:
                    data = json.loads(raw.decode("utf-8") or "{}")
                except ValueError:
                    return self.reply(400, {"error": "JSON body expected"})
                status, payload = self.fake.inbound(acc, data)
                return self.reply(status, payload)
            if what == "replay-last-callback":
                status, payload = self.fake.replay(acc)
                return self.reply(status, payload)
        return self.reply(404, {"error": "unknown control path"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--auth-token", required=True)
    ap.add_argument("--public-url", default="https://api.twilio.com",
                    help="base of the absolute URIs in list pages (start.sh: Prism's URL)")
    args = ap.parse_args()
    Handler.fake = Fake(args.auth_token, args.public_url)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    log("listening on %s:%d" % (args.host, args.port))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
