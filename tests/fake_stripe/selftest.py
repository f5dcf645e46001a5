#!/usr/bin/env python3
"""Self-test for fake_stripe.py (standard library only).

Starts the fake on port 0, reads the port from its first stdout line and
checks every documented behaviour over real HTTP.  Exit status 0 on success;
the last line printed is a one-line summary.

    python3 tests/fake_stripe/selftest.py
"""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake_stripe.py")
KEY = "sk_test_selftestKey0123456789abcd"
WRONG_KEY = "sk_test_notTheRightKeyAtAll9876"

# never let an http_proxy environment variable route 127.0.0.1 traffic elsewhere
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

CHECKS = 0
BASE = ""
PORT = 0


class SelfTestFailure(AssertionError):
    pass


def check(cond, msg: str):
    global CHECKS
    CHECKS += 1
    if not cond:
        raise SelfTestFailure(msg)


def eq(actual, expected, msg: str):
    check(actual == expected, f"{msg}: expected {expected!r}, got {actual!r}")


# --------------------------------------------------------------------------
# HTTP helpers
# --------------------------------------------------------------------------


class Resp:
    def __init__(self, status, headers, body: bytes, error: BaseException | None = None):
        self.status = status
        self.headers = headers
        self.body = body
        self.error = error

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except Exception as exc:  # noqa: BLE001
            raise SelfTestFailure(f"response is not JSON ({exc}): {self.body[:300]!r}")

    def header(self, name):
        return None if self.headers is None else self.headers.get(name)

    def __repr__(self):
        return f"<Resp {self.status} {self.body[:200]!r} err={self.error!r}>"


