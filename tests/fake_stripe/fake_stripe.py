#!/usr/bin/env python3
"""Scripted fake of the small slice of Stripe Connect that organizer payouts use.

Standard library only (Python 3.11+).  Binds 127.0.0.1 and nothing else.

    python3 fake_stripe.py --port 0 --key sk_test_XXXX [--latency-ms 0] [--verbose]

The first line on stdout is exactly ``listening on 127.0.0.1:<port>``; nothing
else is ever written to stdout (a harness may stop reading the pipe).  With
--verbose, one line per request goes to stderr (never any header values).

Stripe-like API (form-encoded bodies, Bearer auth, Idempotency-Key):
    POST /v1/transfers                           create a transfer
    GET  /v1/transfers                           list (transfer_group, destination,
                                                 created, limit, starting_after,
                                                 ending_before), newest first
    GET  /v1/transfers/{id}                      retrieve
    POST /v1/transfers/{id}                      update description / metadata
    POST /v1/transfers/{id}/reversals            reverse (all that remains, or amount)
    GET  /v1/transfers/{id}/reversals            list reversals, newest first
    GET  /v1/transfers/{id}/reversals/{trr_id}   retrieve one reversal

Control API (no auth; JSON):
    POST /__control/script    {"rules": [...], "replace": false}  append fault rules
    GET  /__control/script    rules with the number of uses left
    POST /__control/latency   {"ms": 20}   delay applied to every /v1 request
    GET  /__control/latency
    POST /__control/reset     forget everything (latency back to --latency-ms)
    GET  /__control/transfers every transfer with its idempotency key, params, reversals
    GET  /__control/requests  the /v1 request log, in arrival order
    GET  /__control/stats     counters
    GET  /__control/health    {"ok": true}

See README.md next to this file for the fault actions.
"""

from __future__ import annotations

import argparse
import base64
import collections
import copy
import hmac
import http.server
import json
import re
import secrets
import select
import signal
import socket
import socketserver
import string
import sys
import threading
import time
import traceback
import urllib.parse

DEFAULT_STRIPE_VERSION = "2024-06-20"
MAX_BODY = 1 << 20  # 1 MiB is far more than any Stripe request needs
MAX_IDEMPOTENCY_KEY = 255
ALNUM = string.ascii_letters + string.digits

ACCOUNT_RE = re.compile(r"^acct_[A-Za-z0-9]+$")
CURRENCY_RE = re.compile(r"^[a-z]{3}$")
INT_RE = re.compile(r"^[0-9]{1,18}$")
PARAM_NAME_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
PARAM_SUB_RE = re.compile(r"\[([^\[\]]*)\]")
KEY_PREFIX_RE = re.compile(r"^((?:sk|rk|pk)_(?:test|live)_)")
HEADER_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

ACTIONS = ("status", "timeout", "drop_before_commit", "drop_after_commit", "committed_500")

ROUTE_TRANSFERS = re.compile(r"^/v1/transfers$")
ROUTE_TRANSFER = re.compile(r"^/v1/transfers/([^/]+)$")
ROUTE_REVERSALS = re.compile(r"^/v1/transfers/([^/]+)/reversals$")
ROUTE_REVERSAL = re.compile(r"^/v1/transfers/([^/]+)/reversals/([^/]+)$")


def rand_id(prefix: str, n: int = 24) -> str:
    return prefix + "".join(secrets.choice(ALNUM) for _ in range(n))


def dumps(obj) -> bytes:
    """Stripe answers pretty-printed JSON; so does the fake."""
    return (json.dumps(obj, indent=2) + "\n").encode("utf-8")


def mask_key(key: str) -> str:
    """Mask an API key the way Stripe does: ``sk_test_****1234``.

    The last four characters are shown only when the secret part is long enough
    that four characters reveal little; the full key is never echoed."""
    m = KEY_PREFIX_RE.match(key)
    prefix = m.group(1) if m else ""
    rest = key[len(prefix):]
    last4 = rest[-4:] if len(rest) > 8 else ""
    last4 = "".join(c if c in ALNUM else "*" for c in last4)
    return f"{prefix}****{last4}"


# --------------------------------------------------------------------------
# Errors and parameter parsing
# --------------------------------------------------------------------------


class ApiError(Exception):
    """A Stripe-style error response."""

    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict:
        err = {"type": self.type}
        if self.code is not None:
            err["code"] = self.code
        if self.param is not None:
            err["param"] = self.param
        err["message"] = self.message
        return {"error": err}


def bad_param(message: str, param: str, code: str = "parameter_invalid") -> ApiError:
    return ApiError(400, message, code=code, param=param)


def parse_form(raw: str, where: str) -> list[tuple[str, str]]:
    # tolerate empty segments ("a=1&&b=2", a trailing "&") like Rack does
    raw = "&".join(seg for seg in raw.split("&") if seg)
    if not raw:
        return []
    try:
        return urllib.parse.parse_qsl(raw, keep_blank_values=True, strict_parsing=True,
                                      encoding="utf-8", errors="strict", max_num_fields=2000)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"Invalid request: could not decode the {where} as "
                            f"application/x-www-form-urlencoded ({exc.__class__.__name__}).",
                       code="parameter_invalid") from None


