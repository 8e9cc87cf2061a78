#!/usr/bin/env python3
"""Verifies webhook requests with the `standardwebhooks` package (PyPI), an
implementation of the Standard Webhooks specification that is not ours.

Usage: ep_webhook_verify.py CASES.json
  CASES.json: {"cases": [{"secret": "whsec_...", "body_b64": "...",
                          "headers": {"webhook-id": "...", ...}}, ...]}
Prints one JSON array, a result per case, in order:
  {"ok": true, "payload": <the body parsed as JSON, or null>}
  {"ok": false, "error": "<the verifier's message>"}
The secrets stay in the input file: they are never printed.
"""
import base64
import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def verify(case):
    body = base64.b64decode(case["body_b64"])
    try:
        Webhook(case["secret"]).verify(body, case["headers"], json_parse=False)
    except WebhookVerificationError as e:
        return {"ok": False, "error": str(e)}
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    return {"ok": True, "payload": payload}


def main():
    with open(sys.argv[1], "rb") as f:
        cases = json.load(f)["cases"]
    json.dump([verify(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