def call(method: str, path: str, params=None, *, key: str | None = KEY, idem: str | None = None,
         headers: dict | None = None, timeout: float = 10.0, raw_body: bytes | None = None,
         content_type: str | None = None) -> Resp:
    url = BASE + path
    data = None
    if method == "GET" and params:
        url += "?" + urllib.parse.urlencode(params)
    elif params is not None:
        data = urllib.parse.urlencode(params).encode()
    if raw_body is not None:
        data = raw_body
    req = urllib.request.Request(url, data=data, method=method)
    if key is not None:
        req.add_header("Authorization", f"Bearer {key}")
    if idem is not None:
        req.add_header("Idempotency-Key", idem)
    if content_type is not None:
        req.add_header("Content-Type", content_type)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with OPENER.open(req, timeout=timeout) as r:
            return Resp(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        return Resp(e.code, e.headers, body)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        return Resp(None, None, b"", e)


def control(method: str, name: str, payload=None, raw: bytes | None = None) -> Resp:
    data = None
    if payload is not None:
        data = json.dumps(payload).encode()
    if raw is not None:
        data = raw
    req = urllib.request.Request(f"{BASE}/__control/{name}", data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with OPENER.open(req, timeout=10) as r:
            return Resp(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, e.headers, e.read())


def ctl(method: str, name: str, payload=None):
    r = control(method, name, payload)
    eq(r.status, 200, f"control {method} {name} status ({r.body[:200]!r})")
    return r.json()


def reset():
    ctl("POST", "reset")


def script(*rules, replace=False):
    return ctl("POST", "script", {"rules": list(rules), "replace": replace})


def transfers():
    return ctl("GET", "transfers")


def requests_log():
    return ctl("GET", "requests")


def stats():
    return ctl("GET", "stats")


def tparams(amount=1000, dest="acct_1OrganizerAbc", group="event_42", **extra):
    p = [("amount", str(amount)), ("currency", "usd"), ("destination", dest),
         ("metadata[payout_id]", "payout-1"), ("metadata[event_id]", "42")]
    if group is not None:
        p.append(("transfer_group", group))
    p.extend(extra.items())
    return p


def create(idem, **kw):
    return call("POST", "/v1/transfers", tparams(**kw), idem=idem)


def is_network_error(r: Resp) -> bool:
    return r.status is None and r.error is not None


def raw_exchange(data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send raw bytes; return (everything received until EOF, eof_seen)."""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
    try:
        s.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                c = s.recv(65536)
            except ConnectionResetError:
                return b"".join(chunks), True
            except socket.timeout:
                return b"".join(chunks), False
            if not c:
                return b"".join(chunks), True
            chunks.append(c)
        return b"".join(chunks), False
    finally:
        s.close()


def wait_for(pred, what: str, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise SelfTestFailure(f"timed out waiting for {what}")


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def test_startup_and_binding(proc):
    r = control("GET", "health")
    eq(r.status, 200, "health endpoint")
    eq(r.json(), {"ok": True}, "health body")
    if os.path.exists("/proc/net/tcp"):
        hexport = f"{PORT:04X}"
        listeners = []
        for fname in ("/proc/net/tcp", "/proc/net/tcp6"):
            if not os.path.exists(fname):
                continue
            with open(fname) as f:
                for line in f.readlines()[1:]:
                    parts = line.split()
                    local, state = parts[1], parts[3]
                    if state == "0A" and local.endswith(":" + hexport):
                        listeners.append(local)
        eq(listeners, ["0100007F:" + hexport], "the only listening socket is 127.0.0.1")


def test_auth():
    reset()
    r = call("GET", "/v1/transfers", key=None)
    eq(r.status, 401, "no Authorization header -> 401")
    eq(r.json()["error"]["type"], "invalid_request_error", "401 error type")
    check("did not provide an API key" in r.json()["error"]["message"], "missing-key message")

    r = call("GET", "/v1/transfers", key=WRONG_KEY)
    eq(r.status, 401, "wrong key -> 401")
    err = r.json()["error"]
    eq(err["type"], "invalid_request_error", "wrong key error type")
    eq(err["message"], "Invalid API Key provided: sk_test_****9876", "wrong key is masked")
    check(WRONG_KEY not in r.body.decode(), "full wrong key never echoed")
    check(KEY not in r.body.decode(), "real key never echoed")
    check(r.header("Request-Id", ) and r.header("Request-Id").startswith("req_"),
          "401 carries a Request-Id")

    # a POST rejected for auth does not burn its idempotency key
    r = call("POST", "/v1/transfers", tparams(), key=WRONG_KEY, idem="auth-key-1")
    eq(r.status, 401, "POST with wrong key -> 401")
    eq(len(transfers()), 0, "nothing created by a 401")
    r = call("POST", "/v1/transfers", tparams(), idem="auth-key-1")
    eq(r.status, 200, "same idempotency key works once authenticated")
    eq(r.header("Idempotent-Replayed"), None, "the 401 was not stored under the key")

    # Basic auth with the key as username is also accepted (as by Stripe)
    import base64
    tok = base64.b64encode(f"{KEY}:".encode()).decode()
    r = call("GET", "/v1/transfers", key=None, headers={"Authorization": f"Basic {tok}"})
    eq(r.status, 200, "Basic auth with the key as username")

    log = requests_log()
    eq([e["auth_valid"] for e in log], [False, False, False, True, True],
       "request log records auth validity")
    dump = json.dumps(log)
    check(KEY not in dump and WRONG_KEY not in dump and "Bearer" not in dump,
          "request log never contains a key or the Authorization header")
    eq(stats()["rejected_auth"], 3, "stats.rejected_auth")


def test_missing_idempotency_key():
    reset()
    r = call("POST", "/v1/transfers", tparams())
    eq(r.status, 400, "POST without Idempotency-Key -> 400")
    eq(r.json(), {"error": {"type": "invalid_request_error",
                            "message": "this fake requires an Idempotency-Key on every POST"}},
       "missing Idempotency-Key error body")
    eq(len(transfers()), 0, "nothing created without an Idempotency-Key")
    r = call("POST", "/v1/transfers/tr_x/reversals", [("amount", "1")])
    eq(r.status, 400, "reversal without Idempotency-Key -> 400")
    eq(stats()["missing_idempotency_key"], 2, "stats.missing_idempotency_key")


def test_create_and_replay():
    reset()
    r1 = create("create-1")
    eq(r1.status, 200, f"create transfer ({r1.body[:300]!r})")
    t = r1.json()
    check(re.fullmatch(r"tr_[A-Za-z0-9]{24}", t["id"]), f"transfer id format: {t['id']}")
    eq(t["object"], "transfer", "object")
    eq(t["amount"], 1000, "amount is an int")
    eq(t["currency"], "usd", "currency")
    eq(t["destination"], "acct_1OrganizerAbc", "destination")
    eq(t["transfer_group"], "event_42", "transfer_group")
    eq(t["metadata"], {"payout_id": "payout-1", "event_id": "42"}, "nested metadata parsed")
    eq((t["reversed"], t["amount_reversed"], t["livemode"]), (False, 0, False),
       "reversed/amount_reversed/livemode")
    check(isinstance(t["created"], int) and abs(t["created"] - time.time()) < 60, "created ts")
    rid1 = r1.header("Request-Id")
    check(rid1 and re.fullmatch(r"req_[A-Za-z0-9]+", rid1), f"Request-Id header: {rid1}")
    eq(r1.header("Idempotent-Replayed"), None, "first response is not a replay")
    eq(r1.header("Content-Length"), str(len(r1.body)), "Content-Length is exact")

    r2 = create("create-1")
    eq(r2.status, 200, "replay status")
    check(r2.body == r1.body, "replay body is byte-for-byte identical")
    eq(r2.header("Idempotent-Replayed"), "true", "replay carries Idempotent-Replayed: true")
    eq(r2.header("Original-Request"), rid1, "replay names the original request")

    # same params in another order are the same request
    reordered = list(reversed(tparams()))
    r3 = call("POST", "/v1/transfers", reordered, idem="create-1")
    eq(r3.status, 200, "reordered params replay")
    check(r3.body == r1.body, "reordered params -> same stored body")

    ts = transfers()
    eq(len(ts), 1, "only one transfer exists after replays")
    eq(ts[0]["idempotency_key"], "create-1", "control view records the idempotency key")
    eq(ts[0]["params"]["metadata"], {"payout_id": "payout-1", "event_id": "42"},
       "control view records parsed params")
    eq(ts[0]["id"], t["id"], "control view id")

    g = call("GET", f"/v1/transfers/{t['id']}")
    eq(g.status, 200, "retrieve transfer")
    eq(g.json()["id"], t["id"], "retrieved id")
    g = call("GET", "/v1/transfers/tr_doesnotexist")
    eq(g.status, 404, "retrieve unknown transfer -> 404")
    eq(g.json()["error"]["code"], "resource_missing", "unknown transfer code")

    # GET ignores Idempotency-Key
    g1 = call("GET", "/v1/transfers", idem="get-key")
    g2 = call("GET", "/v1/transfers", idem="get-key")
    check(g1.status == g2.status == 200 and g2.header("Idempotent-Replayed") is None,
          "Idempotency-Key on GET is ignored")

    s = stats()
    eq((s["transfers"], s["replays"]), (1, 2), "stats transfers/replays")
    log = requests_log()
    eq([e["replayed"] for e in log[:3]], [False, True, True], "log records replays")
    eq(log[0]["params"]["amount"], "1000", "log records parsed params")
    eq(log[0]["idempotency_key"], "create-1", "log records idempotency key")
    eq(log[0]["status"], 200, "log records status")


def test_idempotency_mismatch():
    reset()
    r1 = create("mm-1", amount=500)
    eq(r1.status, 200, "create")
    r2 = create("mm-1", amount=501)
    eq(r2.status, 400, "same key, different params -> 400")
    eq(r2.json(), {"error": {
        "type": "idempotency_error",
        "message": "Keys for idempotent requests can only be used with the same parameters "
                   "they were first used with. Try using a key other than 'mm-1' if you meant "
                   "to execute a different request."}}, "idempotency_error body")
    # same key on a different endpoint is also a different request
    tid = r1.json()["id"]
    r3 = call("POST", f"/v1/transfers/{tid}/reversals", [], idem="mm-1")
    eq(r3.status, 400, "same key on another path -> 400")
    eq(r3.json()["error"]["type"], "idempotency_error", "path mismatch type")
    eq(len(transfers()), 1, "mismatch created nothing")
    eq(transfers()[0]["reversals"], [], "mismatch reversed nothing")
    eq(stats()["idempotency_conflicts"], 2, "stats.idempotency_conflicts counts mismatches")
    # the original still replays
    r4 = create("mm-1", amount=500)
    check(r4.body == r1.body and r4.header("Idempotent-Replayed") == "true",
          "original still replays after mismatches")


def test_validation():
    reset()
    cases = [
        ([("currency", "usd"), ("destination", "acct_1")], "amount", "parameter_missing"),
        ([("amount", "abc"), ("currency", "usd"), ("destination", "acct_1")], "amount",
         "parameter_invalid_integer"),
        ([("amount", "-5"), ("currency", "usd"), ("destination", "acct_1")], "amount",
         "parameter_invalid_integer"),
        ([("amount", "0"), ("currency", "usd"), ("destination", "acct_1")], "amount",
         "parameter_invalid_integer"),
        ([("amount", "1.5"), ("currency", "usd"), ("destination", "acct_1")], "amount",
         "parameter_invalid_integer"),
        ([("amount", "10"), ("destination", "acct_1")], "currency", "parameter_missing"),
        ([("amount", "10"), ("currency", "USD"), ("destination", "acct_1")], "currency", None),
        ([("amount", "10"), ("currency", "usdx"), ("destination", "acct_1")], "currency", None),
        ([("amount", "10"), ("currency", "usd")], "destination", "parameter_missing"),
        ([("amount", "10"), ("currency", "usd"), ("destination", "acct_")], "destination",
         None),
        ([("amount", "10"), ("currency", "usd"), ("destination", "cus_123")], "destination",
         None),
        ([("amount", "10"), ("currency", "usd"), ("destination", "acct_1"),
          ("bogus", "1")], "bogus", "parameter_unknown"),
        ([("amount", "10"), ("currency", "usd"), ("destination", "acct_1"),
          ("metadata", "notahash")], "metadata", None),
    ]
    for i, (params, param, code) in enumerate(cases):
        r = call("POST", "/v1/transfers", params, idem=f"val-{i}")
        eq(r.status, 400, f"validation case {i} ({params}) status")
        err = r.json()["error"]
        eq(err["type"], "invalid_request_error", f"validation case {i} type")
        eq(err["param"], param, f"validation case {i} param")
        if code is not None:
            eq(err.get("code"), code, f"validation case {i} code")
        check(err.get("message"), f"validation case {i} has a message")
    eq(len(transfers()), 0, "no transfer created by invalid requests")

    # a completed 4xx is stored under its key: same request replays it ...
    bad = [("currency", "usd"), ("destination", "acct_1")]
    r1 = call("POST", "/v1/transfers", bad, idem="val-0")
    eq(r1.status, 400, "stored validation error replays with 400")
    eq(r1.header("Idempotent-Replayed"), "true", "validation error replay header")
    # ... and a corrected request under the same key is a different request
    r2 = call("POST", "/v1/transfers", bad + [("amount", "10")], idem="val-0")
    eq(r2.status, 400, "corrected params under a used key -> 400")
    eq(r2.json()["error"]["type"], "idempotency_error", "corrected params -> idempotency_error")


def test_fault_status_500():
    reset()
    script({"method": "POST", "path_prefix": "/v1/transfers", "action": "status",
            "status": 500, "times": 1,
            "headers": {"Retry-After": "2", "Stripe-Should-Retry": "true"}})
    r = create("f500-1")
    eq(r.status, 500, "scripted 500")
    eq(r.json()["error"]["type"], "api_error", "500 default type api_error")
    eq(r.header("Retry-After"), "2", "scripted Retry-After header")
    eq(r.header("Stripe-Should-Retry"), "true", "scripted Stripe-Should-Retry header")
    eq(len(transfers()), 0, "scripted 500 commits nothing")
    r = create("f500-1")
    eq(r.status, 200, "retry with the same key succeeds")
    eq(r.header("Idempotent-Replayed"), None, "the 500 was not stored under the key")
    r2 = create("f500-1")
    eq(r2.header("Idempotent-Replayed"), "true", "later retries replay")
    check(r2.body == r.body, "replay identical")
    eq(len(transfers()), 1, "exactly one transfer after 500 + retries")
    log = requests_log()
    eq(log[0]["rule"]["action"], "status", "log records the fired rule")
    eq(log[0]["status"], 500, "log records scripted status")
    eq(log[1]["rule"], None, "rule consumed after one use")


def test_fault_429_and_others():
    reset()
    script({"method": "POST", "path_prefix": "/v1/transfers", "action": "status",
            "status": 429, "headers": {"Retry-After": "1"}})
    r = create("f429-1")
    eq(r.status, 429, "scripted 429")
    eq(r.json()["error"]["type"], "rate_limit_error", "429 default type")
    eq(r.header("Retry-After"), "1", "429 Retry-After")
    r = create("f429-1")
    eq(r.status, 200, "after 429 the same key succeeds")
    eq(len(transfers()), 1, "one transfer after 429")

    script({"method": "POST", "path_prefix": "/v1/transfers", "action": "status",
            "status": 402},
           {"method": "POST", "path_prefix": "/v1/transfers", "action": "status",
            "status": 400},
           {"method": "POST", "path_prefix": "/v1/transfers", "action": "status",
            "status": 400, "error_type": "invalid_request_error",
            "code": "balance_insufficient", "message": "Insufficient funds."},
           {"method": "POST", "path_prefix": "/v1/transfers", "action": "status",
            "status": 502, "headers": {"Stripe-Should-Retry": "false"}})
    r = create("f4xx-1")
    eq((r.status, r.json()["error"]["type"]), (402, "card_error"), "402 default card_error")
    r = create("f4xx-1")
    eq((r.status, r.json()["error"]["type"]), (400, "invalid_request_error"),
       "400 default invalid_request_error")
    r = create("f4xx-1")
    eq((r.status, r.json()["error"].get("code"), r.json()["error"]["message"]),
       (400, "balance_insufficient", "Insufficient funds."), "custom code/message")
    r = create("f4xx-1")
    eq((r.status, r.json()["error"]["type"], r.header("Stripe-Should-Retry")),
       (502, "api_error", "false"), "502 with Stripe-Should-Retry: false")
    r = create("f4xx-1")
    eq(r.status, 200, "scripted 4xx errors were not stored under the key")
    eq(len(transfers()), 2, "one more transfer")


def test_rule_matching():
    reset()
    script({"method": "POST", "path_prefix": "/v1/transfers", "action": "status",
            "status": 503, "times": 2},
           {"method": "POST", "path_prefix": "/v1/transfers", "action": "status",
            "status": 502})
    script({"method": "GET", "path_prefix": "/v1/transfers", "action": "status",
            "status": 500})
    seq = [create("rm-1").status for _ in range(4)]
    eq(seq, [503, 503, 502, 200], "rules consumed in order, times respected")
    eq(call("GET", "/v1/transfers").status, 500, "GET rule fires only for GET")
    eq(call("GET", "/v1/transfers").status, 200, "GET rule consumed")

    script({"method": "POST", "path_prefix": "/v1/transfers/", "action": "status",
            "status": 500}, replace=True)
    eq(create("rm-2").status, 200, "prefix '/v1/transfers/' does not match /v1/transfers")
    tid = transfers()[0]["id"]
    r = call("POST", f"/v1/transfers/{tid}/reversals", [("amount", "1")], idem="rm-rev")
    eq(r.status, 500, "prefix rule matches the reversal path")
    rules = ctl("GET", "script")["rules"]
    eq([(x["remaining"], x["fired"]) for x in rules], [(0, 1)], "GET /__control/script state")

    # rule validation
    for bad in ({"action": "explode"}, {"action": "status", "status": 200},
                {"action": "status"}, {"action": "timeout"},
                {"action": "status", "status": 500, "times": 0},
                {"action": "status", "status": 500, "headers": {"Bad\r\nHeader": "x"}},
                {"action": "drop_before_commit", "seconds": 3}):
        r = control("POST", "script", {"rules": [bad]})
        eq(r.status, 400, f"invalid rule {bad} rejected")
    eq(control("POST", "script", {"rules": "nope"}).status, 400, "rules must be a list")
    eq(control("POST", "script", raw=b"{not json").status, 400, "bad JSON -> 400")
    eq(len(ctl("GET", "script")["rules"]), 1, "invalid scripts added nothing")


def test_fault_timeout():
    reset()
    script({"method": "POST", "path_prefix": "/v1/transfers", "action": "timeout",
            "seconds": 1.5})
    t0 = time.monotonic()
    r = call("POST", "/v1/transfers", tparams(amount=777), idem="to-1", timeout=0.5)
    elapsed = time.monotonic() - t0
    check(is_network_error(r), f"client times out ({r!r})")
    check(elapsed < 1.4, f"client gave up before the server finished ({elapsed:.2f}s)")
    # Stripe is still working on it: a retry now hits the in-progress lock
    r = create("to-1", amount=777)
    eq(r.status, 409, "retry while the slow request is in flight -> 409")
    err = r.json()["error"]
    eq((err["type"], err.get("code")), ("idempotency_error", "idempotency_key_in_use"),
       "409 error type/code")
    check("another in-progress request using this Idempotent Key" in err["message"],
          "409 message")
    eq(r.header("Stripe-Should-Retry"), "true", "409 says retry")
    eq(len(transfers()), 0, "not committed yet while sleeping")
    ts = wait_for(lambda: transfers() or None, "the slow request to commit")
    eq(len(ts), 1, "slow request committed after the sleep")
    r = create("to-1", amount=777)
    eq(r.status, 200, "retry after commit")
    eq(r.header("Idempotent-Replayed"), "true", "retry after commit is the replay")
    eq(r.json()["id"], ts[0]["id"], "replay returns the committed transfer")
    eq(len(transfers()), 1, "exactly one transfer after timeout + retries")
    entry = wait_for(lambda: (lambda l: l[0] if l[0]["status"] is not None else None)(
        requests_log()), "log entry of the slow request")
    eq((entry["client_hung_up"], entry["delivered"], entry["rule"]["action"]),
       (True, False, "timeout"), "log: slow request's client hung up")

    # a patient client just sees a slow success
    script({"method": "POST", "path_prefix": "/v1/transfers", "action": "timeout",
            "seconds": 0.3})
    t0 = time.monotonic()
    r = create("to-2")
    eq(r.status, 200, "patient client gets the response")
    check(time.monotonic() - t0 >= 0.3, "the response was delayed")
    eq(len(transfers()), 2, "second transfer")


def test_fault_drop_before_commit():
    reset()
    script({"method": "POST", "path_prefix": "/v1/transfers", "action": "drop_before_commit"})
    r = create("dbc-1")
    check(is_network_error(r), f"drop_before_commit -> network error ({r!r})")
    check(isinstance(r.error, (http.client.RemoteDisconnected, ConnectionError))
          or isinstance(getattr(r.error, "reason", None), ConnectionError),
          f"connection closed without response ({r.error!r})")
    eq(len(transfers()), 0, "drop_before_commit commits nothing")
    r = create("dbc-1")
    eq(r.status, 200, "retry with same key succeeds")
    eq(r.header("Idempotent-Replayed"), None, "retry executed fresh")
    eq(len(transfers()), 1, "exactly one transfer")
    eq(requests_log()[0]["status"], "dropped", "log status 'dropped'")

    # the socket is really closed: raw client sees EOF, no bytes, no hang
    script({"method": "POST", "path_prefix": "/v1/transfers", "action": "drop_before_commit"})
    body = urllib.parse.urlencode(tparams()).encode()
    raw = (b"POST /v1/transfers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode()
           + b"\r\nIdempotency-Key: dbc-raw\r\nContent-Type: application/x-www-form-urlencoded"
           + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    t0 = time.monotonic()
    got, eof = raw_exchange(raw, timeout=3)
    eq(got, b"", "no response bytes at all on drop")
    check(eof and time.monotonic() - t0 < 2, "socket closed promptly (keep-alive not held)")


def test_fault_drop_after_commit():
    reset()
    script({"method": "POST", "path_prefix": "/v1/transfers", "action": "drop_after_commit"})
    r = create("dac-1")
    check(is_network_error(r), f"drop_after_commit -> network error ({r!r})")
    ts = transfers()
    eq(len(ts), 1, "drop_after_commit did commit")
    r = create("dac-1")
    eq(r.status, 200, "retry after drop_after_commit")
    eq(r.header("Idempotent-Replayed"), "true", "retry gets the replay")
    eq(r.json()["id"], ts[0]["id"], "replay is the committed transfer")
    eq(len(transfers()), 1, "still exactly one transfer")
    e = requests_log()[0]
    eq((e["status"], e.get("committed_status")), ("dropped", 200), "log: dropped after commit")


def test_fault_committed_500():
    reset()
    script({"method": "POST", "path_prefix": "/v1/transfers", "action": "committed_500"})
    r = create("c500-1")
    eq(r.status, 500, "committed_500 answers 500")
    eq(r.json()["error"]["type"], "api_error", "committed_500 type")
    ts = transfers()
    eq(len(ts), 1, "committed_500 did commit")
    r = create("c500-1")
    eq(r.status, 200, "retry after committed_500 -> stored success")
    eq(r.header("Idempotent-Replayed"), "true", "retry is the replay")
    eq(r.json()["id"], ts[0]["id"], "replayed transfer id")
    eq(len(transfers()), 1, "exactly one transfer")


def parallel(n, fn):
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_concurrency():
    reset()
    # the first request to arrive is slow; all others race it with the same key
    script({"method": "POST", "path_prefix": "/v1/transfers", "action": "timeout",
            "seconds": 0.6})
    res = parallel(8, lambda i: create("conc-1"))
    statuses = sorted(r.status for r in res)
    check(set(statuses) <= {200, 409}, f"concurrent same-key statuses are 200/409: {statuses}")
    check(200 in statuses, f"at least one concurrent request succeeded: {statuses}")
    check(409 in statuses, f"in-flight duplicates see 409: {statuses}")
    bodies = {r.body for r in res if r.status == 200}
    eq(len(bodies), 1, "every 200 carries the same transfer")
    eq(len(transfers()), 1, "concurrent same-key requests create exactly one transfer")
    r = create("conc-1")
    check(r.status == 200 and r.header("Idempotent-Replayed") == "true" and r.body in bodies,
          "retry after the race replays the one transfer")

    # no scripted delay, only latency: still never two transfers
    reset()
    ctl("POST", "latency", {"ms": 30})
    res = parallel(12, lambda i: create("conc-2"))
    statuses = sorted(r.status for r in res)
    check(set(statuses) <= {200, 409}, f"racing same-key statuses: {statuses}")
    eq(len(transfers()), 1, "racing same-key requests create exactly one transfer")
    ctl("POST", "latency", {"ms": 0})

    # many distinct keys at once: the server really is concurrent
    reset()
    ctl("POST", "latency", {"ms": 200})
    t0 = time.monotonic()
    res = parallel(40, lambda i: create(f"many-{i}", amount=100 + i))
    elapsed = time.monotonic() - t0
    ctl("POST", "latency", {"ms": 0})
    eq(sorted(r.status for r in res), [200] * 40, "40 concurrent distinct creates succeed")
    eq(len({r.json()["id"] for r in res}), 40, "40 distinct transfer ids")
    eq(len(transfers()), 40, "40 transfers stored")
    check(elapsed < 4.0, f"requests were served concurrently ({elapsed:.2f}s for 40x200ms)")


def test_reversals():
    reset()
    t = create("rev-t", amount=1000).json()
    tid = t["id"]
    r = call("POST", f"/v1/transfers/{tid}/reversals",
             [("amount", "300"), ("metadata[reason]", "refund")], idem="rev-1")
    eq(r.status, 200, f"partial reversal ({r.body[:200]!r})")
    rv = r.json()
    check(re.fullmatch(r"trr_[A-Za-z0-9]+", rv["id"]), f"reversal id {rv['id']}")
    eq((rv["object"], rv["amount"], rv["currency"], rv["transfer"], rv["metadata"]),
       ("transfer_reversal", 300, "usd", tid, {"reason": "refund"}), "reversal object")
    check(isinstance(rv["created"], int), "reversal created ts")
    g = call("GET", f"/v1/transfers/{tid}").json()
    eq((g["amount_reversed"], g["reversed"]), (300, False), "transfer after partial reversal")
    eq(g["reversals"]["total_count"], 1, "embedded reversals list")

    r2 = call("POST", f"/v1/transfers/{tid}/reversals",
              [("amount", "300"), ("metadata[reason]", "refund")], idem="rev-1")
    check(r2.body == r.body and r2.header("Idempotent-Replayed") == "true",
          "reversal replay is identical")

    r = call("POST", f"/v1/transfers/{tid}/reversals", [("amount", "701")], idem="rev-2")
    eq(r.status, 400, "over-reversal -> 400")
    eq(r.json()["error"]["type"], "invalid_request_error", "over-reversal type")
    eq(r.json()["error"].get("param"), "amount", "over-reversal param")

    r = call("POST", f"/v1/transfers/{tid}/reversals", [], idem="rev-3")
    eq(r.status, 200, "reverse the remainder")
    eq(r.json()["amount"], 700, "default amount is what remains")
    g = call("GET", f"/v1/transfers/{tid}").json()
    eq((g["amount_reversed"], g["reversed"]), (1000, True), "fully reversed transfer")

    r = call("POST", f"/v1/transfers/{tid}/reversals", [], idem="rev-4")
    eq(r.status, 400, "reversing a fully reversed transfer -> 400")
    r = call("POST", f"/v1/transfers/{tid}/reversals", [("amount", "0")], idem="rev-5")
    eq(r.status, 400, "zero reversal -> 400")

    r = call("POST", "/v1/transfers/tr_nope/reversals", [], idem="rev-6")
    eq(r.status, 404, "reversal of unknown transfer -> 404")
    eq((r.json()["error"]["type"], r.json()["error"]["code"], r.json()["error"]["param"]),
       ("invalid_request_error", "resource_missing", "id"), "unknown transfer error")

    lst = call("GET", f"/v1/transfers/{tid}/reversals").json()
    eq([x["amount"] for x in lst["data"]], [700, 300], "reversal list newest first")
    one = call("GET", f"/v1/transfers/{tid}/reversals/{rv['id']}")
    eq((one.status, one.json()["amount"]), (200, 300), "retrieve a reversal")

    ts = transfers()
    eq(len(ts[0]["reversals"]), 2, "control view lists reversals")
    eq([x["idempotency_key"] for x in ts[0]["reversals"]], ["rev-1", "rev-3"],
       "control view records reversal keys")
    eq(stats()["reversals"], 2, "stats.reversals")


def test_list_and_update():
    reset()
    ids = []
    for i in range(3):
        ids.append(create(f"lg-{i}", amount=10 + i, group="grpA").json()["id"])
        time.sleep(0.01)
    other = create("lg-x", group="grpB").json()["id"]
    create("lg-y", group=None)
    r = call("GET", "/v1/transfers", [("transfer_group", "grpA"), ("limit", "10")])
    eq(r.status, 200, "list status")
    body = r.json()
    eq((body["object"], body["url"], body["has_more"]), ("list", "/v1/transfers", False),
       "list envelope")
    eq([t["id"] for t in body["data"]], list(reversed(ids)), "list by group, newest first")
    r = call("GET", "/v1/transfers", [("transfer_group", "grpA"), ("limit", "2")]).json()
    eq(([t["id"] for t in r["data"]], r["has_more"]), (list(reversed(ids))[:2], True),
       "limit=2 with has_more")
    r = call("GET", "/v1/transfers", [("transfer_group", "grpA"),
                                     ("starting_after", ids[1])]).json()
    eq([t["id"] for t in r["data"]], [ids[0]], "starting_after pagination")
    r = call("GET", "/v1/transfers", [("transfer_group", "grpB")]).json()
    eq([t["id"] for t in r["data"]], [other], "other group")
    eq(len(call("GET", "/v1/transfers").json()["data"]), 5, "unfiltered list")
    eq(call("GET", "/v1/transfers", [("limit", "0")]).status, 400, "limit=0 -> 400")
    eq(call("GET", "/v1/transfers", [("limit", "101")]).status, 400, "limit=101 -> 400")
    eq(call("GET", "/v1/transfers", [("nope", "1")]).status, 400, "unknown list param")

    r = call("POST", f"/v1/transfers/{other}", [("metadata[note]", "x"),
                                               ("metadata[event_id]", "")], idem="upd-1")
    eq(r.status, 200, "update transfer")
    eq(r.json()["metadata"], {"payout_id": "payout-1", "note": "x"},
       "metadata merged, empty value unsets")


def test_latency():
    reset()
    eq(ctl("POST", "latency", {"ms": 20})["latency_ms"], 20, "set latency")
    eq(ctl("GET", "latency")["latency_ms"], 20, "get latency")
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        eq(call("GET", "/v1/transfers").status, 200, "GET under latency")
        times.append(time.monotonic() - t0)
    check(min(times) >= 0.020, f"latency applied (min {min(times) * 1000:.1f} ms)")
    eq(control("POST", "latency", {"ms": -1}).status, 400, "negative latency rejected")
    eq(control("POST", "latency", {"ms": "fast"}).status, 400, "non-number latency rejected")
    ctl("POST", "latency", {"ms": 0})
    t0 = time.monotonic()
    call("GET", "/v1/transfers")
    check(time.monotonic() - t0 < 0.5, "latency back to 0")


def test_robustness():
    reset()
    r = call("POST", "/v1/transfers", raw_body=b"amount=%ff%fe&currency=usd", idem="rb-1",
             content_type="application/x-www-form-urlencoded")
    eq(r.status, 400, "invalid UTF-8 in form -> 400")
    eq(r.json()["error"]["type"], "invalid_request_error", "bad form type")
    r = call("POST", "/v1/transfers", raw_body=b"amount", idem="rb-2",
             content_type="application/x-www-form-urlencoded")
    eq(r.status, 400, "form field without '=' -> 400")
    r = call("POST", "/v1/transfers", raw_body=b'{"amount": 5}', idem="rb-3",
             content_type="application/json")
    eq(r.status, 400, "JSON body on /v1 -> 400")
    r = call("POST", "/v1/transfers", raw_body=b"metadata[a]=1&metadata=2&amount=1", idem="rb-4",
             content_type="application/x-www-form-urlencoded")
    eq(r.status, 400, "conflicting nested params -> 400")
    r = call("GET", "/v1/nope")
    eq(r.status, 404, "unknown /v1 path -> 404")
    check("Unrecognized request URL" in r.json()["error"]["message"], "404 message")
    eq(r.json()["error"]["type"], "invalid_request_error", "404 type")
    r = call("DELETE", "/v1/transfers")
    eq(r.status, 404, "unsupported method on a known path -> 404")
    r = call("GET", "/nope")
    eq(r.status, 404, "unknown top-level path -> 404 JSON")
    r.json()
    r = control("GET", "nope")
    eq(r.status, 404, "unknown control endpoint -> 404")
    eq(control("POST", "reset", raw=b"[1,").status, 400, "bad JSON on reset -> 400")
    eq(control("POST", "latency", raw=b"\xff\xfe").status, 400, "binary body on control -> 400")

    got, eof = raw_exchange(b"POST /v1/transfers HTTP/1.1\r\nHost: x\r\nContent-Length: abc"
                            b"\r\n\r\n", timeout=3)
    check(got.startswith(b"HTTP/1.1 400") and eof, f"bad Content-Length -> 400 + close "
                                                   f"({got[:60]!r})")
    got, eof = raw_exchange(b"\x00\x01garbage\r\n\r\n", timeout=3)
    check(got.startswith(b"HTTP/1.1 400") or got.startswith(b"HTTP/1.0 400"),
          f"garbage request line -> 400 ({got[:60]!r})")
    check(b'"error"' in got, "garbage request answered with JSON")
    got, eof = raw_exchange(b"BREW /v1/transfers HTTP/1.1\r\nHost: x\r\n\r\n", timeout=3)
    check(got.startswith(b"HTTP/1.1 501") and b'"error"' in got, "unknown method -> 501 JSON")
    # chunked bodies are understood
    body = urllib.parse.urlencode(tparams()).encode()
    raw = (b"POST /v1/transfers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode()
           + b"\r\nIdempotency-Key: rb-chunked\r\nTransfer-Encoding: chunked\r\n"
           + b"Connection: close\r\n\r\n"
           + f"{len(body[:10]):x}\r\n".encode() + body[:10] + b"\r\n"
           + f"{len(body[10:]):x}\r\n".encode() + body[10:] + b"\r\n0\r\n\r\n")
    got, eof = raw_exchange(raw, timeout=3)
    check(got.startswith(b"HTTP/1.1 200"), f"chunked POST works ({got[:60]!r})")
    eq(control("GET", "health").status, 200, "server alive after malformed input")


def test_keepalive():
    reset()
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
    hdrs = {"Authorization": f"Bearer {KEY}"}
    conn.request("GET", "/v1/transfers", headers=hdrs)
    r1 = conn.getresponse()
    b1 = r1.read()
    sock1 = conn.sock
    name1 = sock1.getsockname() if sock1 else None
    eq(r1.status, 200, "keep-alive first request")
    eq(int(r1.getheader("Content-Length")), len(b1), "keep-alive Content-Length")
    check(r1.getheader("Connection") != "close", "server keeps the connection open")
    body = urllib.parse.urlencode(tparams())
    conn.request("POST", "/v1/transfers", body=body, headers={
        **hdrs, "Idempotency-Key": "ka-1",
        "Content-Type": "application/x-www-form-urlencoded"})
    r2 = conn.getresponse()
    r2.read()
    eq(r2.status, 200, "keep-alive POST")
    conn.request("GET", "/v1/nothing-here", headers=hdrs)
    r3 = conn.getresponse()
    r3.read()
    eq(r3.status, 404, "keep-alive 404")
    conn.request("GET", "/v1/transfers", headers=hdrs)
    r4 = conn.getresponse()
    r4.read()
    eq(r4.status, 200, "keep-alive fourth request")
    check(conn.sock is sock1 and conn.sock.getsockname() == name1,
          "all four requests used one TCP connection")
    conn.close()


def test_stats_and_log_fields():
    reset()
    create("st-1")
    create("st-1")
    call("GET", "/v1/transfers", key=WRONG_KEY)
    create("st-1", amount=2)
    s = stats()
    eq({k: s[k] for k in ("requests", "transfers", "reversals", "replays", "rejected_auth",
                          "idempotency_conflicts")},
       {"requests": 4, "transfers": 1, "reversals": 0, "replays": 1, "rejected_auth": 1,
        "idempotency_conflicts": 1}, "stats counters")
    log = requests_log()
    eq([e["seq"] for e in log], [1, 2, 3, 4], "log in arrival order")
    need = {"method", "path", "params", "idempotency_key", "auth_valid", "rule", "status",
            "replayed"}
    check(all(need <= set(e) for e in log), "log entries carry all documented fields")
    eq([e["status"] for e in log], [200, 200, 401, 400], "log statuses")


def test_reset():
    create("rs-1")
    script({"action": "status", "status": 500, "times": 5})
    ctl("POST", "latency", {"ms": 5})
    reset()
    eq(transfers(), [], "reset clears transfers")
    eq(requests_log(), [], "reset clears the request log")
    eq(ctl("GET", "script")["rules"], [], "reset clears rules")
    eq(ctl("GET", "latency")["latency_ms"], 0, "reset restores the startup latency")
    s = stats()
    check(all(s[k] == 0 for k in ("requests", "transfers", "reversals", "replays",
                                  "rejected_auth", "idempotency_conflicts")),
          f"reset clears stats: {s}")
    r = create("rs-1")
    check(r.status == 200 and r.header("Idempotent-Replayed") is None,
          "reset forgets idempotency keys")


def test_cli(tmpdir):
    # refuses a live key
    p = subprocess.run([sys.executable, FAKE, "--port", "0", "--key", "sk_live_abcdefgh1234"],
                       capture_output=True, timeout=20)
    check(p.returncode == 2 and b"listening" not in p.stdout, "refuses a live-mode key")
    # --latency-ms and SIGINT on a second instance
    proc, port = start_server(["--latency-ms", "30"], os.path.join(tmpdir, "second.err"))
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/transfers",
                                     headers={"Authorization": f"Bearer {KEY}"})
        t0 = time.monotonic()
        with OPENER.open(req, timeout=5) as r:
            r.read()
        check(time.monotonic() - t0 >= 0.030, "--latency-ms applies")
        proc.send_signal(signal.SIGINT)
        eq(proc.wait(10), 0, "SIGINT exits cleanly with status 0")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------


def start_server(extra, stderr_path):
    errf = open(stderr_path, "wb")
    proc = subprocess.Popen([sys.executable, FAKE, "--port", "0", "--key", KEY] + extra,
                            stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL)
    errf.close()
    deadline = time.monotonic() + 15
    line = b""
    while time.monotonic() < deadline and not line.endswith(b"\n"):
        r, _, _ = select.select([proc.stdout], [], [], 0.2)
        if r:
            c = os.read(proc.stdout.fileno(), 1)
            if not c:
                break
            line += c
        elif proc.poll() is not None:
            break
    m = re.fullmatch(rb"listening on 127\.0\.0\.1:(\d+)\n", line)
    if not m:
        proc.kill()
        with open(stderr_path, "rb") as f:
            err = f.read()
        raise SelfTestFailure(f"bad first stdout line {line!r}; stderr: {err[-2000:]!r}")
    return proc, int(m.group(1))


def main() -> int:
    global BASE, PORT
    t_start = time.monotonic()
    tmpdir = tempfile.mkdtemp(prefix="fake_stripe_selftest_")
    err_path = os.path.join(tmpdir, "server.err")
    proc, PORT = start_server(["--verbose"], err_path)
    BASE = f"http://127.0.0.1:{PORT}"
    tests = [
        ("startup/binding", lambda: test_startup_and_binding(proc)),
        ("auth", test_auth),
        ("missing idempotency key", test_missing_idempotency_key),
        ("create + replay", test_create_and_replay),
        ("idempotency mismatch", test_idempotency_mismatch),
        ("validation", test_validation),
        ("fault status 500", test_fault_status_500),
        ("fault 429/4xx/502", test_fault_429_and_others),
        ("rule matching", test_rule_matching),
        ("fault timeout", test_fault_timeout),
        ("fault drop_before_commit", test_fault_drop_before_commit),
        ("fault drop_after_commit", test_fault_drop_after_commit),
        ("fault committed_500", test_fault_committed_500),
        ("concurrency", test_concurrency),
        ("reversals", test_reversals),
        ("list + update", test_list_and_update),
        ("latency", test_latency),
        ("robustness", test_robustness),
        ("keep-alive", test_keepalive),
        ("stats + log", test_stats_and_log_fields),
        ("reset", test_reset),
        ("cli", lambda: test_cli(tmpdir)),
    ]
    failed = None
    try:
        for name, fn in tests:
            try:
                fn()
            except Exception as exc:  # noqa: BLE001
                failed = (name, exc)
                break
        if failed is None:
            # clean shutdown on SIGTERM, nothing else ever written to stdout
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(10)
            except subprocess.TimeoutExpired:
                rc = None
            try:
                eq(rc, 0, "SIGTERM exits cleanly with status 0")
                eq(proc.stdout.read(), b"", "nothing on stdout after the listening line")
                with open(err_path, "rb") as f:
                    err = f.read()
                check(KEY.encode() not in err and WRONG_KEY.encode() not in err
                      and b"Bearer" not in err and b"Authorization" not in err,
                      "server stderr (--verbose) never contains keys or Authorization")
                check(b"Traceback" not in err, f"no tracebacks in server stderr: {err[-1500:]!r}")
                s = socket.socket()
                try:
                    s.settimeout(1)
                    check(s.connect_ex(("127.0.0.1", PORT)) != 0, "port closed after exit")
                finally:
                    s.close()
            except Exception as exc:  # noqa: BLE001
                failed = ("shutdown", exc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed = time.monotonic() - t_start
    if failed is not None:
        name, exc = failed
        if not isinstance(exc, SelfTestFailure):
            traceback.print_exception(exc)
        try:
            with open(err_path, "rb") as f:
                tail = f.read()[-1500:].decode("utf-8", "replace")
            if tail:
                print("--- server stderr (tail) ---\n" + tail, file=sys.stderr)
        except OSError:
            pass
        print(f"fake_stripe selftest FAILED in section '{name}': {exc} "
              f"({CHECKS} checks passed before, {elapsed:.1f}s; server stderr in {tmpdir})")
        return 1
    shutil.rmtree(tmpdir, ignore_errors=True)
    print(f"fake_stripe selftest OK: {len(tests)} sections, {CHECKS} checks passed "
          f"in {elapsed:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