def nest_params(pairs: list[tuple[str, str]]) -> dict:
    """Turn Stripe/Rack style ``metadata[a]=1&expand[]=x`` pairs into nested dicts."""
    root: dict = {}
    for name, value in pairs:
        m = PARAM_NAME_RE.match(name)
        if not m:
            raise bad_param(f"Invalid parameter name: {name!r}", name)
        parts = [m.group(1)] + PARAM_SUB_RE.findall(m.group(2))
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":
                if not last or not isinstance(node, list):
                    raise bad_param(f"Invalid array parameter: {name!r}", parts[0])
                node.append(value)
                break
            if not isinstance(node, dict):
                raise bad_param(f"Invalid parameter nesting: {name!r}", parts[0])
            if last:
                if isinstance(node.get(part), (dict, list)):
                    raise bad_param(f"Invalid object: {name!r} given both as a hash and a "
                                    f"string", parts[0])
                node[part] = value
            else:
                want_list = parts[i + 1] == ""
                child = node.get(part)
                if child is None:
                    child = [] if want_list else {}
                    node[part] = child
                elif want_list != isinstance(child, list) or isinstance(child, str):
                    raise bad_param(f"Invalid object: conflicting values for {name!r}", parts[0])
                node = child
    return root


def check_unknown(params: dict, allowed: set[str]) -> None:
    for k in params:
        if k not in allowed:
            raise bad_param(f"Received unknown parameter: {k}", k, "parameter_unknown")


def get_positive_int(params: dict, name: str, required: bool) -> int | None:
    v = params.get(name)
    if v is None or v == "":
        if required:
            raise bad_param(f"Missing required param: {name}.", name, "parameter_missing")
        return None
    if not isinstance(v, str) or not INT_RE.match(v):
        raise bad_param(f"Invalid integer: {v if isinstance(v, str) else json.dumps(v)}",
                        name, "parameter_invalid_integer")
    n = int(v)
    if n < 1:
        raise bad_param("This value must be greater than or equal to 1.", name,
                        "parameter_invalid_integer")
    return n


def get_string(params: dict, name: str) -> str | None:
    v = params.get(name)
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise bad_param(f"Invalid string: {name} must be a string", name,
                        "parameter_invalid_string")
    return v


def get_metadata(params: dict) -> dict:
    md = params.get("metadata")
    if md is None or md == "":
        return {}
    if not isinstance(md, dict):
        raise bad_param("Invalid object: metadata must be a hash (metadata[key]=value)",
                        "metadata")
    if len(md) > 50:
        raise bad_param("Invalid metadata: at most 50 keys are allowed", "metadata")
    out = {}
    for k, v in md.items():
        if not isinstance(v, str):
            raise bad_param(f"Invalid metadata value for {k!r}: must be a string",
                            f"metadata[{k}]")
        if len(k) > 40:
            raise bad_param(f"Invalid metadata key {k!r}: keys can be at most 40 characters",
                            f"metadata[{k}]")
        if len(v) > 500:
            raise bad_param(f"Invalid metadata value for {k!r}: values can be at most 500 "
                            f"characters", f"metadata[{k}]")
        if v != "":  # like Stripe: an empty value means "unset"
            out[k] = v
    return out


def list_limit(params: dict) -> int:
    v = params.get("limit")
    if v is None or v == "":
        return 10
    if not isinstance(v, str) or not INT_RE.match(v):
        raise bad_param(f"Invalid integer: {v}", "limit", "parameter_invalid_integer")
    n = int(v)
    if n < 1 or n > 100:
        raise bad_param("This value must be between 1 and 100.", "limit",
                        "parameter_invalid_integer")
    return n


def paginate(items: list, params: dict, id_of, not_found_kind: str):
    """items newest first. Returns (page, has_more)."""
    limit = list_limit(params)
    after = get_string(params, "starting_after")
    before = get_string(params, "ending_before")
    ids = [id_of(x) for x in items]
    if after is not None:
        if after not in ids:
            raise ApiError(400, f"No such {not_found_kind}: '{after}'", code="resource_missing",
                           param="starting_after")
        rest = items[ids.index(after) + 1:]
        return rest[:limit], len(rest) > limit
    if before is not None:
        if before not in ids:
            raise ApiError(400, f"No such {not_found_kind}: '{before}'", code="resource_missing",
                           param="ending_before")
        rest = items[:ids.index(before)]
        return rest[-limit:], len(rest) > limit
    return items[:limit], len(items) > limit


def created_filter(params: dict):
    c = params.get("created")
    if c is None or c == "":
        return lambda ts: True
    if isinstance(c, str):
        if not INT_RE.match(c):
            raise bad_param(f"Invalid integer: {c}", "created", "parameter_invalid_integer")
        t = int(c)
        return lambda ts: ts == t
    if not isinstance(c, dict):
        raise bad_param("Invalid created filter", "created")
    ops = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
           "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}
    conds = []
    for k, v in c.items():
        if k not in ops:
            raise bad_param(f"Received unknown parameter: created[{k}]", f"created[{k}]",
                            "parameter_unknown")
        if not isinstance(v, str) or not INT_RE.match(v):
            raise bad_param(f"Invalid integer: {v}", f"created[{k}]",
                            "parameter_invalid_integer")
        conds.append((ops[k], int(v)))
    return lambda ts: all(op(ts, t) for op, t in conds)


# --------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------


class StoredResponse:
    __slots__ = ("status", "body", "headers", "request_id")

    def __init__(self, status: int, body: bytes, headers: list[tuple[str, str]], request_id: str):
        self.status = status
        self.body = body
        self.headers = headers
        self.request_id = request_id


