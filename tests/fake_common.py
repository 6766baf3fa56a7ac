"""Plumbing shared by the fake clouds (tests/azure/fake_arm.py, tests/gcp/fake_gcp.py,
tests/alicloud/fake_alicloud.py, tests/oci/fake_oci.py): fault injection, the HTTP
handler and the server.
Stdlib only: the fakes also run under Debian's /usr/bin/python3.

A fake imports it from the tests/ directory (it is started as a script, so that
directory is not on sys.path by itself):

    sys.dont_write_bytecode = True       # no __pycache__ in the source tree
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from fake_common import FakeApp, FakeHandler, FaultRules, Reply, listen, serve

Fault rules (tests/aws/fault_proxy.py semantics), set through the control path
POST/DELETE/GET /_fake/faults?rule=NAME (no rule= means "default"):
  {"match": regex searched in the request's label (usually "METHOD /path"),
   "throttle"|"status500"|"status503"|"drop"|"drop_after": share of matching requests,
   "seed": for the shares' random draw (default 1), "sequence": kinds or "ok" used in
   order before the shares, "max_faults": no more faults after this many,
   "delay": seconds every matching request waits, after its body was read and before
   it is handled (FakeApp.handle; a fake using FaultRules.pick alone ignores it)}
The first rule in creation order (a re-POSTed rule moves to the end) whose match
fits a request decides its fault: drop = the connection is closed unanswered and
the request is not applied; status500/status503/throttle = the fake's own error
answer instead of handling; drop_after = applied, then closed unanswered.
Every answer of the control path is {"rules": {NAME: rule}, "injected": faults the rule
NAME injected, "sequence_left": its sequence entries not used yet} (0 without that rule).

Two ways to use it:
- FakeApp (one server, answers as Reply objects): subclass it, implement answer()
  (and the hooks it lists), and FakeApp.handle() applies the control path, the
  faults, the request/status counters and the request log.
- The pieces alone (FaultRules.pick / FaultRules.control, FakeHandler, listen,
  serve), for a fake that writes its answers itself (fake_alicloud.py).
"""

from __future__ import annotations

import json
import random
import re
import socket
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

FAULT_KINDS = ("drop", "drop_after", "status500", "status503", "throttle")
# Faults answered with an error status instead of handling the request.
STATUS_FAULTS = ("status500", "status503", "throttle")


@dataclass
class Reply:
    status: int
    body: object = None            # dict/list -> JSON, bytes as is, None -> empty
    headers: list = field(default_factory=list)


class FaultRule:
    """One named rule; `faults` counts what it injected (per kind) since the last reset.
    A subclass may know more kinds (KINDS) and keys (KEYS), kept in self.doc
    (tests/aws/fault_proxy.py: truncate, after_bytes)."""
    KINDS: tuple = FAULT_KINDS
    KEYS: tuple = ("seed", "match", "sequence", "max_faults", "delay")

    def __init__(self, doc: dict):
        unknown = set(doc) - set(self.KINDS) - set(self.KEYS)
        if unknown:
            raise ValueError(f"unknown fault keys {sorted(unknown)}")
        self.shares = {k: float(doc.get(k, 0)) for k in self.KINDS}
        if any(v < 0 for v in self.shares.values()) or sum(self.shares.values()) > 1.0 + 1e-9:
            raise ValueError("fault shares must be >= 0 and sum to at most 1")
        self.match = re.compile(doc.get("match", ""))
        self.sequence = list(doc.get("sequence", []))
        bad = [s for s in self.sequence if s not in self.KINDS and s != "ok"]
        if bad:
            raise ValueError(f"unknown sequence entries {bad}; use {list(self.KINDS)} or 'ok'")
        self.max_faults = doc.get("max_faults")
        self.delay = float(doc.get("delay", 0))
        if self.delay < 0:
            raise ValueError("delay must be >= 0")
        self.rng = random.Random(doc.get("seed", 1))
        self.injected = 0
        self.faults: Counter = Counter()
        self.doc = doc

    def choose(self) -> str:
        if self.max_faults is not None and self.injected >= self.max_faults:
            return "ok"
        if self.sequence:
            kind = self.sequence.pop(0)
        else:
            r, kind = self.rng.random(), "ok"
            for k in self.KINDS:
                if r < self.shares[k]:
                    kind = k
                    break
                r -= self.shares[k]
        if kind != "ok":
            self.injected += 1
            self.faults[kind] += 1
        return kind


