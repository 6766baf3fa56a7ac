"""Plumbing shared by the two test proxies (gap_proxy.py, fault_proxy.py).

Both sit on loopback in front of moto_server and must not change what they
do not mean to change: a request is forwarded with its method, path, query,
headers (Authorization included) and body as received; only hop-by-hop
headers (RFC 9110 7.6.1) are dropped, and a chunked request body is sent
on de-chunked with a Content-Length (moto reads either).

A request is attributed to a service the way AWS endpoints do it when every
service shares one host: by the SigV4 credential scope
(`Credential=AKID/DATE/REGION/SERVICE/aws4_request`, in the Authorization
header or the presigned X-Amz-Credential query parameter). Unsigned
requests fall back to the shape of the request.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import sys
import threading
import traceback
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, unquote, urlsplit

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fake_common import drop_connection, listen, read_body  # noqa: E402  (tests/: after the path is set)

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade", "expect",
}

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"

_SCOPE_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_QUERY_SCOPE_RE = re.compile(r"^[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request$")


@dataclass
class Request:
    method: str
    path: str          # raw path, percent-encoded as received
    query: str         # raw query string, without '?'
    headers: list      # [(name, value)] in received order
    body: bytes
    service: str = "s3"
    region: str = "us-east-1"
    params: dict = field(default_factory=dict)  # EC2 query parameters

    def header(self, name: str, default: str | None = None) -> str | None:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return default

    def query_params(self) -> dict:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    @property
    def target(self) -> str:
        return self.path + ("?" + self.query if self.query else "")


@dataclass
class Response:
    status: int
    headers: list      # [(name, value)], without Content-Length
    body: bytes
    reason: str = ""


def new_request_id() -> str:
    return str(uuid.uuid4())


def attribute_service(req: Request) -> None:
    """Fills req.service, req.region and (for EC2) req.params."""
    m = _SCOPE_RE.search(req.header("Authorization", "") or "")
    if not m:
        cred = req.query_params().get("X-Amz-Credential", "")
        m = _QUERY_SCOPE_RE.match(cred)
    ctype = (req.header("Content-Type", "") or "").lower()
    form = ctype.startswith("application/x-www-form-urlencoded")
    if m:
        req.region, req.service = m.group(1), m.group(2)
    elif form and b"Action=" in req.body:
        req.service = "ec2"
    elif req.path.startswith("/snapshots"):
        req.service = "ebs"
    else:
        req.service = "s3"
    if req.service in ("ec2", "iam", "sts"):
        if req.method == "POST" and form:
            req.params = dict(parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
        else:
            req.params = req.query_params()


def request_kind(req: Request) -> tuple[str, str]:
    """Names the operation: ("s3:UploadPart", "<upload id>#<part>") etc.

    The second item identifies what the request acts on, so that a test can
    tell a retried request from a duplicated one.
    """
    if req.service in ("ec2", "iam", "sts"):
        # The target is the request's own parameters (names, ids, tokens), so
        # a test can scope faults to, and count, its own calls.
        args = "&".join(f"{k}={v}" for k, v in sorted(req.params.items())
                        if k not in ("Action", "Version"))
        return f"{req.service}:{req.params.get('Action', '?')}", args[:300]
    parts = [unquote(p) for p in req.path.split("/") if p]
    q = req.query_params()
    if req.service == "ebs":
        m = req.method
        if m == "POST" and parts == ["snapshots"]:
            try:
                doc = json.loads(req.body or b"{}")
            except ValueError:
                doc = {}
            return "ebs:StartSnapshot", str(doc.get("ClientToken") or doc.get("Description") or "")
        if m == "POST" and len(parts) == 3 and parts[1] == "completion":
            return "ebs:CompleteSnapshot", parts[2]
        if len(parts) == 4 and parts[2] == "blocks":
            op = "PutSnapshotBlock" if m == "PUT" else "GetSnapshotBlock"
            return f"ebs:{op}", f"{parts[1]}/{parts[3]}"
        if len(parts) == 3 and parts[2] == "blocks":
            return "ebs:ListSnapshotBlocks", parts[1]
        if len(parts) == 3 and parts[2] == "changedblocks":
            return "ebs:ListChangedBlocks", parts[1]
        return f"ebs:{m}", "/".join(parts)
    return _s3_kind(req.method, parts, q, req.header("x-amz-copy-source") is not None)


def _s3_kind(method: str, parts: list, q: dict, copy: bool) -> tuple[str, str]:
    if not parts:
        return ("s3:ListBuckets" if method == "GET" else f"s3:{method}Service"), ""
    bucket = parts[0]
    if len(parts) == 1:
        named = {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}
        if "uploads" in q:
            return "s3:ListMultipartUploads", bucket
        if not q or "list-type" in q or "prefix" in q or "delimiter" in q:
            if method in named:
                return f"s3:{named[method]}", bucket
            if method == "GET":
                return "s3:ListObjects", bucket
        sub = next(iter(sorted(q)), "")
        return f"s3:{method}Bucket{sub.capitalize()}", bucket
    key = "/".join(parts[1:])
    target = f"{bucket}/{key}"
    if "uploadId" in q:
        upload = q["uploadId"]
        if method == "PUT" and "partNumber" in q:
            return ("s3:UploadPartCopy" if copy else "s3:UploadPart"), f"{upload}#{q['partNumber']}"
        names = {"POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload", "GET": "ListParts"}
        return f"s3:{names.get(method, method + 'Upload')}", upload
    if method == "POST" and "uploads" in q:
        return "s3:CreateMultipartUpload", target
    sub = next((k for k in sorted(q) if k not in ("versionId", "partNumber") and not k.startswith("X-Amz-")
                and not k.startswith("response-")), "")
    if sub:
        return f"s3:{method}Object{sub.capitalize()}", target
    names = {"PUT": "CopyObject" if copy else "PutObject", "GET": "GetObject",
             "HEAD": "HeadObject", "DELETE": "DeleteObject", "POST": "PostObject"}
    return f"s3:{names.get(method, method + 'Object')}", target


# --- error bodies in each service's own format ------------------------------

def ec2_error(status: int, code: str, message: str) -> Response:
    from xml.sax.saxutils import escape
    rid = new_request_id()
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"</Error></Errors><RequestID>{rid}</RequestID></Response>")
    return Response(status, [("Content-Type", "text/xml;charset=UTF-8"), ("x-amzn-RequestId", rid)],
                    body.encode())


def s3_error(status: int, code: str, message: str, resource: str = "") -> Response:
    from xml.sax.saxutils import escape
    rid = uuid.uuid4().hex[:16].upper()
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"<Resource>{escape(resource)}</Resource><RequestId>{rid}</RequestId>"
            f"<HostId>{uuid.uuid4().hex}</HostId></Error>")
    return Response(status, [("Content-Type", "application/xml"), ("x-amz-request-id", rid)], body.encode())


def json_error(status: int, code: str, message: str, extra: dict | None = None) -> Response:
    """restJson1 error (EBS direct APIs): type in x-amzn-ErrorType."""
    rid = new_request_id()
    doc = {"Message": message}
    doc.update(extra or {})
    return Response(status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code),
                             ("x-amzn-RequestId", rid)], json.dumps(doc).encode())


def query_error(status: int, code: str, message: str) -> Response:
    """awsQuery error (IAM, STS)."""
    from xml.sax.saxutils import escape
    rid = new_request_id()
    body = (f'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{rid}</RequestId></ErrorResponse>")
    return Response(status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body.encode())


def json_response(doc, status: int = 200) -> Response:
    return Response(status, [("Content-Type", "application/json")], (json.dumps(doc, indent=1) + "\n").encode())


# --- HTTP ---------------------------------------------------------------------

class UpstreamError(Exception):
    pass


class _Pool:
    """Idle keep-alive connections per upstream. A connection per request
    would cost a TCP handshake each and, worse, leave every request of a
    burst (16 regions' polls) queued on connects; moto's server keeps
    HTTP/1.1 connections open, so a proxy thread takes an idle one."""

    MAX_IDLE = 32

    def __init__(self):
        self.lock = threading.Lock()
        self.idle: dict[tuple, list] = {}

    def get(self, upstream: tuple[str, int], timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        with self.lock:
            conns = self.idle.get(upstream)
            if conns:
                conn = conns.pop()
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                return conn, True
        conn = http.client.HTTPConnection(upstream[0], upstream[1], timeout=timeout)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, False

    def put(self, upstream: tuple[str, int], conn: http.client.HTTPConnection) -> None:
        with self.lock:
            conns = self.idle.setdefault(upstream, [])
            if len(conns) < self.MAX_IDLE:
                conns.append(conn)
                return
        conn.close()


_POOL = _Pool()


def forward(upstream: tuple[str, int], req: Request, timeout: float = 120.0) -> Response:
    """Sends req to upstream as received; returns the whole response."""
    for attempt in (1, 2):
        try:
            conn, reused = _POOL.get(upstream, timeout)
        except OSError as e:
            raise UpstreamError(f"{req.method} {req.path} to {upstream[0]}:{upstream[1]}: {e}") from e
        try:
            conn.putrequest(req.method, req.target, skip_host=True, skip_accept_encoding=True)
            has_host = False
            for k, v in req.headers:
                lk = k.lower()
                if lk in HOP_BY_HOP or lk == "content-length":
                    continue
                has_host |= lk == "host"
                conn.putheader(k, v)
            if not has_host:
                conn.putheader("Host", f"{upstream[0]}:{upstream[1]}")
            if req.body or req.method in ("PUT", "POST", "PATCH"):
                conn.putheader("Content-Length", str(len(req.body)))
            conn.endheaders(req.body if req.body else None)
            resp = conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
            conn.close()
            # An idle connection the server had closed: nothing was answered,
            # so send once more on a new one.
            if reused and attempt == 1:
                continue
            raise UpstreamError(f"{req.method} {req.path} to {upstream[0]}:{upstream[1]}: {e}") from e
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise UpstreamError(f"{req.method} {req.path} to {upstream[0]}:{upstream[1]}: {e}") from e
        try:
            body = resp.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise UpstreamError(f"{req.method} {req.path} to {upstream[0]}:{upstream[1]}: {e}") from e
        headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
        if resp.will_close:
            conn.close()
        else:
            _POOL.put(upstream, conn)
        return Response(resp.status, headers, body, resp.reason)
    raise AssertionError("unreachable")


def parse_upstream(url: str) -> tuple[str, int]:
    u = urlsplit(url)
    if u.scheme != "http" or not u.hostname:
        raise SystemExit(f"upstream must be http://HOST:PORT, got {url!r}")
    return u.hostname, u.port or 80


class ProxyHandler(BaseHTTPRequestHandler):
    """Reads a whole request, hands it to self.server.app(handler, req)."""

    protocol_version = "HTTP/1.1"
    server_version = "cloud-helper-test-proxy"
    # Buffered: head and a small body leave in one segment at flush().
    wbufsize = -1

    def setup(self) -> None:
        super().setup()
        # Without it, an answer written as head then body waits for the
        # client's delayed ACK (Nagle): ~40 ms per request on loopback.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_expect_100(self) -> bool:
        ok = super().handle_expect_100()
        self.wfile.flush()  # the client waits for this interim answer
        return ok

    def _handle(self) -> None:
        raw = self.path
        if raw.startswith("http://") or raw.startswith("https://"):
            raw = urlsplit(raw)._replace(scheme="", netloc="").geturl()
        path, _, query = raw.partition("?")
        req = Request(self.command, path, query, list(self.headers.items()), read_body(self))
        try:
            self.server.app(self, req)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a proxy bug: answer it plainly instead of hanging up
            traceback.print_exc(file=sys.stderr)
            self.send(Response(500, [("Content-Type", "text/plain")],
                               f"test proxy bug: {type(e).__name__}: {e} (see its log)\n".encode()))

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle

    def send(self, resp: Response, truncate_at: int | None = None) -> None:
        """Writes resp; with truncate_at, stops after that many body bytes
        and closes the connection (a peer that dies mid-response)."""
        self.send_response_only(resp.status, resp.reason or None)
        # Content-Length is the body's, except for HEAD (the object's) and a
        # truncated answer that names its own.
        keep_len = self.command == "HEAD" or truncate_at is not None
        for k, v in resp.headers:
            if k.lower() != "content-length" or keep_len:
                self.send_header(k, v)
        if not (keep_len and any(k.lower() == "content-length" for k, _ in resp.headers)):
            self.send_header("Content-Length", str(len(resp.body)))
        if truncate_at is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body if truncate_at is None else resp.body[:truncate_at])
        self.wfile.flush()
        if truncate_at is not None:
            self.drop()

    def drop(self) -> None:
        """Closes the connection without (further) answer."""
        drop_connection(self)

    def log_message(self, fmt, *args) -> None:
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))


def serve(host: str, port: int, app) -> None:
    server = listen(host, port, ProxyHandler, app=app)
    sys.stderr.write(f"listening on http://{host}:{port}\n")
    sys.stderr.flush()
    server.serve_forever()