class State:
    """Everything the fake remembers.  Guarded by ``lock``; never block while holding it."""

    def __init__(self, default_latency_ms: float, max_log: int):
        self.lock = threading.Lock()
        self.default_latency_ms = default_latency_ms
        self.max_log = max_log
        self.reset()

    def reset(self) -> None:
        # callers hold self.lock (or are the constructor)
        self.transfers: dict[str, dict] = {}      # id -> record
        self.transfer_order: list[str] = []        # creation order
        self.reversals: dict[str, dict] = {}       # id -> record
        self.idem: dict[str, dict] = {}            # key -> {"fp", "state", "response"}
        self.rules: list[dict] = []
        self.next_rule_id = 1
        self.log: collections.deque = collections.deque(maxlen=self.max_log)
        self.next_seq = 1
        self.latency_ms = self.default_latency_ms
        self.stats = collections.Counter()

    # ---- rendering ------------------------------------------------------

    def render_reversal(self, rid: str) -> dict:
        return copy.deepcopy(self.reversals[rid]["object"])

    def render_transfer(self, tid: str) -> dict:
        rec = self.transfers[tid]
        obj = copy.deepcopy(rec["object"])
        revs = [self.render_reversal(r) for r in reversed(rec["reversal_ids"])]
        obj["amount_reversed"] = rec["amount_reversed"]
        obj["reversed"] = rec["amount_reversed"] >= obj["amount"]
        obj["reversals"] = {
            "object": "list",
            "data": revs[:10],
            "has_more": len(revs) > 10,
            "total_count": len(revs),
            "url": f"/v1/transfers/{tid}/reversals",
        }
        return obj

    # ---- rules ----------------------------------------------------------

    def match_rule(self, method: str, path: str) -> dict | None:
        for rule in self.rules:
            if rule["remaining"] <= 0:
                continue
            if rule["method"] not in ("*", method):
                continue
            if not path.startswith(rule["path_prefix"]):
                continue
            rule["remaining"] -= 1
            rule["fired"] += 1
            self.stats["rules_fired"] += 1
            return copy.deepcopy(rule)
        return None


def validate_rule(raw, rule_id: int) -> dict:
    if not isinstance(raw, dict):
        raise ValueError("each rule must be a JSON object")
    action = raw.get("action")
    if action not in ACTIONS:
        raise ValueError(f"rule action must be one of {', '.join(ACTIONS)}; got {action!r}")
    method = raw.get("method", "*")
    if not isinstance(method, str) or not method:
        raise ValueError("rule method must be a string such as \"POST\" (or \"*\")")
    method = method.upper()
    prefix = raw.get("path_prefix", "/v1/")
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise ValueError("rule path_prefix must be a string starting with '/'")
    times = raw.get("times", 1)
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        raise ValueError("rule times must be a positive integer")
    rule = {"id": rule_id, "method": method, "path_prefix": prefix, "action": action,
            "times": times, "remaining": times, "fired": 0}
    known = {"method", "path_prefix", "action", "times"}
    if action == "status":
        known |= {"status", "headers", "error_type", "code", "message", "param"}
        status = raw.get("status")
        if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
            raise ValueError("a \"status\" rule needs \"status\": an integer 400..599")
        rule["status"] = status
        headers = raw.get("headers", {})
        if not isinstance(headers, dict):
            raise ValueError("rule headers must be an object of strings")
        for k, v in headers.items():
            if not isinstance(v, str) or not HEADER_TOKEN_RE.match(k) or any(
                    c in v for c in "\r\n\0"):
                raise ValueError(f"invalid header {k!r}")
            if k.lower() in ("content-length", "content-type", "connection",
                             "transfer-encoding"):
                raise ValueError(f"header {k!r} cannot be scripted")
        rule["headers"] = dict(headers)
        for opt in ("error_type", "code", "message", "param"):
            if opt in raw:
                if not isinstance(raw[opt], str):
                    raise ValueError(f"rule {opt} must be a string")
                rule[opt] = raw[opt]
    elif action == "timeout":
        known |= {"seconds"}
        seconds = raw.get("seconds")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not (
                0 <= seconds <= 3600):
            raise ValueError("a \"timeout\" rule needs \"seconds\": a number 0..3600")
        rule["seconds"] = float(seconds)
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown rule field(s) for action {action!r}: "
                         f"{', '.join(sorted(unknown))}")
    return rule


def scripted_error(rule: dict) -> ApiError:
    status = rule["status"]
    if "error_type" in rule:
        type_ = rule["error_type"]
    elif status >= 500:
        type_ = "api_error"
    elif status == 429:
        type_ = "rate_limit_error"
    elif status == 402:
        type_ = "card_error"
    else:
        type_ = "invalid_request_error"
    code = rule.get("code")
    if code is None and status == 429:
        code = "rate_limit"
    if "message" in rule:
        message = rule["message"]
    elif status == 429:
        message = ("Request rate limit exceeded. Learn more about rate limits here "
                   "https://stripe.com/docs/rate-limits.")
    elif status >= 500:
        message = f"An unknown error occurred (fake_stripe scripted HTTP {status})."
    else:
        message = f"fake_stripe scripted HTTP {status} error."
    return ApiError(status, message, type_=type_, code=code, param=rule.get("param"),
                    headers=rule.get("headers"))


# --------------------------------------------------------------------------
# Endpoint implementations.  Called with state.lock held; must not block.
# They return (status, obj) or raise ApiError; any side effect happens only
# after all validation has passed.
# --------------------------------------------------------------------------

TRANSFER_CREATE_PARAMS = {"amount", "currency", "destination", "transfer_group",
                          "description", "metadata", "source_transaction", "source_type",
                          "expand"}
TRANSFER_UPDATE_PARAMS = {"description", "metadata", "expand"}
REVERSAL_CREATE_PARAMS = {"amount", "description", "metadata", "refund_application_fee",
                          "expand"}
TRANSFER_LIST_PARAMS = {"transfer_group", "destination", "created", "limit",
                        "starting_after", "ending_before", "expand"}
REVERSAL_LIST_PARAMS = {"limit", "starting_after", "ending_before", "expand"}


