#!/usr/bin/env python3
"""Fault-injecting proxy: forwards to an upstream and, for a configured share
of requests, fails them the ways AWS and networks do.

    python3 tests/aws/fault_proxy.py --port 47002 --upstream http://127.0.0.1:47000

Faults (each a share of matching requests, 0..1, summing to at most 1):
  drop        close the connection before answering; upstream never sees it
  drop_after  forward, then close without answering (applied, answer lost)
  status500   500 InternalError; not forwarded
  status503   503: S3 SlowDown, EC2 Unavailable, EBS ServiceUnavailableException
  throttle    S3 503 SlowDown, EC2 400 RequestLimitExceeded,
              EBS 400 ThrottlingException (JSON), IAM/STS 400 Throttling
  truncate    forward, answer with the full Content-Length but close after
              `after_bytes` body bytes (default: half the body)

Config (FAULT_PROXY_CONFIG env at start, or POST /_fault/config, JSON):
  {"drop": 0.1, "status500": 0.1, "seed": 1, "after_bytes": 100,
   "match": "PUT s3:UploadPart my-bucket/",  # regex searched in "METHOD service:Operation TARGET"
                                             # (TARGET: bucket/key, upload id#part, snapshot/index;
                                             # see proxy_common.request_kind); default: everything
   "sequence": ["drop", "ok", "throttle"],   # the next matching requests, in order,
                                             # before the shares apply
   "max_faults": 5,                          # stop injecting after this many
   "delay": 0.5}                             # seconds each matching request is held first
Default: no faults. Tests running in parallel each keep their own rule
under a name: POST /_fault/config?rule=NAME adds or replaces rule NAME (and
reseeds it), DELETE /_fault/config?rule=NAME removes it; without ?rule= the
rule is "default". A request is decided by the first rule (in creation
order) whose match it satisfies; POST {} to a rule leaves it matching
everything with no faults.

  GET    /_fault/config               {"rules": {NAME: config}}
  GET    /_fault/stats   {"requests": n, "faults": {kind: n}, "faults_by_rule": {NAME: {kind: n}},
                          "forwarded": {"PUT s3:UploadPart": n},
                          "forwarded_targets": {"s3:UploadPart <upload>#<part>": n},
                          "upstream_status": {"200": n}}
  POST   /_fault/reset   zero the stats (rules kept)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from collections import Counter

from proxy_common import (Request, Response, UpstreamError, attribute_service, ec2_error, forward,
                          json_error, json_response, parse_upstream, query_error, request_kind, s3_error,
                          serve)
from fake_common import FAULT_KINDS, FaultRule, FaultRules  # tests/, put on sys.path by proxy_common


class ProxyRule(FaultRule):
    """fake_common's rule with the proxy's own kind: truncate (after `after_bytes`)."""
    KINDS = (*FAULT_KINDS, "truncate")
    KEYS = (*FaultRule.KEYS, "after_bytes")


class FaultProxy:
    def __init__(self, upstream_url: str, config: dict):
        self.upstream = parse_upstream(upstream_url)
        self.lock = threading.Lock()
        self.rules = FaultRules(ProxyRule)
        if config:
            self.rules.control("POST", "", json.dumps(config).encode())
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests = 0
            self.faults: Counter = Counter()
            self.forwarded: Counter = Counter()
            self.targets: Counter = Counter()
            self.statuses: Counter = Counter()
            self.rules.reset_counts()

    def choose(self, label: str) -> tuple[str, ProxyRule | None]:
        with self.lock:
            self.requests += 1
            rule = self.rules.find(label)
            kind = rule.choose() if rule else "ok"
            if kind != "ok":
                self.faults[kind] += 1
            return kind, rule

    def __call__(self, handler, req: Request) -> None:
        if req.path.startswith("/_fault/"):
            handler.send(self.control(req))
            return
        attribute_service(req)
        op, target = request_kind(req)
        label = f"{req.method} {op}"
        kind, rule = self.choose(f"{label} {target}")
        if rule and rule.delay:
            time.sleep(rule.delay)  # held before the fault or the forward: a window to kill the client in
        if kind == "drop":
            handler.drop()
            return
        if kind in ("status500", "status503", "throttle"):
            handler.send(fault_response(req.service, kind, req.path))
            return
        try:
            resp = forward(self.upstream, req)
        except UpstreamError as e:
            resp = fault_response(req.service, "status503", req.path, f"fault proxy: upstream unreachable: {e}")
        with self.lock:
            self.forwarded[label] += 1
            if target:
                self.targets[f"{op} {target}"] += 1
            self.statuses[str(resp.status)] += 1
        after = rule.doc.get("after_bytes") if rule else None
        if kind == "drop_after":
            handler.drop()
        elif kind == "truncate":
            # The full length is promised; an empty body promises a byte that never comes.
            resp.headers = [(k, v) for k, v in resp.headers if k.lower() != "content-length"]
            resp.headers.append(("Content-Length", str(max(len(resp.body), 1))))
            cut = len(resp.body) // 2 if after is None else min(int(after), max(len(resp.body) - 1, 0))
            handler.send(resp, truncate_at=cut)
        else:
            handler.send(resp)

    def control(self, req: Request) -> Response:
        if req.path == "/_fault/config":
            with self.lock:
                try:
                    return json_response(self.rules.control(req.method, req.query, req.body))
                except (ValueError, TypeError, re.error) as e:
                    return json_response({"error": f"bad fault config: {e}"}, 400)
        if req.path == "/_fault/stats":
            with self.lock:
                return json_response({"requests": self.requests, "faults": dict(self.faults),
                                      "faults_by_rule": self.rules.by_rule(),
                                      "forwarded": dict(self.forwarded),
                                      "forwarded_targets": dict(self.targets),
                                      "upstream_status": dict(self.statuses)})
        if req.path == "/_fault/reset" and req.method == "POST":
            self.reset()
            return json_response({"ok": True})
        if req.path == "/_fault/health":
            return json_response({"ok": True, "upstream": "%s:%d" % self.upstream})
        return json_response({"error": f"unknown control endpoint {req.method} {req.path}"}, 404)


def fault_response(service: str, kind: str, resource: str, message: str | None = None) -> Response:
    """The answer a service gives for an injected fault, in its own format."""
    if service == "ec2":
        return {"status500": lambda: ec2_error(500, "InternalError", message or "An internal error has occurred"),
                "status503": lambda: ec2_error(503, "Unavailable",
                                               message or "The server is overloaded and can't handle the request."),
                "throttle": lambda: ec2_error(400, "RequestLimitExceeded", "Request limit exceeded."),
                }[kind]()
    if service == "ebs":
        return {"status500": lambda: json_error(500, "InternalServerException",
                                                message or "An internal error has occurred."),
                "status503": lambda: json_error(503, "ServiceUnavailableException",
                                                message or "The service is unavailable. Try again."),
                "throttle": lambda: json_error(400, "ThrottlingException", "Rate exceeded"),
                }[kind]()
    if service in ("iam", "sts"):
        return {"status500": lambda: query_error(500, "InternalFailure", message or "Internal failure."),
                "status503": lambda: query_error(503, "ServiceUnavailable", message or "Service unavailable."),
                "throttle": lambda: query_error(400, "Throttling", "Rate exceeded"),
                }[kind]()
    return {"status500": lambda: s3_error(500, "InternalError",
                                          message or "We encountered an internal error. Please try again.", resource),
            "status503": lambda: s3_error(503, "SlowDown", message or "Please reduce your request rate.", resource),
            "throttle": lambda: s3_error(503, "SlowDown", "Please reduce your request rate.", resource),
            }[kind]()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=47002)
    ap.add_argument("--upstream", default="http://127.0.0.1:47000")
    args = ap.parse_args()
    try:
        config = json.loads(os.environ.get("FAULT_PROXY_CONFIG", "") or "{}")
        proxy = FaultProxy(args.upstream, config)
    except (ValueError, re.error) as e:
        raise SystemExit(f"FAULT_PROXY_CONFIG: {e}")
    serve(args.host, args.port, proxy)


if __name__ == "__main__":
    sys.exit(main())