class FaultRules:
    """The named rules of one fake. Not locked: callers hold their fake's lock."""

    def __init__(self, rule_type: type = FaultRule):
        self.rules: dict[str, FaultRule] = {}
        self.rule_type = rule_type

    def find(self, label: str) -> FaultRule | None:
        """The rule that decides a request labelled `label`, if any."""
        return next((r for r in self.rules.values() if r.match.search(label)), None)

    def pick(self, label: str) -> str:
        """The fault for a request labelled `label`: a FAULT_KINDS entry or "ok"."""
        rule = self.find(label)
        return rule.choose() if rule else "ok"

    def control(self, method: str, query: str, body: bytes) -> dict:
        """/_fake/faults: POST sets rule NAME, DELETE removes it, GET lists. A bad rule
        raises ValueError (bad JSON, keys or shares) or re.error (bad match)."""
        name = dict(parse_qsl(query)).get("rule", "default")
        if method == "POST":
            rule = self.rule_type(json.loads(body or b"{}"))
            self.rules.pop(name, None)
            self.rules[name] = rule
        elif method == "DELETE":
            self.rules.pop(name, None)
        rule = self.rules.get(name)
        return {"rules": {n: r.doc for n, r in self.rules.items()}, "injected": rule.injected if rule else 0,
                "sequence_left": len(rule.sequence) if rule else 0}

    def by_rule(self) -> dict:
        return {n: dict(r.faults) for n, r in self.rules.items()}

    def reset_counts(self) -> None:
        for r in self.rules.values():
            r.faults.clear()


class FakeApp:
    """A fake's state and request entry. handle() does, for every request:
    /_fake/... -> control(); else the fault is picked by the label "METHOD /path"
    (counted in self.faults, the request in self.requests[request_kind()]); the rule's
    delay is waited; drop ->
    closed; status faults -> fault_reply(); else answer(); the status is counted in
    self.statuses and log() called; drop_after -> closed, else the reply is sent with
    base_headers() first.

    Subclasses implement answer(h, method, path, query, body) -> Reply and
    fault_reply(kind, path) -> Reply; they may override request_kind, base_headers,
    log, control (calling super().control for /_fake/faults, /_fake/reset and
    /_fake/health) and bug_reply (the answer when a handler raises)."""

    def __init__(self):
        self.lock = threading.RLock()
        self.rules = FaultRules()
        self.reset_stats()

    def reset_stats(self) -> None:
        self.requests: Counter = Counter()
        self.faults: Counter = Counter()
        self.statuses: Counter = Counter()
        self.rules.reset_counts()

    # --- hooks ------------------------------------------------------------------

    def request_kind(self, method: str, path: str) -> str:
        return f"{method} {path}"

    def base_headers(self, h, path: str) -> list:
        return []

    def log(self, method: str, path: str, query: str, status: str, kind: str) -> None:
        pass

    def answer(self, h, method: str, path: str, query: str, body: bytes) -> Reply:
        raise NotImplementedError

    def fault_reply(self, kind: str, path: str) -> Reply:
        raise NotImplementedError

    def bug_reply(self, e: Exception) -> Reply:
        return Reply(500, {"error": f"fake bug: {type(e).__name__}: {e}"})

    def control(self, method: str, path: str, query: str, body: bytes) -> Reply:
        if path == "/_fake/health":
            return Reply(200, {"ok": True})
        if path == "/_fake/faults":
            with self.lock:
                return Reply(200, self.rules.control(method, query, body))
        if path == "/_fake/reset" and method == "POST":
            with self.lock:
                self.reset_stats()
            return Reply(200, {"ok": True})
        return Reply(404, {"error": f"unknown control path {method} {path}"})

    # --- entry --------------------------------------------------------------------

    def handle(self, h, method: str, path: str, query: str, body: bytes) -> None:
        base = self.base_headers(h, path)
        if path.startswith("/_fake/"):
            h.send_reply(self.control(method, path, query, body), base)
            return
        kind = self.request_kind(method, path)
        with self.lock:
            rule = self.rules.find(f"{method} {path}")
            fault = rule.choose() if rule else "ok"
            self.requests[kind] += 1
            if fault != "ok":
                self.faults[fault] += 1
        if rule and rule.delay:
            time.sleep(rule.delay)  # the body is read: a client killed meanwhile has sent it all
        if fault == "drop":
            self.log(method, path, query, "drop", kind)
            h.drop()
            return
        if fault in STATUS_FAULTS:
            reply = self.fault_reply(fault, path)
        else:
            reply = self.answer(h, method, path, query, body)
        with self.lock:
            self.statuses[str(reply.status)] += 1
        self.log(method, path, query, f"{reply.status}{'+drop' if fault == 'drop_after' else ''}", kind)
        if fault == "drop_after":
            h.drop()
            return
        h.send_reply(reply, base)