def no_such_transfer(tid: str) -> ApiError:
    return ApiError(404, f"No such transfer: '{tid}'", code="resource_missing", param="id")


def ep_create_transfer(st: State, params: dict, ctx: dict):
    check_unknown(params, TRANSFER_CREATE_PARAMS)
    amount = get_positive_int(params, "amount", required=True)
    currency = params.get("currency")
    if currency is None or currency == "":
        raise bad_param("Missing required param: currency.", "currency", "parameter_missing")
    if not isinstance(currency, str) or not CURRENCY_RE.match(currency):
        raise bad_param(f"Invalid currency: {currency}. The fake accepts three lowercase "
                        f"letters (ISO 4217), e.g. 'usd'.", "currency")
    destination = params.get("destination")
    if destination is None or destination == "":
        raise bad_param("Missing required param: destination.", "destination",
                        "parameter_missing")
    if not isinstance(destination, str) or not ACCOUNT_RE.match(destination):
        raise ApiError(400, f"No such destination: '{destination}'", code="resource_missing",
                       param="destination")
    transfer_group = get_string(params, "transfer_group")
    description = get_string(params, "description")
    source_transaction = get_string(params, "source_transaction")
    source_type = get_string(params, "source_type") or "card"
    if source_type not in ("card", "bank_account", "fpx"):
        raise bad_param(f"Invalid source_type: {source_type}", "source_type")
    metadata = get_metadata(params)

    tid = rand_id("tr_")
    while tid in st.transfers:
        tid = rand_id("tr_")
    obj = {
        "id": tid,
        "object": "transfer",
        "amount": amount,
        "amount_reversed": 0,
        "balance_transaction": rand_id("txn_"),
        "created": int(time.time()),
        "currency": currency,
        "description": description,
        "destination": destination,
        "destination_payment": rand_id("py_"),
        "livemode": False,
        "metadata": metadata,
        "reversed": False,
        "source_transaction": source_transaction,
        "source_type": source_type,
        "transfer_group": transfer_group,
    }
    st.transfers[tid] = {"object": obj, "amount_reversed": 0, "reversal_ids": [],
                         "idempotency_key": ctx["idempotency_key"], "params": params,
                         "request_id": ctx["request_id"], "seq": len(st.transfer_order)}
    st.transfer_order.append(tid)
    st.stats["transfers"] += 1
    return 200, st.render_transfer(tid)


def ep_update_transfer(st: State, params: dict, ctx: dict, tid: str):
    check_unknown(params, TRANSFER_UPDATE_PARAMS)
    if tid not in st.transfers:
        raise no_such_transfer(tid)
    rec = st.transfers[tid]
    if "description" in params:
        rec["object"]["description"] = get_string(params, "description")
    if "metadata" in params:
        md = params["metadata"]
        if md == "":
            rec["object"]["metadata"] = {}
        else:
            get_metadata(params)  # validation
            merged = dict(rec["object"]["metadata"])
            for k, v in md.items():
                if v == "":
                    merged.pop(k, None)
                else:
                    merged[k] = v
            rec["object"]["metadata"] = merged
    return 200, st.render_transfer(tid)


def ep_create_reversal(st: State, params: dict, ctx: dict, tid: str):
    check_unknown(params, REVERSAL_CREATE_PARAMS)
    amount = get_positive_int(params, "amount", required=False)
    get_string(params, "description")
    metadata = get_metadata(params)
    if tid not in st.transfers:
        raise no_such_transfer(tid)
    rec = st.transfers[tid]
    total = rec["object"]["amount"]
    remaining = total - rec["amount_reversed"]
    if remaining <= 0:
        raise ApiError(400, f"Transfer {tid} has already been fully reversed.",
                       param="amount")
    if amount is None:
        amount = remaining
    elif amount > remaining:
        raise ApiError(400, f"Amount {amount} is greater than the amount of the transfer that "
                            f"has not been reversed yet ({remaining}).", param="amount",
                       code="parameter_invalid_integer")
    rid = rand_id("trr_")
    while rid in st.reversals:
        rid = rand_id("trr_")
    obj = {
        "id": rid,
        "object": "transfer_reversal",
        "amount": amount,
        "balance_transaction": rand_id("txn_"),
        "created": int(time.time()),
        "currency": rec["object"]["currency"],
        "destination_payment_refund": rand_id("pyr_"),
        "metadata": metadata,
        "source_refund": None,
        "transfer": tid,
    }
    st.reversals[rid] = {"object": obj, "idempotency_key": ctx["idempotency_key"],
                         "params": params, "request_id": ctx["request_id"]}
    rec["reversal_ids"].append(rid)
    rec["amount_reversed"] += amount
    st.stats["reversals"] += 1
    return 200, st.render_reversal(rid)


def ep_list_transfers(st: State, params: dict, ctx: dict):
    check_unknown(params, TRANSFER_LIST_PARAMS)
    group = get_string(params, "transfer_group")
    dest = get_string(params, "destination")
    created_ok = created_filter(params)
    items = []
    for tid in reversed(st.transfer_order):  # newest first
        obj = st.transfers[tid]["object"]
        if group is not None and obj["transfer_group"] != group:
            continue
        if dest is not None and obj["destination"] != dest:
            continue
        if not created_ok(obj["created"]):
            continue
        items.append(tid)
    page, has_more = paginate(items, params, lambda t: t, "transfer")
    return 200, {"object": "list", "data": [st.render_transfer(t) for t in page],
                 "has_more": has_more, "url": "/v1/transfers"}


def ep_get_transfer(st: State, params: dict, ctx: dict, tid: str):
    check_unknown(params, {"expand"})
    if tid not in st.transfers:
        raise no_such_transfer(tid)
    return 200, st.render_transfer(tid)


