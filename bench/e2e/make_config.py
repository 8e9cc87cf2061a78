#!/usr/bin/env python3
"""make_config.py BASE_TOML OUT_TOML CONFIG SINK_PORT [EXCHANGE_PREFIX]

Writes OUT_TOML: the release's own config BASE_TOML with
  - the c2s listener's shaper set to "none" (the default config's "normal", 16 kB/s per
    connection, would be what the benchmark measures);
  - for CONFIG (off | http | rabbit | http+rabbit) the event pusher backends appended, in
    MongooseIM's own keys, the same for both releases:
      http    [outgoing_pools.http.http_pool] -> http://127.0.0.1:SINK_PORT, workers 10;
              handler path /notifications (MongooseIM's defaults otherwise)
      rabbit  [outgoing_pools.rabbit.event_pusher] -> 127.0.0.1:5672 guest, workers 4
              (MongooseIM's default confirms_enabled = false); exchanges
              <prefix>presence and <prefix>chat_msg (topic, default topics)
"""
import re
import sys
import tomllib

HTTP = """
[outgoing_pools.http.http_pool]
  scope = "global"
  workers = 10
  [outgoing_pools.http.http_pool.connection]
    host = "http://127.0.0.1:{port}"
    path_prefix = "/"
    request_timeout = 5000
"""
RABBIT = """
[outgoing_pools.rabbit.event_pusher]
  scope = "global"
  workers = 4
  [outgoing_pools.rabbit.event_pusher.connection]
    host = "127.0.0.1"
    port = 5672
    username = "guest"
    password = "guest"
"""
HTTP_MOD = """
[modules.mod_event_pusher.http]
  handlers = [{path = "/notifications"}]
"""
RABBIT_MOD = """
[modules.mod_event_pusher.rabbit]
  presence_exchange.name = "{p}presence"
  chat_msg_exchange.name = "{p}chat_msg"
"""


def main():
    base, out, config, port = sys.argv[1:5]
    prefix = sys.argv[5] if len(sys.argv) > 5 else "e2e_"
    parts = config.split("+")
    if config != "off" and not set(parts) <= {"http", "rabbit"}:
        sys.exit(f"unknown config {config}: off, http, rabbit or http+rabbit")
    text = open(base).read()
    # The first shaper line after [[listen.c2s]].
    m = re.search(r'(\[\[listen\.c2s\]\][^\[]*?\n\s*shaper\s*=\s*)"[^"]*"', text)
    if m:
        text = text[:m.start()] + m.group(1) + '"none"' + text[m.end():]
    else:
        text = text.replace("[[listen.c2s]]\n", '[[listen.c2s]]\n  shaper = "none"\n', 1)
    if "mod_event_pusher" in text:
        sys.exit(f"{base} already configures mod_event_pusher: give the release's own config")
    add = "\n# --- bench/e2e: config %s ---\n" % config
    if "http" in parts:
        add += HTTP.format(port=port)
    if "rabbit" in parts:
        add += RABBIT
    if "http" in parts:
        add += HTTP_MOD
    if "rabbit" in parts:
        add += RABBIT_MOD.format(p=prefix)
    text = text.rstrip("\n") + "\n" + (add if config != "off" else "")
    tomllib.loads(text)          # a syntax error stops here, not in the node
    with open(out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