def read_body(h: BaseHTTPRequestHandler) -> bytes:
    """The request body of handler H: Content-Length bytes, or a chunked body decoded."""
    if "chunked" in (h.headers.get("Transfer-Encoding", "") or "").lower():
        out = bytearray()
        while True:
            size = int(h.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(out)
            out += h.rfile.read(size)
            h.rfile.readline(65537)
    n = int(h.headers.get("Content-Length", "0") or "0")
    return h.rfile.read(n) if n > 0 else b""


def drop_connection(h: BaseHTTPRequestHandler) -> None:
    """Closes H's connection without (further) answer: what was written is flushed first."""
    h.close_connection = True
    try:
        h.wfile.flush()
        h.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class FakeHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler that hands every request to server.app.handle(h,
    method, path, query, body) and sends Reply objects. Class attributes a fake may
    set: server_version, json_type (Content-Type of JSON bodies), extra_headers
    (sent with every reply). Requests are logged to stderr only with server.verbose."""
    protocol_version = "HTTP/1.1"
    json_type = "application/json; charset=utf-8"
    extra_headers: list = []

    def read_body(self) -> bytes:
        return read_body(self)

    def _handle(self) -> None:
        body = self.read_body()
        raw = self.path
        if raw.startswith(("http://", "https://")):  # absolute-form request target (proxy style)
            raw = urlsplit(raw)._replace(scheme="", netloc="").geturl()
        path, _, query = raw.partition("?")
        try:
            self.server.app.handle(self, self.command, path, query, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a fake bug: answer it plainly instead of hanging up
            traceback.print_exc(file=sys.stderr)
            self.send_reply(self.server.app.bug_reply(e), [])

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _handle

    def send_reply(self, reply: Reply, base: list) -> None:
        if isinstance(reply.body, (bytes, bytearray)):
            data, ctype = bytes(reply.body), "application/octet-stream" if reply.body else None
        elif reply.body is None:
            data, ctype = b"", None
        else:
            data, ctype = (json.dumps(reply.body, indent=1) + "\n").encode(), self.json_type
        # 499 is Google's (nginx's) "client closed request", unknown to http.server.
        self.send_response_only(reply.status, "Client Closed Request" if reply.status == 499 else None)
        for k, v in base + reply.headers + self.extra_headers:
            self.send_header(k, v)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Date", formatdate(usegmt=True))
        if reply.status != 204:  # RFC 9110 section 8.6: none on a 204
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def drop(self) -> None:
        """Closes the connection without an answer (what drop faults do)."""
        drop_connection(self)

    def log_message(self, fmt, *args) -> None:
        if getattr(self.server, "verbose", False):
            sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # parallel tests open many connections at once


def listen(host: str, port: int, handler=FakeHandler, **attrs) -> FakeServer:
    """A bound server with `attrs` set on it (app=..., verbose=...); exits with a one-line
    message when the port is taken."""
    try:
        server = FakeServer((host, port), handler)
    except OSError as e:
        raise SystemExit(f"cannot listen on {host}:{port}: {e.strerror}")
    for k, v in attrs.items():
        setattr(server, k, v)
    return server


def serve(servers: list[FakeServer], banner: str) -> None:
    """Writes `banner` to stderr and serves every server until interrupted."""
    sys.stderr.write(banner + "\n")
    sys.stderr.flush()
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers[1:]]
    for t in threads:
        t.start()
    try:
        servers[0].serve_forever()
    except KeyboardInterrupt:
        pass