def ep_list_reversals(st: State, params: dict, ctx: dict, tid: str):
    check_unknown(params, REVERSAL_LIST_PARAMS)
    if tid not in st.transfers:
        raise no_such_transfer(tid)
    items = list(reversed(st.transfers[tid]["reversal_ids"]))
    page, has_more = paginate(items, params, lambda r: r, "transfer_reversal")
    return 200, {"object": "list", "data": [st.render_reversal(r) for r in page],
                 "has_more": has_more, "url": f"/v1/transfers/{tid}/reversals"}


def ep_get_reversal(st: State, params: dict, ctx: dict, tid: str, rid: str):
    check_unknown(params, {"expand"})
    if tid not in st.transfers:
        raise no_such_transfer(tid)
    if rid not in st.reversals or st.reversals[rid]["object"]["transfer"] != tid:
        raise ApiError(404, f"No such transfer_reversal: '{rid}'", code="resource_missing",
                       param="id")
    return 200, st.render_reversal(rid)


def route(method: str, path: str):
    """Returns (callable, args) or None."""
    if ROUTE_TRANSFERS.match(path):
        return {"POST": (ep_create_transfer, ()), "GET": (ep_list_transfers, ())}.get(method)
    m = ROUTE_TRANSFER.match(path)
    if m:
        return {"POST": (ep_update_transfer, m.groups()),
                "GET": (ep_get_transfer, m.groups())}.get(method)
    m = ROUTE_REVERSALS.match(path)
    if m:
        return {"POST": (ep_create_reversal, m.groups()),
                "GET": (ep_list_reversals, m.groups())}.get(method)
    m = ROUTE_REVERSAL.match(path)
    if m and method == "GET":
        return (ep_get_reversal, m.groups())
    return None


# --------------------------------------------------------------------------
# HTTP layer
# --------------------------------------------------------------------------


