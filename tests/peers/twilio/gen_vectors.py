#!/usr/bin/env python3
"""X-Twilio-Signature test vectors for Rappel's webhook validation, made with Twilio's own SDK.

    python gen_vectors.py                 # JSON list of vectors on stdout
    python gen_vectors.py --check FILE    # recompute the signatures of a vectors file

Run with the venv made by setup.sh ($PEERS_DIR/venv/bin/python, `twilio` 9.13.0 from PyPI).
signature_vectors.json beside this script is this program's output:

    $PEERS_DIR/venv/bin/python gen_vectors.py > signature_vectors.json

Each vector: name, token, url (the full public URL the webhook was sent to), params (the form
fields; {} for a JSON body), body (the raw JSON body or null), algorithm, signature (base64),
sdk_validates (the SDK's RequestValidator.validate accepts it), note (the gotcha it covers).
The tokens, URLs and values are made up for Rappel's tests; none is a real credential.
"""
import argparse
import hashlib
import json
import sys

from twilio.request_validator import RequestValidator

TOKEN = "5c1e0a9b7d3f42e8a6b0c4d2e9f17a38"
CLASSIC_TOKEN = "rappel-test-7"
ACCOUNT = "AC5f3e2d1c0b9a88776655443322110fed"
SMS_SID = "SM9d8c7b6a5f4e3d2c1b0a99887766554f"
BASE = "https://rappel.example.net"


def inbound_sms(body="CONFIRME"):
    return {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "Body": body,
        "From": "+33698765432",
        "MessageSid": SMS_SID,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsMessageSid": SMS_SID,
        "SmsSid": SMS_SID,
        "SmsStatus": "received",
        "To": "+33757000111",
    }


def cases():
    json_body = json.dumps({"MessageSid": "SM42", "MessageStatus": "read"}, separators=(",", ":"))
    body_hash = hashlib.sha256(json_body.encode("utf-8")).hexdigest()
    return [
        {
            "name": "voice_gather_query_string",
            "token": CLASSIC_TOKEN,
            "url": BASE + "/twilio/voice/gather?appointment=8812&step=identity",
            "params": {
                "AccountSid": ACCOUNT,
                "CallSid": "CA0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                "CallStatus": "in-progress",
                "Digits": "1",
                "From": "+33757000111",
                "To": "+33698765432",
            },
            "note": "URL with query string; query params are part of the URL, NOT added to the "
                    "sorted list",
        },
        {
            "name": "inbound_sms",
            "token": TOKEN,
            "url": BASE + "/webhooks/twilio/sms",
            "params": inbound_sms(),
            "note": "",
        },
        {
            "name": "inbound_sms_port443",
            "token": TOKEN,
            "url": "https://rappel.example.net:443/webhooks/twilio/sms",
            "params": inbound_sms(),
            "note": "same request signed with explicit :443; validators must accept both forms",
        },
        {
            "name": "inbound_sms_http",
            "token": TOKEN,
            "url": "http://rappel.example.net/webhooks/twilio/sms",
            "params": inbound_sms(),
            "note": "scheme matters: differs from https; behind a TLS proxy rebuild the https URL",
        },
        {
            "name": "inbound_sms_unicode",
            "token": TOKEN,
            "url": BASE + "/webhooks/twilio/sms",
            "params": inbound_sms("D'accord, à jeudi 8h30 👍 merci"),
            "note": "UTF-8 bytes of decoded values (accents, emoji outside the BMP)",
        },
        {
            "name": "call_status_empty_value",
            "token": TOKEN,
            "url": BASE + "/webhooks/twilio/voice/status",
            "params": {
                "AccountSid": ACCOUNT,
                "CallDuration": "37",
                "CallSid": "CA0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                "CallStatus": "completed",
                "CallerName": "",
                "ForwardedFrom": "",
            },
            "note": "empty values are kept: key concatenated with empty string",
        },
        {
            "name": "whatsapp_quick_reply",
            "token": TOKEN,
            "url": BASE + "/webhooks/twilio/whatsapp",
            "params": {
                "AccountSid": ACCOUNT,
                "ApiVersion": "2010-04-01",
                "Body": "Annuler",
                "ButtonPayload": "cancel_appt_8812",
                "ButtonText": "Annuler",
                "From": "whatsapp:+33698765432",
                "MessageSid": "SM0a1b2c3d4e5f60718293a4b5c6d7e8f9",
                "MessageType": "button",
                "NumMedia": "0",
                "NumSegments": "1",
                "OriginalRepliedMessageSid": "MM9f8e7d6c5b4a39281706f5e4d3c2b1a0",
                "ProfileName": "Lucie",
                "SmsMessageSid": "SM0a1b2c3d4e5f60718293a4b5c6d7e8f9",
                "SmsSid": "SM0a1b2c3d4e5f60718293a4b5c6d7e8f9",
                "SmsStatus": "received",
                "To": "whatsapp:+33757000111",
                "WaId": "33698765432",
            },
            "note": "WhatsApp quick-reply button: ButtonPayload/ButtonText, whatsapp: prefixes",
        },
        {
            "name": "json_body_sha256",
            "token": TOKEN,
            "url": BASE + "/webhooks/twilio/events?bodySHA256=" + body_hash,
            "params": {},
            "body": json_body,
            "note": "signature over URL only; body checked via sha256 hex",
        },
        {
            "name": "shared_key_sha256",
            "token": TOKEN,
            "url": BASE + "/webhooks/twilio/sms",
            "params": inbound_sms(),
            "algorithm": "HMAC_SHA256",
            "note": "HMAC_SHA256 when X-Twilio-Webhooks-Signature-Settings says "
                    "algorithm=HMAC_SHA256 (SharedKey, public beta); computed with the SDK's "
                    "compute_signature(..., algorithm='HMAC_SHA256')",
        },
    ]


def sign(vector):
    """Signature of a vector, the way Twilio signs: URL + sorted params (none for JSON bodies)."""
    validator = RequestValidator(vector["token"])
    params = {} if vector.get("body") is not None else (vector.get("params") or {})
    return validator.compute_signature(vector["url"], params, vector.get("algorithm") or "HMAC_SHA1")


def sdk_validates(vector, signature):
    validator = RequestValidator(vector["token"])
    payload = vector["body"] if vector.get("body") is not None else (vector.get("params") or {})
    return validator.validate(vector["url"], payload, signature, vector.get("algorithm") or "HMAC_SHA1")


def generate():
    out = []
    for case in cases():
        vector = {
            "name": case["name"],
            "token": case["token"],
            "url": case["url"],
            "params": case["params"],
            "body": case.get("body"),
            "algorithm": case.get("algorithm", "HMAC_SHA1"),
        }
        vector["signature"] = sign(vector)
        vector["sdk_validates"] = sdk_validates(vector, vector["signature"])
        vector["note"] = case["note"]
        if not vector["sdk_validates"]:
            raise SystemExit("vector %s does not validate with the SDK" % vector["name"])
        out.append(vector)
    return out


def check(path):
    with open(path, encoding="utf-8") as f:
        vectors = json.load(f)
    bad = 0
    for v in vectors:
        got = sign(v)
        ok = got == v["signature"] and sdk_validates(v, v["signature"])
        bad += not ok
        print("%-4s %-28s %s" % ("ok" if ok else "FAIL", v.get("name", "?"), got))
    print("%d passed, %d failed" % (len(vectors) - bad, bad))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description="X-Twilio-Signature test vectors")
    ap.add_argument("--check", metavar="FILE", help="recompute and compare a vectors file")
    args = ap.parse_args()
    if args.check:
        return check(args.check)
    json.dump(generate(), sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
