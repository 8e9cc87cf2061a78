#!/usr/bin/env python3
"""End-to-end helpers against a real MongooseIM: stdlib only (Python 3.11+).

  e2e.py smoke CONFIG        two users chat once; checks each backend CONFIG enables
  e2e.py load  ...           N clients x M chat messages (raw XMPP), waits for the events
  e2e.py sink PORT           HTTP sink: 200 to every request, GET /count -> "<n> <bytes>"
  e2e.py amqp EXCHANGE...    consumes a queue bound with '#' to each exchange, keeps a count

Every server address is on 127.0.0.1 (XMPP_HOST, AMQP_HOST may say otherwise, but the
scripts never do). Raw XMPP: stream, SASL PLAIN without TLS, bind, session, presence;
incoming stanzas are counted by their '<message' tag, nothing is parsed under load.
"""
import argparse
import asyncio
import base64
import html
import json
import os
import re
import struct
import sys
import time
import tomllib
import urllib.parse
import urllib.request

# ----------------------------------------------------------------------------- XMPP

STREAM = ("<?xml version='1.0'?><stream:stream to='{d}' xmlns='jabber:client' "
          "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")


class XmppError(Exception):
    pass


class Client:
    """One c2s connection. After login() a reader task counts '<message' stanzas."""

    def __init__(self, host, port, domain, user, password, resource="e2e", keep=False):
        self.host, self.port, self.domain = host, port, domain
        self.user, self.password, self.resource = user, password, resource
        self.jid = f"{user}@{domain}"
        self.buf = b""
        self.received = 0
        self.keep = keep
        self.stanzas = []          # kept text when keep=True (smoke)
        self.done = asyncio.Event()
        self.expect = None
        self.task = None

    async def _until(self, pattern, timeout=10.0):
        rx = re.compile(pattern, re.S)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                out, self.buf = self.buf[:m.end()], self.buf[m.end():]
                return out.decode("utf-8", "replace")
            left = deadline - time.monotonic()
            if left <= 0:
                raise XmppError(f"{self.jid}: timeout waiting for {pattern!r}; got {self.buf[-300:]!r}")
            data = await asyncio.wait_for(self.r.read(65536), left)
            if not data:
                raise XmppError(f"{self.jid}: connection closed; got {self.buf[-300:]!r}")
            self.buf += data

    async def login(self, presence=True):
        self.r, self.w = await asyncio.open_connection(self.host, self.port)
        self.w.write(STREAM.format(d=self.domain).encode())
        feats = await self._until(rb"</stream:features>")
        if "PLAIN" not in feats:
            raise XmppError(f"no SASL PLAIN offered without TLS (features: {feats[-400:]}); "
                            "the c2s listener must allow PLAIN on a plain connection")
        cred = base64.b64encode(f"\0{self.user}\0{self.password}".encode()).decode()
        self.w.write(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{cred}</auth>".encode())
        res = await self._until(rb"<success[^>]*?(/>|</success>)|</failure>")
        if "<success" not in res:
            raise XmppError(f"{self.jid}: authentication failed: {res}")
        self.w.write(STREAM.format(d=self.domain).encode())
        feats = await self._until(rb"</stream:features>")
        self.w.write(f"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                     f"<resource>{self.resource}</resource></bind></iq>".encode())
        res = await self._until(rb"<iq[^>]*id=['\"]bind1['\"].*?(</iq>|/>)")
        if "type='result'" not in res and 'type="result"' not in res:
            raise XmppError(f"{self.jid}: bind failed: {res}")
        if "xmpp-session" in feats:
            self.w.write(b"<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
            await self._until(rb"<iq[^>]*id=['\"]sess1['\"].*?(</iq>|/>)")
        if presence:
            self.w.write(b"<presence/>")
        await self.w.drain()

    def start_reader(self, expect=None):
        self.expect = expect
        self.task = asyncio.get_running_loop().create_task(self._reader())

    async def _reader(self):
        tail = self.buf
        self.received += tail.count(b"<message")
        if self.keep:
            self.stanzas.append(tail.decode("utf-8", "replace"))
        while True:
            data = await self.r.read(262144)
            if not data:
                break
            chunk = tail[-8:] + data
            self.received += chunk.count(b"<message")
            tail = data
            if self.keep:
                self.stanzas.append(data.decode("utf-8", "replace"))
            if self.expect is not None and self.received >= self.expect:
                self.done.set()

    def send(self, data):
        self.w.write(data)

    async def close(self):
        try:
            self.w.write(b"</stream:stream>")
            await self.w.drain()
            self.w.close()
        except Exception:
            pass
        if self.task:
            self.task.cancel()


def xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&apos;")


def chat(to, body, n=0):
    return (f"<message type='chat' to='{to}' id='m{n}'><body>{xml_escape(body)}</body></message>").encode()

# ----------------------------------------------------------------------------- HTTP sink


class Sink:
    """HTTP/1.1 keep-alive server: 200 (empty body) to every request; GET /count answers
    '<requests> <body bytes>' (requests other than GET /count). keep=True stores them."""

    def __init__(self, keep=False):
        self.count = 0
        self.bytes = 0
        self.keep = keep
        self.requests = []
        self.last = None

    async def handle(self, r, w):
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await r.readexactly(int(headers.get("content-length", "0")))
                if method == "GET" and path == "/count":
                    out = f"{self.count} {self.bytes}".encode()
                else:
                    self.count += 1
                    self.bytes += len(body)
                    self.last = time.time()
                    if self.keep:
                        self.requests.append((method, path, headers, body.decode("utf-8", "replace")))
                    out = b""
                w.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\ncontent-type: text/plain\r\n\r\n%s"
                        % (len(out), out))
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, asyncio.CancelledError):
            pass        # a cancelled handler returns: no "exception never retrieved" at exit
        finally:
            w.close()

    async def start(self, port, host="127.0.0.1"):
        self.server = await asyncio.start_server(self.handle, host, port)
        return self.server.sockets[0].getsockname()[1]

# ----------------------------------------------------------------------------- AMQP 0-9-1


def shortstr(s):
    b = s.encode()
    return struct.pack("B", len(b)) + b


def longstr(b):
    return struct.pack(">I", len(b)) + b


class Amqp:
    """Just enough AMQP 0-9-1 for a consumer: an exclusive server-named queue bound with
    routing key '#' to each exchange, no-ack consume. Messages: (exchange, key, body)."""

    def __init__(self, keep=False):
        self.count = 0
        self.keep = keep
        self.messages = []
        self.last = None

    async def _frame(self):
        t, ch, size = struct.unpack(">BHI", await self.r.readexactly(7))
        payload = await self.r.readexactly(size)
        if (await self.r.readexactly(1)) != b"\xce":
            raise RuntimeError("AMQP: bad frame end")
        return t, ch, payload

    def _method(self, ch, cls, mid, args=b""):
        p = struct.pack(">HH", cls, mid) + args
        self.w.write(struct.pack(">BHI", 1, ch, len(p)) + p + b"\xce")

    async def _expect(self, cls, mid):
        while True:
            t, ch, p = await self._frame()
            if t != 1:
                continue
            c, m = struct.unpack(">HH", p[:4])
            if (c, m) == (cls, mid):
                return p[4:]
            if (c, m) in ((10, 50), (20, 40)):   # connection.close / channel.close
                code, = struct.unpack(">H", p[4:6])
                text = p[7:7 + p[6]].decode()
                raise RuntimeError(f"AMQP: broker closed: {code} {text}")

    async def connect(self, host, port, user, password, exchanges, vhost="/"):
        self.r, self.w = await asyncio.open_connection(host, port)
        self.w.write(b"AMQP\x00\x00\x09\x01")
        await self._expect(10, 10)
        self._method(0, 10, 11, struct.pack(">I", 0) + shortstr("PLAIN")
                     + longstr(f"\0{user}\0{password}".encode()) + shortstr("en_US"))
        tune = await self._expect(10, 30)
        chmax, = struct.unpack(">H", tune[:2])
        self._method(0, 10, 31, struct.pack(">HIH", chmax or 1, 131072, 0))
        self._method(0, 10, 40, shortstr(vhost) + shortstr("") + b"\x00")
        await self._expect(10, 41)
        self._method(1, 20, 10, shortstr(""))
        await self._expect(20, 11)
        self._method(1, 50, 10, struct.pack(">H", 0) + shortstr("") + b"\x0c" + struct.pack(">I", 0))
        ok = await self._expect(50, 11)
        self.queue = ok[1:1 + ok[0]].decode()
        for ex in exchanges:
            self._method(1, 50, 20, struct.pack(">H", 0) + shortstr(self.queue) + shortstr(ex)
                         + shortstr("#") + b"\x00" + struct.pack(">I", 0))
            await self._expect(50, 21)
        self._method(1, 60, 20, struct.pack(">H", 0) + shortstr(self.queue) + shortstr("")
                     + b"\x02" + struct.pack(">I", 0))
        await self._expect(60, 21)

    async def consume(self):
        ex = key = None
        body, size = b"", 0
        while True:
            t, ch, p = await self._frame()
            if t == 1:
                c, m = struct.unpack(">HH", p[:4])
                if (c, m) == (60, 60):
                    a = p[4:]
                    i = 1 + a[0] + 8 + 1
                    ex = a[i + 1:i + 1 + a[i]].decode()
                    i += 1 + a[i]
                    key = a[i + 1:i + 1 + a[i]].decode()
                    body, size = b"", None
                elif (c, m) in ((10, 50), (20, 40)):
                    raise RuntimeError(f"AMQP: broker closed: {p[4:]!r}")
            elif t == 2:
                size, = struct.unpack(">Q", p[4:12])
                if size == 0:
                    self._got(ex, key, b"")
            elif t == 3:
                body += p
                if size is not None and len(body) >= size:
                    self._got(ex, key, body)

    def _got(self, ex, key, body):
        self.count += 1
        self.last = time.time()
        if self.keep:
            self.messages.append((ex, key, body.decode("utf-8", "replace")))

# ----------------------------------------------------------------------------- moto (SNS via SQS)


def aws(endpoint, service, params, region="us-east-1"):
    """An unsigned-but-labelled AWS query call (moto does not check signatures)."""
    auth = (f"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/{region}/{service}/aws4_request, "
            "SignedHeaders=host, Signature=0")
    req = urllib.request.Request(endpoint, data=urllib.parse.urlencode(params).encode(),
                                 headers={"Authorization": auth,
                                          "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read().decode()

# ----------------------------------------------------------------------------- smoke


def loopback_port(url, what):
    u = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"{what}: {url} is not a loopback address; the smoke only listens on 127.0.0.1")
    return u.port or (443 if u.scheme == "https" else 80), (u.path or "/")


async def smoke(a):
    with open(a.config, "rb") as f:
        cfg = tomllib.load(f)
    ep = cfg.get("modules", {}).get("mod_event_pusher", {})
    pools = cfg.get("outgoing_pools", {})
    backends = [b for b in ("http", "rabbit", "sns", "push") if b in ep]
    print(f"config {a.config}: mod_event_pusher backends: {', '.join(backends) or 'none'}")
    tag = f"smoke{int(time.time())}"
    body = f"hello from the smoke test {tag}"
    alice, bob = a.users
    domain = a.domain
    checks = {}          # backend -> callable returning (ok, text)
    tasks = []

    if "http" in ep:
        handlers = ep["http"].get("handlers", [{}])
        pool = handlers[0].get("pool_name", "http_pool")
        conn = pools.get("http", {}).get(pool, {}).get("connection", {})
        port, _ = loopback_port(conn.get("host", ""), f"outgoing_pools.http.{pool}")
        sink = Sink(keep=True)
        await sink.start(port)

        def check_http(sink=sink):
            hits = [r for r in sink.requests if tag in urllib.parse.unquote_plus(r[3])]
            if not hits:
                return False, f"nothing with the message arrived ({sink.count} requests)"
            m, p, h, b = hits[0]
            return True, f"{m} {p} {h.get('content-type', '')} {b}"
        checks["http"] = check_http

    if "rabbit" in ep:
        rcfg = ep["rabbit"]
        exchanges = [rcfg[k].get("name", d) for k, d in (("presence_exchange", "presence"),
                                                         ("chat_msg_exchange", "chat_msg"))
                     if k in rcfg]
        conn = pools.get("rabbit", {}).get("event_pusher", {}).get("connection", {})
        amqp = Amqp(keep=True)
        try:
            await amqp.connect(conn.get("host", "127.0.0.1"), conn.get("port", 5672),
                               conn.get("username", "guest"), conn.get("password", "guest"),
                               exchanges)
            tasks.append(asyncio.get_running_loop().create_task(amqp.consume()))
            err = None
        except Exception as e:     # e.g. the exchange is not declared: the module did not start
            err = f"{e}"

        def check_rabbit(amqp=amqp, err=err, ex=exchanges, rcfg=rcfg):
            if err:
                return False, f"could not bind a queue to {ex}: {err}"
            chats = [m for m in amqp.messages if tag in m[2]]
            pres = [m for m in amqp.messages if m[0] == rcfg.get("presence_exchange", {}).get("name")]
            if len(chats) < 2:
                return False, f"{len(chats)} of 2 chat events (sent+recv) ({amqp.count} messages)"
            return True, (f"{len(chats)} chat events: " + " | ".join(f"{e} {k} {b}" for e, k, b in chats[:2])
                          + f"; {len(pres)} presence events")
        checks["rabbit"] = check_rabbit

    if "sns" in ep:
        s = ep["sns"]
        endpoint = s.get("sns_host", "")
        endpoint = endpoint if "://" in endpoint else "https://" + endpoint
        loopback_port(endpoint, "sns_host")
        region, account = s.get("region", "us-east-1"), s.get("account_id", "123456789012")
        topic = s.get("pm_messages_topic")
        try:
            tarn = None
            for key in ("presence_updates_topic", "pm_messages_topic", "muc_messages_topic"):
                if s.get(key):      # every topic the module publishes to exists on moto
                    arn = re.search(r"<TopicArn>(.*?)</TopicArn>",
                                    aws(endpoint, "sns", {"Action": "CreateTopic", "Name": s[key]}, region)).group(1)
                    tarn = arn if key == "pm_messages_topic" else tarn
            # Subscriptions left by an earlier smoke run: their queue is gone, and a topic
            # with a dangling SQS subscription fails every publish on moto.
            subs = aws(endpoint, "sns", {"Action": "ListSubscriptionsByTopic", "TopicArn": tarn}, region)
            for sarn, ep_ in re.findall(r"<SubscriptionArn>(.*?)</SubscriptionArn>.*?<Endpoint>(.*?)</Endpoint>", subs, re.S):
                if re.search(r":smoke\d+-sns$", ep_):
                    aws(endpoint, "sns", {"Action": "Unsubscribe", "SubscriptionArn": sarn}, region)
            q = f"{tag}-sns"
            qurl = re.search(r"<QueueUrl>(.*?)</QueueUrl>",
                             aws(endpoint, "sqs", {"Action": "CreateQueue", "QueueName": q}, region)).group(1)
            sub = aws(endpoint, "sns", {"Action": "Subscribe", "TopicArn": tarn, "Protocol": "sqs",
                                        "Endpoint": f"arn:aws:sqs:{region}:{account}:{q}",
                                        "Attributes.entry.1.key": "RawMessageDelivery",
                                        "Attributes.entry.1.value": "true"}, region)
            sub_arn = re.search(r"<SubscriptionArn>(.*?)</SubscriptionArn>", sub).group(1)
            err = None
        except Exception as e:
            err, qurl, sub_arn = f"{e}", None, None

        def check_sns(qurl=qurl, err=err, region=region, endpoint=endpoint, sub_arn=sub_arn):
            if err:
                return False, f"moto set-up failed: {err}"
            got = []
            for _ in range(3):
                x = aws(endpoint, "sqs", {"Action": "ReceiveMessage", "QueueUrl": qurl,
                                          "MaxNumberOfMessages": "10", "WaitTimeSeconds": "1"}, region)
                got += re.findall(r"<Body>(.*?)</Body>", x, re.S)
                if any(tag in g for g in got):
                    break
            try:
                aws(endpoint, "sns", {"Action": "Unsubscribe", "SubscriptionArn": sub_arn}, region)
                aws(endpoint, "sqs", {"Action": "DeleteQueue", "QueueUrl": qurl}, region)
            except Exception:
                pass
            hits = [g for g in got if tag in g]
            if not hits:
                return False, f"nothing with the message on topic {topic} ({len(got)} other messages)"
            return True, f"topic {topic}: {html.unescape(hits[0])}"
        checks["sns"] = check_sns

    push_sink = None
    if "push" in ep:
        svc = cfg.get("modules", {}).get("mod_push_service_mongoosepush")
        vhosts = ep["push"].get("virtual_pubsub_hosts", [])
        if svc and vhosts:
            conn = pools.get("http", {}).get(svc.get("pool_name", ""), {}).get("connection", {})
            port, _ = loopback_port(conn.get("host", ""), f"outgoing_pools.http.{svc.get('pool_name')}")
            push_sink = Sink(keep=True)
            await push_sink.start(port)
            pubsub = vhosts[0].replace("@HOST@", domain)

            def check_push(ps=push_sink, pubsub=pubsub):
                hits = [r for r in ps.requests if tag in r[3]]
                if not hits:
                    return False, f"MongoosePush stand-in got nothing with the message ({ps.count} requests)"
                m, p, h, b = hits[0]
                return True, f"MongoosePush stand-in: {m} {p} {b}"
            checks["push"] = check_push
        else:
            checks["push"] = lambda: (False, "push is enabled but no mod_push_service_mongoosepush "
                                      "with virtual_pubsub_hosts: this smoke checks push through the "
                                      "MongoosePush stand-in only")

    ca = Client(a.host, a.port, domain, alice, a.password, keep=True)
    cb = Client(a.host, a.port, domain, bob, a.password, keep=True)
    await ca.login()
    await cb.login()
    ca.start_reader()
    cb.start_reader()
    if push_sink is not None:
        # bob enables push on the virtual pubsub host and goes offline: the second message
        # reaches him offline and is notified to MongoosePush.
        form = ("<x xmlns='jabber:x:data' type='submit'>"
                "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
                "<field var='service'><value>fcm</value></field>"
                f"<field var='device_id'><value>{tag}</value></field></x>")
        cb.send(f"<iq type='set' id='push0'><disable xmlns='urn:xmpp:push:0' jid='{pubsub}'/></iq>".encode())
        cb.send(f"<iq type='set' id='push1'><enable xmlns='urn:xmpp:push:0' jid='{pubsub}' "
                f"node='{tag}'>{form}</enable></iq>".encode())
    await asyncio.sleep(0.5)
    ca.send(chat(f"{bob}@{domain}", body, 1))
    await asyncio.sleep(1.0)
    if push_sink is not None:
        await cb.close()
        await asyncio.sleep(0.5)
        ca.send(chat(f"{bob}@{domain}", body + " (offline)", 2))
    delivered = any(tag in s for s in cb.stanzas)
    print(f"xmpp: {alice} -> {bob}: {'delivered' if delivered else 'NOT delivered'}")
    deadline = time.monotonic() + a.wait
    results = {}
    while True:
        results = {b: checks[b]() for b in checks if b != "sns"}
        if all(ok for ok, _ in results.values()) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    if "sns" in checks:
        results["sns"] = await asyncio.get_running_loop().run_in_executor(None, checks["sns"])
    for b in backends:
        ok, text = results[b]
        print(f"{b:7s} {'OK' if ok else 'FAIL'}  {text}")
    await ca.close()
    await cb.close()
    for t in tasks:
        t.cancel()
    return 0 if delivered and all(ok for ok, _ in results.values()) else 1

# ----------------------------------------------------------------------------- load


def count_http(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return int(r.read().split()[0])


def read_count(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


async def load(a):
    users = [f"{a.prefix}{i}" for i in range(1, a.clients + 1)]
    total = a.clients * a.messages
    clients = [Client(a.host, a.port, a.domain, u, a.password) for u in users]
    for i in range(0, len(clients), 10):
        await asyncio.gather(*(c.login() for c in clients[i:i + 10]))
    await asyncio.sleep(1.0)
    for c in clients:
        c.buf = b""            # presences that arrived during login are not counted
        c.received = 0
    for c in clients:
        c.start_reader(expect=a.messages)
    http0 = count_http(a.http_count) if a.http_count else 0
    amqp0 = read_count(a.amqp_count) if a.amqp_count else 0
    if a.ready:
        open(a.ready, "w").close()
        while not os.path.exists(a.go):
            await asyncio.sleep(0.01)
    body = "x" * a.body
    cpu0 = time.process_time()
    t0 = time.monotonic()

    async def sender(i, c):
        to = f"{users[(i + 1) % len(users)]}@{a.domain}"
        pre = f"<message type='chat' to='{to}' id='".encode()
        post = f"'><body>{body}</body></message>".encode()
        for k in range(0, a.messages, a.batch):
            c.send(b"".join(pre + str(n).encode() + post for n in range(k, min(k + a.batch, a.messages))))
            await c.w.drain()
    await asyncio.gather(*(sender(i, c) for i, c in enumerate(clients)))
    t_sent = time.monotonic() - t0
    try:
        await asyncio.wait_for(asyncio.gather(*(c.done.wait() for c in clients)), a.timeout)
    except asyncio.TimeoutError:
        pass
    t_delivered = time.monotonic() - t0
    delivered = sum(c.received for c in clients)
    res = {"clients": a.clients, "messages": total, "sent_s": round(t_sent, 3),
           "delivered": delivered, "delivered_s": round(t_delivered, 3),
           "msgs_per_s": round(delivered / t_delivered, 1) if t_delivered else 0}
    # Backend events: poll until every expected one arrived (or the timeout).
    waits = []
    if a.http_count:
        waits.append(("http", lambda: count_http(a.http_count) - http0, total * a.http_per_msg))
    if a.amqp_count:
        waits.append(("rabbit", lambda: read_count(a.amqp_count) - amqp0, total * a.amqp_per_msg))
    t_events = t_delivered
    deadline = time.monotonic() + a.timeout
    pending = dict((n, (f, e)) for n, f, e in waits)
    got = {}
    while pending and time.monotonic() < deadline:
        for n, (f, e) in list(pending.items()):
            got[n] = f()
            if got[n] >= e:
                del pending[n]
                res[f"{n}_s"] = round(time.monotonic() - t0, 3)
        if pending:
            await asyncio.sleep(0.05)
    for n, f, e in waits:
        got[n] = f()
        res[f"{n}_events"] = got[n]
        res[f"{n}_expected"] = e
        res.setdefault(f"{n}_s", None)
    if waits:
        t_events = max((res[f"{n}_s"] or float("nan")) for n, _, _ in waits)
    res["events_s"] = round(t_events, 3) if t_events == t_events else None
    res["load_cpu_us"] = int((time.process_time() - cpu0) * 1e6)   # this process, from go to here
    for c in clients:
        await c.close()
    print(json.dumps(res), flush=True)
    return 0 if delivered >= total and not pending else 1

# ----------------------------------------------------------------------------- servers


async def run_sink(a):
    s = Sink()
    port = await s.start(a.port)
    print(f"listening 127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


async def run_amqp(a):
    c = Amqp()
    await c.connect(a.host, a.port, a.user, a.password, a.exchanges)
    print(f"bound {c.queue} to {', '.join(a.exchanges)}", flush=True)

    async def writer():
        last = -1
        while True:
            if c.count != last:
                last = c.count
                tmp = a.count_file + ".tmp"
                with open(tmp, "w") as f:
                    f.write(f"{c.count} {c.last or 0}\n")
                os.replace(tmp, a.count_file)
            await asyncio.sleep(0.05)
    asyncio.get_running_loop().create_task(writer())
    await c.consume()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    x = argparse.ArgumentParser(add_help=False)
    x.add_argument("--host", default=os.environ.get("XMPP_HOST", "127.0.0.1"))
    x.add_argument("--port", type=int, default=int(os.environ.get("XMPP_PORT", "5222")))
    x.add_argument("--domain", default=os.environ.get("XMPP_DOMAIN", "localhost"))
    x.add_argument("--password", default=os.environ.get("XMPP_PASSWORD", "secret"))
    s = sub.add_parser("smoke", parents=[x])
    s.add_argument("config", help="the running node's mongooseim.toml")
    s.add_argument("--users", nargs=2, default=["alice", "bob"])
    s.add_argument("--wait", type=float, default=10.0)
    s = sub.add_parser("load", parents=[x])
    s.add_argument("--clients", type=int, default=20)
    s.add_argument("--messages", type=int, default=2500)
    s.add_argument("--prefix", default="e2eu")
    s.add_argument("--body", type=int, default=32, help="body length (characters)")
    s.add_argument("--batch", type=int, default=50, help="messages per write")
    s.add_argument("--timeout", type=float, default=300.0)
    s.add_argument("--http-count", help="URL answering '<count> ...' (the sink's /count)")
    s.add_argument("--http-per-msg", type=int, default=1)
    s.add_argument("--amqp-count", help="file the amqp consumer writes its count to")
    s.add_argument("--amqp-per-msg", type=int, default=2)
    s.add_argument("--ready", help="file created once every client is logged in")
    s.add_argument("--go", help="file whose creation starts the load")
    s = sub.add_parser("sink")
    s.add_argument("port", type=int)
    s = sub.add_parser("amqp")
    s.add_argument("exchanges", nargs="+")
    s.add_argument("--host", default=os.environ.get("AMQP_HOST", "127.0.0.1"))
    s.add_argument("--port", type=int, default=5672)
    s.add_argument("--user", default="guest")
    s.add_argument("--password", default="guest")
    s.add_argument("--count-file", required=True)
    a = p.parse_args()
    fn = {"smoke": smoke, "load": load, "sink": run_sink, "amqp": run_amqp}[a.cmd]
    try:
        sys.exit(asyncio.run(fn(a)) or 0)
    except XmppError as e:
        print(f"xmpp error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