class Dropped(Exception):
    """Raised to abandon a request after the socket was closed on purpose."""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The handler writes headers and body separately; with Nagle's algorithm on, the body of
    # each answer on a kept-alive connection waits for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server_version = "fake-stripe/1.0"
    sys_version = ""
    server: "FakeStripeServer"

    def version_string(self):
        return self.server_version

    # ---- logging: never headers, only the request line ------------------

    def log_message(self, format, *args):  # noqa: A002 (stdlib signature)
        if self.server.verbose:
            try:
                sys.stderr.write("fake_stripe: %s - %s\n" % (self.client_address[0],
                                                              format % args))
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def log_request(self, code="-", size="-"):
        if isinstance(code, http.HTTPStatus):
            code = code.value
        method = getattr(self, "command", None) or "-"
        path = urllib.parse.urlsplit(getattr(self, "path", "") or "").path
        self.log_message("%s %s %s", method, path[:200], code)

    def send_error(self, code, message=None, explain=None):
        """Errors raised by the stdlib parser (bad request line, etc.) as JSON."""
        try:
            short, _ = self.responses[code]
        except KeyError:
            short = "Error"
        body = dumps({"error": {"type": "invalid_request_error",
                                "message": f"{message or short} (HTTP {code})"}})
        self.close_connection = True
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            # unparseable request line: still answer with a real status line
            self.request_version = "HTTP/1.0"
        try:
            self.send_response(code, short)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (
                    204, 304):
                self.wfile.write(body)
        except OSError:
            pass

    # ---- dispatch -------------------------------------------------------

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_PATCH(self):
        self._dispatch()

    def _dispatch(self):
        try:
            body = self._read_body()
        except ApiError as exc:
            self.close_connection = True
            self._send_json(exc.status, exc.body(), [("Connection", "close")])
            return
        except (OSError, ValueError):
            self.close_connection = True
            return
        split = urllib.parse.urlsplit(self.path)
        path = split.path
        try:
            if path.startswith("/__control/") or path == "/__control":
                self._control(path, body)
            elif path == "/v1" or path.startswith("/v1/"):
                self._v1(path, split.query, body)
            else:
                self._send_json(404, ApiError(404, self._unrecognized()).body(),
                                [("Request-Id", rand_id("req_", 14))])
        except Dropped:
            pass
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # a bug in the fake: say so, keep serving
            self.close_connection = True
            try:
                sys.stderr.write("fake_stripe: internal error\n" + traceback.format_exc())
            except (OSError, ValueError):
                pass
            try:
                self._send_json(500, ApiError(500, "fake_stripe internal error",
                                              type_="api_error").body(),
                                [("Connection", "close")])
            except OSError:
                pass

    def _unrecognized(self) -> str:
        path = urllib.parse.urlsplit(self.path).path
        return (f"Unrecognized request URL ({self.command}: {path[:200]}). Please see "
                f"https://stripe.com/docs or we can help at https://support.stripe.com/.")

    def _read_body(self) -> bytes:
        te = self.headers.get("Transfer-Encoding", "")
        if te:
            if te.strip().lower() != "chunked":
                raise ApiError(501, f"Unsupported Transfer-Encoding: {te[:50]}")
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ValueError("eof in chunked body")
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ApiError(400, "Malformed chunked request body") from None
                if size < 0:
                    raise ApiError(400, "Malformed chunked request body")
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(8192)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                total += size
                if total > MAX_BODY:
                    raise ApiError(413, "Request body too large")
                data = self.rfile.read(size)
                if len(data) != size:
                    raise ValueError("eof in chunk")
                chunks.append(data)
                self.rfile.readline(8)
            return b"".join(chunks)
        cl = self.headers.get("Content-Length")
        if cl is None or cl.strip() == "":
            return b""
        if not cl.strip().isdigit():
            raise ApiError(400, "Invalid Content-Length header")
        n = int(cl)
        if n > MAX_BODY:
            raise ApiError(413, "Request body too large")
        data = self.rfile.read(n) if n else b""
        if len(data) != n:
            raise ValueError("eof in body")
        return data

    # ---- low-level responses -------------------------------------------

    def _send_raw(self, status: int, body: bytes, headers: list[tuple[str, str]]):
        self.send_response(status)
        seen = set()
        for k, v in headers:
            self.send_header(k, v)
            seen.add(k.lower())
        if "content-type" not in seen:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            if "connection" not in seen:
                self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _send_json(self, status: int, obj, headers=()):
        self._send_raw(status, dumps(obj), list(headers))

    def _drop(self):
        """Close the TCP connection without sending anything."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass

    def _peer_gone(self) -> bool:
        """True if the client has closed its end (it gave up waiting)."""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    # ---- control API ------------------------------------------------------

    def _control(self, path: str, body: bytes):
        st = self.server.state
        host = self.client_address[0]
        if host != "127.0.0.1" and not host.startswith("127."):
            self._send_json(403, {"error": {"type": "invalid_request_error",
                                            "message": "control API is loopback-only"}})
            return
        method = self.command
        payload = None
        if method == "POST":
            if body.strip():
                try:
                    payload = json.loads(body.decode("utf-8"))
                except (ValueError, UnicodeDecodeError) as exc:
                    self._control_error(400, f"invalid JSON body: {exc}")
                    return
            else:
                payload = {}
            if not isinstance(payload, dict):
                self._control_error(400, "JSON body must be an object")
                return
        name = path[len("/__control/"):] if path.startswith("/__control/") else ""

        if name == "health" and method == "GET":
            self._send_json(200, {"ok": True})
        elif name == "script" and method == "POST":
            rules = payload.get("rules")
            replace = payload.get("replace", False)
            if not isinstance(rules, list) or not isinstance(replace, bool):
                self._control_error(400, "body must be {\"rules\": [...], \"replace\": bool}")
                return
            with st.lock:
                try:
                    new = [validate_rule(r, st.next_rule_id + i) for i, r in enumerate(rules)]
                except ValueError as exc:
                    self._control_error(400, f"invalid rule: {exc}")
                    return
                st.next_rule_id += len(new)
                if replace:
                    st.rules = []
                st.rules.extend(new)
                out = copy.deepcopy(st.rules)
            self._send_json(200, {"ok": True, "rules": out})
        elif name == "script" and method == "GET":
            with st.lock:
                out = copy.deepcopy(st.rules)
            self._send_json(200, {"rules": out})
        elif name == "latency" and method == "POST":
            ms = payload.get("ms")
            if not isinstance(ms, (int, float)) or isinstance(ms, bool) or not 0 <= ms <= 600000:
                self._control_error(400, "body must be {\"ms\": number 0..600000}")
                return
            with st.lock:
                st.latency_ms = ms
            self._send_json(200, {"ok": True, "latency_ms": ms})
        elif name == "latency" and method == "GET":
            with st.lock:
                ms = st.latency_ms
            self._send_json(200, {"latency_ms": ms})
        elif name == "reset" and method == "POST":
            with st.lock:
                st.reset()
            self._send_json(200, {"ok": True})
        elif name == "transfers" and method == "GET":
            with st.lock:
                out = []
                for tid in st.transfer_order:
                    rec = st.transfers[tid]
                    out.append({
                        "id": tid,
                        "idempotency_key": rec["idempotency_key"],
                        "request_id": rec["request_id"],
                        "params": copy.deepcopy(rec["params"]),
                        "transfer": st.render_transfer(tid),
                        "reversals": [{
                            "id": rid,
                            "idempotency_key": st.reversals[rid]["idempotency_key"],
                            "request_id": st.reversals[rid]["request_id"],
                            "params": copy.deepcopy(st.reversals[rid]["params"]),
                            "reversal": st.render_reversal(rid),
                        } for rid in rec["reversal_ids"]],
                    })
            self._send_json(200, out)
        elif name == "requests" and method == "GET":
            with st.lock:
                out = copy.deepcopy(list(st.log))
            self._send_json(200, out)
        elif name == "stats" and method == "GET":
            with st.lock:
                s = st.stats
                out = {
                    "requests": s["requests"],
                    "transfers": len(st.transfers),
                    "reversals": len(st.reversals),
                    "replays": s["replays"],
                    "rejected_auth": s["rejected_auth"],
                    "idempotency_conflicts": s["idempotency_in_progress"] + s[
                        "idempotency_mismatch"],
                    "idempotency_in_progress": s["idempotency_in_progress"],
                    "idempotency_mismatch": s["idempotency_mismatch"],
                    "missing_idempotency_key": s["missing_idempotency_key"],
                    "rules_fired": s["rules_fired"],
                    "dropped": s["dropped"],
                    "client_hung_up": s["client_hung_up"],
                    "in_flight_keys": sum(1 for e in st.idem.values()
                                          if e["state"] == "in_flight"),
                    "stored_keys": sum(1 for e in st.idem.values() if e["state"] == "done"),
                    "latency_ms": st.latency_ms,
                }
            self._send_json(200, out)
        else:
            self._control_error(404, f"unknown control endpoint {method} {path}")

    def _control_error(self, status: int, message: str):
        self._send_json(status, {"error": {"type": "invalid_request_error", "message": message}})

    # ---- /v1 --------------------------------------------------------------

    def _auth_ok(self) -> tuple[bool, ApiError | None]:
        header = self.headers.get("Authorization")
        if header is None or header.strip() == "":
            return False, ApiError(
                401, "You did not provide an API key. You need to provide your API key in the "
                     "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                     "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for "
                     "details, or we can help at https://support.stripe.com/.")
        scheme, _, cred = header.strip().partition(" ")
        cred = cred.strip()
        if scheme.lower() == "basic":  # Stripe also accepts the key as the Basic username
            try:
                cred = base64.b64decode(cred, validate=True).decode("utf-8").partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                cred = ""
        elif scheme.lower() != "bearer":
            cred = ""
        expected = self.server.api_key
        if cred and hmac.compare_digest(cred.encode("utf-8", "replace"),
                                        expected.encode("utf-8")):
            return True, None
        if not cred:
            return False, ApiError(
                401, "Invalid API Key provided: the Authorization header must be "
                     "'Bearer <secret key>'.")
        return False, ApiError(401, f"Invalid API Key provided: {mask_key(cred)}")

    def _v1(self, path: str, query: str, body: bytes):
        srv = self.server
        st = srv.state
        method = self.command
        arrival = time.time()
        t0 = time.monotonic()
        idem_key = self.headers.get("Idempotency-Key")
        if idem_key is not None:
            idem_key = idem_key.strip() or None
        version = self.headers.get("Stripe-Version") or DEFAULT_STRIPE_VERSION
        if any(c in version for c in "\r\n") or len(version) > 64:
            version = DEFAULT_STRIPE_VERSION
        request_id = rand_id("req_", 14)
        entry = {
            "seq": 0, "time": round(arrival, 6), "method": method, "path": path,
            "params": None, "idempotency_key": idem_key, "auth_valid": False,
            "stripe_account": self.headers.get("Stripe-Account"),
            "rule": None, "status": None, "replayed": False, "delivered": False,
            "client_hung_up": False, "request_id": request_id, "duration_ms": None,
            "error_type": None,
        }
        with st.lock:
            entry["seq"] = st.next_seq
            st.next_seq += 1
            st.stats["requests"] += 1
            st.log.append(entry)

        def finish(status, delivered=True, **extra):
            with st.lock:
                entry["status"] = status
                entry["delivered"] = delivered
                entry["duration_ms"] = round((time.monotonic() - t0) * 1000, 3)
                entry.update(extra)

        base_headers = [("Request-Id", request_id), ("Stripe-Version", version)]
        if method == "POST" and idem_key:
            base_headers.append(("Idempotency-Key", idem_key))

        def reply_error(exc: ApiError, extra_headers=()):
            headers = list(base_headers) + list(exc.headers.items()) + list(extra_headers)
            self._send_json(exc.status, exc.body(), headers)
            finish(exc.status, error_type=exc.type)

        with st.lock:
            latency = st.latency_ms
        if latency:
            time.sleep(latency / 1000.0)

        ok, auth_err = self._auth_ok()
        with st.lock:
            entry["auth_valid"] = ok
            if not ok:
                st.stats["rejected_auth"] += 1
        if not ok:
            reply_error(auth_err, [("WWW-Authenticate", 'Bearer realm="Stripe"')])
            return

        # parameters: query string + (for bodies) form-encoded body
        try:
            pairs = parse_form(query, "query string")
            if body:
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if ctype not in ("", "application/x-www-form-urlencoded"):
                    raise ApiError(400, f"Invalid request: Content-Type {ctype!r} is not "
                                        f"supported; Stripe expects "
                                        f"application/x-www-form-urlencoded.")
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError:
                    raise ApiError(400, "Invalid request: the body is not valid UTF-8.",
                                   code="parameter_invalid") from None
                pairs += parse_form(text, "request body")
            params = nest_params(pairs)
        except ApiError as exc:
            reply_error(exc)
            return
        with st.lock:
            entry["params"] = copy.deepcopy(params)

        if method == "POST":
            if idem_key is None:
                with st.lock:
                    st.stats["missing_idempotency_key"] += 1
                reply_error(ApiError(400, "this fake requires an Idempotency-Key on every POST"))
                return
            if len(idem_key) > MAX_IDEMPOTENCY_KEY:
                reply_error(ApiError(400, "Keys for idempotent requests can be no longer than "
                                          f"{MAX_IDEMPOTENCY_KEY} characters.",
                                     type_="idempotency_error"))
                return

        target = route(method, path)
        if target is None:
            reply_error(ApiError(404, self._unrecognized()))
            return
        func, args = target

        use_idem = method == "POST"
        fingerprint = json.dumps([method, path, sorted(pairs)], ensure_ascii=True)
        outcome = None  # "execute" | "replay" | "mismatch" | "in_progress"
        stored = None
        with st.lock:
            rule = st.match_rule(method, path)
            if rule is not None:
                entry["rule"] = {"id": rule["id"], "action": rule["action"]}
            if rule is None or rule["action"] not in ("status", "drop_before_commit"):
                if not use_idem:
                    outcome = "execute"
                else:
                    ent = st.idem.get(idem_key)
                    if ent is None:
                        st.idem[idem_key] = {"fp": fingerprint, "state": "in_flight",
                                             "response": None}
                        outcome = "execute"
                    elif ent["state"] == "in_flight":
                        outcome = "in_progress"
                        st.stats["idempotency_in_progress"] += 1
                    elif ent["fp"] != fingerprint:
                        outcome = "mismatch"
                        st.stats["idempotency_mismatch"] += 1
                    else:
                        outcome = "replay"
                        stored = ent["response"]

        # faults that happen "in front of" Stripe: nothing is executed or stored
        if rule is not None and rule["action"] == "status":
            reply_error(scripted_error(rule))
            return
        if rule is not None and rule["action"] == "drop_before_commit":
            self._drop()
            with st.lock:
                st.stats["dropped"] += 1
            finish("dropped", delivered=False)
            raise Dropped()

        claimed = outcome == "execute" and use_idem
        try:
            if rule is not None and rule["action"] == "timeout":
                time.sleep(rule["seconds"])

            # build the real response (status, body bytes, headers)
            replayed = False
            error_type = None
            if outcome == "in_progress":
                exc = ApiError(409, "There is currently another in-progress request using "
                                    "this Idempotent Key (that probably means you submitted "
                                    "twice, and the other request is still going through): "
                                    f"{idem_key}. Please try again later.",
                               type_="idempotency_error", code="idempotency_key_in_use")
                status, payload = exc.status, dumps(exc.body())
                headers = base_headers + [("Stripe-Should-Retry", "true")]
                error_type = exc.type
            elif outcome == "mismatch":
                exc = ApiError(400, "Keys for idempotent requests can only be used with the "
                                    "same parameters they were first used with. Try using a "
                                    f"key other than '{idem_key}' if you meant to execute a "
                                    "different request.", type_="idempotency_error")
                status, payload = exc.status, dumps(exc.body())
                headers = base_headers + [("Stripe-Should-Retry", "false")]
                error_type = exc.type
            elif outcome == "replay":
                status, payload = stored.status, stored.body
                headers = [(k, v) for k, v in stored.headers if k != "Request-Id"]
                headers = [("Request-Id", request_id)] + headers + [
                    ("Original-Request", stored.request_id), ("Idempotent-Replayed", "true")]
                replayed = True
                with st.lock:
                    st.stats["replays"] += 1
            else:
                ctx = {"idempotency_key": idem_key if use_idem else None,
                       "request_id": request_id}
                with st.lock:
                    try:
                        status, obj = func(st, params, ctx, *args)
                    except ApiError as exc:
                        status, obj = exc.status, exc.body()
                        error_type = exc.type
                    payload = dumps(obj)
                    headers = list(base_headers)
                    if claimed:
                        # completed (2xx and 4xx): remember it under the key
                        st.idem[idem_key] = {
                            "fp": fingerprint, "state": "done",
                            "response": StoredResponse(status, payload, list(headers),
                                                       request_id)}
                        claimed = False
        finally:
            if claimed:  # failed before commit: let the client retry with the key
                with st.lock:
                    ent = st.idem.get(idem_key)
                    if ent is not None and ent["state"] == "in_flight":
                        del st.idem[idem_key]

        with st.lock:
            entry["replayed"] = replayed
            entry["error_type"] = error_type

        action = rule["action"] if rule is not None else None
        if action == "drop_after_commit":
            self._drop()
            with st.lock:
                st.stats["dropped"] += 1
            finish("dropped", delivered=False, committed_status=status)
            raise Dropped()
        if action == "committed_500":
            exc = ApiError(500, "An unknown error occurred (fake_stripe committed_500: the "
                                "request was carried out; retry with the same Idempotency-Key).",
                           type_="api_error")
            self._send_json(500, exc.body(), base_headers)
            finish(500, committed_status=status, error_type=exc.type)
            return
        if action == "timeout" and self._peer_gone():
            self.close_connection = True
            with st.lock:
                st.stats["client_hung_up"] += 1
            finish(status, delivered=False, client_hung_up=True)
            return
        try:
            self._send_raw(status, payload, headers)
        except OSError:
            self.close_connection = True
            if action == "timeout":
                with st.lock:
                    st.stats["client_hung_up"] += 1
            finish(status, delivered=False, client_hung_up=True)
            return
        finish(status)


class FakeStripeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, port: int, api_key: str, latency_ms: float, verbose: bool,
                 max_log: int):
        self.api_key = api_key
        self.verbose = verbose
        self.state = State(latency_ms, max_log)
        super().__init__(("127.0.0.1", port), Handler)

    def server_bind(self):
        # skip HTTPServer.server_bind's getfqdn() reverse lookup
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port

    def handle_error(self, request, client_address):
        if self.verbose:
            super().handle_error(request, client_address)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Scripted fake Stripe Connect server "
                                             "(127.0.0.1 only).")
    ap.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    ap.add_argument("--key", required=True, help="the only accepted secret key (sk_test_...)")
    ap.add_argument("--latency-ms", type=float, default=0.0,
                    help="delay applied to every /v1 request")
    ap.add_argument("--verbose", action="store_true",
                    help="one line per request on stderr (method, path, status)")
    ap.add_argument("--max-log", type=int, default=100000,
                    help="request-log entries kept in memory (oldest dropped)")
    args = ap.parse_args(argv)

    if not 0 <= args.port <= 65535:
        ap.error("--port must be 0..65535")
    if not args.key or any(c.isspace() for c in args.key):
        ap.error("--key must be a non-empty string without whitespace")
    if KEY_PREFIX_RE.match(args.key) and "_live_" in args.key[:8]:
        ap.error("refusing a live-mode key; give the fake a sk_test_... key")
    if args.latency_ms < 0:
        ap.error("--latency-ms must be >= 0")
    if args.max_log < 1:
        ap.error("--max-log must be >= 1")

    try:
        server = FakeStripeServer(args.port, args.key, args.latency_ms, args.verbose,
                                  args.max_log)
    except OSError as exc:
        sys.stderr.write(f"fake_stripe: cannot listen on 127.0.0.1:{args.port}: {exc}\n")
        return 1
    port = server.server_address[1]
    sys.stdout.write(f"listening on 127.0.0.1:{port}\n")
    sys.stdout.flush()

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                         name="fake-stripe-serve", daemon=True)
    t.start()
    try:
        while not stop.wait(0.25):
            if not t.is_alive():
                break
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
