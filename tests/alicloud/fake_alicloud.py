#!/usr/bin/env python3
"""Fake Alibaba Cloud OSS + ECS (RPC) for cloud_helper's tests. Stdlib only.

    python3 tests/alicloud/fake_alicloud.py --host 127.0.0.1 --oss-port 48220 --ecs-port 48221 \\
        [--state-dir DIR] [--import-seconds 0.4] [--copy-seconds 0.3]

Two threaded HTTP servers in one process, sharing one in-memory state.

Credentials (both services): AccessKey TEST_AK_ID / TEST_AK_SECRET, and an STS
AccessKey TEST_STS_ID / TEST_STS_SECRET that is valid only with security token
TEST_STS_TOKEN. Signatures are really verified with the secret.

OSS (https://www.alibabacloud.com/help/en/oss/developer-reference/): the bucket is taken
from a virtual-hosted Host header (BUCKET.oss-REGION.aliyuncs.com), else path style
(/BUCKET/KEY). Buckets exist only after POST /_fake/buckets; a request through another
region's endpoint gets 403 AccessDenied ("must be addressed using the specified endpoint").
  Auth: "OSS4-HMAC-SHA256 Credential=AK/DATE/REGION/oss/aliyun_v4_request[,AdditionalHeaders=..],
  Signature=HEX" (x-oss-date and x-oss-content-sha256 required; canonical request and string to
  sign as documented) or V1 "OSS AK:base64(HMAC-SHA1)" (Date or x-oss-date; CanonicalizedResource
  with the V1 subresources). Errors as OSS sends them: <Error><Code/><Message/><RequestId/><HostId/>
  [<StringToSign/> on SignatureDoesNotMatch]<EC/></Error> plus x-oss-request-id and x-oss-ec
  headers: AccessDenied (no Authorization), InvalidAccessKeyId, SignatureDoesNotMatch,
  RequestTimeTooSkewed (15 min), InvalidArgument (bad V4 headers/scope), NoSuchBucket, NoSuchKey,
  NoSuchUpload, InvalidDigest / BadDigest (Content-MD5), InvalidPart, InvalidPartOrder,
  EntityTooSmall (parts but the last below 100 KB), InvalidSecurityToken; injected: 503
  TotalQpsLimitExceeded (EC 0004-00000302, OSS's flow control) and 503 ServiceUnavailable.
  Operations: PutObject, GetObject, HeadObject (x-oss-hash-crc64ecma, x-oss-object-type),
  DeleteObject (204 even when absent), InitiateMultipartUpload, UploadPart (ETag = quoted
  uppercase MD5, x-oss-hash-crc64ecma of the part), ListParts (max-parts/part-number-marker paging),
  CompleteMultipartUpload (ETag "MD5-of-MD5s-N", x-oss-hash-crc64ecma of the object),
  AbortMultipartUpload. CRC-64 is CRC-64/XZ (ECMA-182, reflected, ~0 init and xorout), as OSS.

ECS RPC (Version 2014-05-26, GET query or POST form; Format JSON): signature version 1.0
HMAC-SHA1 of METHOD&%2F&percent-encoded sorted query with key SECRET&. Errors as JSON
{"RequestId","HostId","Code","Message","Recommend"} with x-acs-request-id:
  IncompleteSignature (400: a common parameter missing or malformed), SignatureDoesNotMatch (400,
  message quotes the server's string to sign), InvalidAccessKeyId.NotFound (404),
  SignatureNonceUsed (400), InvalidTimeStamp.Expired (400, 15 min), InvalidSecurityToken.Missing/
  .MisMatch (400), MissingParameter (400), InvalidRegionId.NotFound (404),
  InvalidAction.NotFound (404), Throttling.User (400, injected), and the throttling codes of
  /_fake/throttle: Throttling (400, "Request was denied due to request throttling."),
  Throttling.User (400, "... user flow control."), Throttling.Api (400, "... api flow control."),
  ServiceUnavailable (503).
  ImportImage: OSS object must exist in a bucket of the same region (InvalidOSSObject.NotFound);
    Format RAW|VHD|QCOW2 (any case); DiskImageSize (GiB) >= the image's virtual size (read from
    the qcow2 header, or the raw/vhd size) else InvalidParameter.DiskImageSize; Architecture
    x86_64|i386|arm64; BootMode BIOS|UEFI (arm64 needs UEFI); ImageName unique per region
    (InvalidImageName.Duplicated); ClientToken makes a repeated call answer the same image.
    The image is Creating (Progress grows) for --import-seconds, then Available.
  DescribeImages: ImageId (comma list), ImageName, Status (default Available only, as ECS),
    ImageOwnerAlias, PageSize/PageNumber.
  CopyImage: source must be Available (IncorrectImageStatus); ClientToken; copy Creating for
    --copy-seconds, then Available (or CreateFailed for regions in config copy_fail_regions).
  Custom image quota (per region, set through /_fake/quota; unlimited by default): an ImportImage
    or CopyImage that would make the region hold more custom images than the quota is refused with
    403 QuotaExceed.Image ("The Image Quota exceeds." from ImportImage, "The number of images
    exceeds the limit (N)." from CopyImage, as the two API references word it); a repeated
    ClientToken still answers the image it made. Refusals are counted in stats as
    "quota ACTION REGION".
  ModifyImageSharePermission (IsPublic, AddAccount.N/RemoveAccount.N; Available only),
  DescribeImageSharePermission (ShareGroups.ShareGroup [{Group: all}] when public, Accounts),
  TagResources (ResourceType image), DeleteImage (IncorrectImageStatus while Creating;
  InvalidImageId.NotFound).

Test control (either port, no auth):
  GET  /_fake/health
  POST /_fake/buckets {"name","region"}            create a bucket
  GET  /_fake/object?bucket=B&key=K                 raw bytes of an object
  GET  /_fake/state                                 buckets (object sizes, crc), uploads, images, stats
  POST /_fake/config {"import_seconds","copy_seconds","copy_fail_regions": [..],"part_delay": s}
       (part_delay: every UploadPart waits this long before answering, to kill a run mid-upload)
  POST /_fake/quota {"region": R, "images": N}       custom image quota of R (DELETE ?region=R lifts it)
  GET, POST/DELETE /_fake/throttle?rule=NAME {"match": regex as for faults, "codes": [..]}
       the next matching ECS requests, one per code in order, are answered with that throttling
       code (Throttling, Throttling.User, Throttling.Api: 400; ServiceUnavailable: 503), then the
       rule is spent (GET lists the codes each rule has left); per test by its name and its regex
  POST/DELETE /_fake/faults?rule=NAME {"match": regex on "ECS Action k=v ..." (sorted parameters, no
       credentials) / "OSS METHOD /bucket/key?query",
       "throttle"|"status500"|"status503"|"drop"|"drop_after": share, "seed", "sequence", "max_faults"}
       (tests/aws/fault_proxy.py semantics, as tests/azure/fake_arm.py)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fake_common import FakeHandler, FaultRules, listen, serve  # noqa: E402

KEYS = {  # AccessKey id -> (secret, required security token or None)
    "TEST_AK_ID": ("TEST_AK_SECRET", None),
    "TEST_STS_ID": ("TEST_STS_SECRET", "TEST_STS_TOKEN"),
}
REGIONS = {"cn-hangzhou", "cn-shanghai", "cn-beijing", "cn-shenzhen", "cn-hongkong", "ap-southeast-1",
           "ap-northeast-1", "eu-central-1", "eu-west-1", "us-west-1", "us-east-1", "me-east-1"}
V1_SUBRESOURCES = {"acl", "append", "bucketInfo", "cname", "comp", "cors", "delete", "endTime", "img", "lifecycle",
                   "live", "location", "logging", "objectMeta", "partNumber", "position", "qos", "referer",
                   "replication", "restore", "security-token", "startTime", "status", "style", "symlink",
                   "tagging", "uploadId", "uploads", "website", "x-oss-process"}
MIN_PART = 100 * 1024
GIB = 1 << 30
SKEW = 15 * 60
# ECS's flow-control answers (common error codes of the RPC APIs; the SDKs retry them).
THROTTLE_ANSWERS = {
    "Throttling": (400, "Request was denied due to request throttling."),
    "Throttling.User": (400, "Request was denied due to user flow control."),
    "Throttling.Api": (400, "Request was denied due to api flow control."),
    "ServiceUnavailable": (503, "The request has failed due to a temporary failure of the server."),
}

# CRC-64/XZ table (ECMA-182 polynomial, reflected).
_POLY = 0xC96C5795D7870F42
_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ _POLY if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc64(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFFFFFFFFFF
    t = _TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def enc(s: str, safe: str = "") -> str:
    return quote(s, safe="-_.~" + safe)


def request_id() -> str:
    return secrets.token_hex(12).upper()


class Fail(Exception):
    def __init__(self, status: int, code: str, message: str, extra: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra or {}


class State:
    def __init__(self, args):
        self.lock = threading.RLock()
        self.config = {"import_seconds": args.import_seconds, "copy_seconds": args.copy_seconds,
                       "copy_fail_regions": [], "part_delay": 0.0}
        self.buckets: dict[str, dict] = {}      # name -> {"region", "objects": {key: obj}}
        self.uploads: dict[str, dict] = {}      # upload id -> {"bucket", "key", "parts": {n: part}}
        self.images: dict[str, dict] = {}       # image id -> image
        self.tokens: dict[str, str] = {}        # ClientToken -> image id
        self.nonces: set[str] = set()
        self.rules = FaultRules()
        self.quota: dict[str, int] = {}        # region -> max custom images
        self.throttles: dict[str, dict] = {}   # rule name -> {"match": regex, "codes": [..] left}
        self.stats: Counter = Counter()
        self.state_dir = args.state_dir

    def log(self, line: str) -> None:
        if self.state_dir:
            with self.lock, open(os.path.join(self.state_dir, "requests.log"), "a") as f:
                f.write(f"{time.strftime('%H:%M:%S')} {line}\n")

    def fault(self, label: str) -> str:
        with self.lock:
            kind = self.rules.pick(label)
            if kind != "ok":
                self.stats["fault " + kind] += 1
            return kind

    # image life cycle: Creating until ready_at, then Available (or CreateFailed)
    def refresh(self, img: dict) -> dict:
        if img["Status"] == "Creating":
            now = time.time()
            if now >= img["_ready_at"]:
                img["Status"] = img.get("_final", "Available")
                img["Progress"] = "100%"
            else:
                span = max(img["_ready_at"] - img["_started"], 1e-6)
                img["Progress"] = f"{int(99 * (now - img['_started']) / span)}%"
        return img


def image_view(img: dict) -> dict:
    return {k: v for k, v in img.items() if not k.startswith("_")}


def qcow2_virtual_size(data: bytes) -> int | None:
    if len(data) >= 32 and data[:4] == b"QFI\xfb":
        return int.from_bytes(data[24:32], "big")
    return None


class Handler(FakeHandler):
    """Answers are written with reply() (an object's HEAD by hand): the service functions
    below send OSS's XML and ECS's JSON themselves."""
    server_version = "AliyunOSS"

    def reply(self, status: int, body: bytes = b"", headers: list | None = None, head: bool = False) -> None:
        self.send_response(status)
        for k, v in headers or []:
            self.send_header(k, v)
        self.send_header("Date", formatdate(usegmt=True))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not head and self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        st: State = self.server.state
        data = self.read_body()
        parts = urlsplit(self.path)
        if parts.path.startswith("/_fake/"):
            return self.control(st, parts.path, parts.query, data)
        try:
            self.server.service(self, st, parts, data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    # --- test control -----------------------------------------------------------------------------
    def control(self, st: State, path: str, query: str, data: bytes):
        q = dict(parse_qsl(query, keep_blank_values=True))
        doc = json.loads(data or b"{}")
        with st.lock:
            if path == "/_fake/health":
                out = {"ok": True}
            elif path == "/_fake/buckets" and self.command == "POST":
                st.buckets.setdefault(doc["name"], {"region": doc["region"], "objects": {}})
                out = {"name": doc["name"], "region": st.buckets[doc["name"]]["region"]}
            elif path == "/_fake/object":
                obj = st.buckets.get(q.get("bucket"), {}).get("objects", {}).get(q.get("key"))
                if obj is None:
                    return self.reply(404, b"no such object")
                return self.reply(200, obj["data"], [("Content-Type", "application/octet-stream")])
            elif path == "/_fake/state":
                for img in st.images.values():
                    st.refresh(img)
                out = {"buckets": {b: {"region": v["region"], "objects": {
                    k: {"size": len(o["data"]), "crc64": o["crc64"], "etag": o["etag"]}
                    for k, o in v["objects"].items()}} for b, v in st.buckets.items()},
                    "uploads": {u: {"bucket": v["bucket"], "key": v["key"], "parts": sorted(v["parts"])}
                                for u, v in st.uploads.items()},
                    "images": {i: dict(image_view(v), IsPublic=v["_public"], Tags=v["_tags"],
                                       Accounts=v["_accounts"]) for i, v in st.images.items()},
                    "stats": dict(st.stats)}
            elif path == "/_fake/config" and self.command == "POST":
                st.config.update(doc)
                out = st.config
            elif path == "/_fake/quota":
                if self.command == "DELETE":
                    st.quota.pop(q.get("region", ""), None)
                else:
                    if doc.get("region") not in REGIONS or int(doc.get("images", -1)) < 0:
                        return self.reply(400, b'{"error":"need a known region and images >= 0"}')
                    st.quota[doc["region"]] = int(doc["images"])
                out = st.quota
            elif path == "/_fake/throttle":
                name = q.get("rule", "")
                if self.command == "DELETE":
                    st.throttles.pop(name, None)
                elif self.command == "POST":
                    bad = [c for c in doc.get("codes", []) if c not in THROTTLE_ANSWERS]
                    if not name or bad or not doc.get("codes"):
                        return self.reply(400, json.dumps({"error": f"need ?rule= and codes from "
                                                                    f"{sorted(THROTTLE_ANSWERS)}"}).encode())
                    st.throttles[name] = {"match": re.compile(doc.get("match", "")), "codes": list(doc["codes"])}
                out = {k: {"match": v["match"].pattern, "codes": v["codes"]} for k, v in st.throttles.items()}
            elif path == "/_fake/faults":
                try:
                    out = st.rules.control(self.command, query, data)
                except (ValueError, re.error) as e:  # a bad rule
                    return self.reply(400, json.dumps({"error": str(e)}).encode())
            else:
                return self.reply(404, b'{"error":"unknown control path"}')
        self.reply(200, json.dumps(out).encode(), [("Content-Type", "application/json")])


# --- OSS ------------------------------------------------------------------------------------------

def oss_error(h: Handler, st: State, e: Fail, bucket: str = "", key: str = "") -> None:
    rid = request_id()
    ec = {"AccessDenied": "0003-00000001", "InvalidAccessKeyId": "0002-00000902",
          "SignatureDoesNotMatch": "0002-00000040", "NoSuchKey": "0026-00000001",
          "NoSuchBucket": "0015-00000101", "NoSuchUpload": "0042-00000002",
          "TotalQpsLimitExceeded": "0004-00000302"}.get(e.code, "0000-00000000")
    fields = {"Code": e.code, "Message": e.message, "RequestId": rid, "HostId": h.headers.get("Host", "")}
    fields.update(e.extra)
    fields["EC"] = ec
    body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n" + "".join(
        f"  <{k}>{escape(str(v))}</{k}>\n" for k, v in fields.items()) + "</Error>\n"
    st.stats[f"oss {e.code}"] += 1
    h.reply(e.status, body.encode(), [("Content-Type", "application/xml"), ("x-oss-request-id", rid),
                                      ("x-oss-ec", ec), ("Server", "AliyunOSS")])


def oss_locate(h: Handler, st: State, path: str) -> tuple[str, str, str | None]:
    """(bucket, key, region of the endpoint used)."""
    host = (h.headers.get("Host") or "").split(":")[0].lower()
    m = re.match(r"^([a-z0-9-]{3,63})\.oss-([a-z0-9-]+)\.aliyuncs\.com$", host)
    raw = unquote(path)
    if m:
        return m.group(1), raw[1:], m.group(2)
    m = re.match(r"^oss-([a-z0-9-]+)\.aliyuncs\.com$", host)
    seg = raw[1:].split("/", 1)
    return seg[0], seg[1] if len(seg) > 1 else "", m.group(1) if m else None


def header_map(h: Handler) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in h.headers.items():
        out.setdefault(k.lower(), []).append(v.strip())
    return out


def oss_auth(h: Handler, st: State, bucket: str, key: str, region: str, query: list[tuple[str, str]]) -> None:
    auth = h.headers.get("Authorization")
    hdrs = header_map(h)
    if not auth:
        raise Fail(403, "AccessDenied", "You have no right to access this object because of bucket acl.")

    def check_key(ak: str) -> str:
        if ak not in KEYS:
            raise Fail(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records.",
                       {"OSSAccessKeyId": ak})
        secret, token = KEYS[ak]
        if token is not None and hdrs.get("x-oss-security-token", [""])[0] != token:
            raise Fail(403, "InvalidSecurityToken", "The security token you provided is invalid.")
        return secret

    if auth.startswith("OSS4-HMAC-SHA256 "):
        fields = {}
        for part in auth[len("OSS4-HMAC-SHA256 "):].split(","):
            k, _, v = part.strip().partition("=")
            fields[k] = v
        cred = fields.get("Credential", "").split("/")
        if len(cred) != 5 or cred[3] != "oss" or cred[4] != "aliyun_v4_request" or "Signature" not in fields:
            raise Fail(400, "InvalidArgument", "Authorization header is invalid.")
        ak, date, sign_region = cred[0], cred[1], cred[2]
        secret = check_key(ak)
        xdate = hdrs.get("x-oss-date", [""])[0]
        if "x-oss-content-sha256" not in hdrs:
            raise Fail(400, "InvalidArgument", "x-oss-content-sha256 must be provided.")
        try:
            t = datetime.strptime(xdate, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            raise Fail(403, "AccessDenied", "Invalid x-oss-date, it must be in ISO 8601 format.")
        if abs(time.time() - t) > SKEW:
            raise Fail(403, "RequestTimeTooSkewed", "The difference between the request time and the current time "
                                                    "is too large.")
        if date != xdate[:8]:
            raise Fail(403, "SignatureDoesNotMatch", "Invalid signing date in Authorization header.")
        if sign_region != region:
            raise Fail(403, "SignatureDoesNotMatch", f"Invalid signing region in Authorization header: "
                                                     f"{sign_region}, expected {region}.")
        additional = [a for a in fields.get("AdditionalHeaders", "").split(";") if a]
        signed = sorted(k for k in hdrs if k.startswith("x-oss-") or k in ("content-type", "content-md5")
                        or k in additional)
        canon_headers = "".join(f"{k}:{','.join(hdrs[k])}\n" for k in signed)
        q = sorted((enc(k), enc(v)) for k, v in query)
        canon_query = "&".join(k + ("=" + v if v else "") for k, v in q)
        uri = "/" + (bucket + "/" if bucket else "") + key
        canonical = "\n".join([h.command, enc(uri, "/"), canon_query, canon_headers, ";".join(additional),
                               hdrs["x-oss-content-sha256"][0]])
        sts = "\n".join(["OSS4-HMAC-SHA256", xdate, f"{date}/{region}/oss/aliyun_v4_request",
                         hashlib.sha256(canonical.encode()).hexdigest()])
        k = ("aliyun_v4" + secret).encode()
        for m in (date, region, "oss", "aliyun_v4_request"):
            k = hmac.new(k, m.encode(), hashlib.sha256).digest()
        want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, fields["Signature"]):
            raise Fail(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the "
                                                     "signature you provided. Check your key and signing method.",
                       {"OSSAccessKeyId": ak, "StringToSign": sts, "CanonicalRequest": canonical})
        return
    m = re.match(r"^OSS ([^:]+):(.+)$", auth)
    if not m:
        raise Fail(400, "InvalidArgument", "Authorization header is invalid.")
    ak, sig = m.group(1), m.group(2)
    secret = check_key(ak)
    date = hdrs.get("date", [""])[0]
    try:
        t = parsedate_to_datetime(hdrs.get("x-oss-date", [date])[0]).timestamp()
    except (TypeError, ValueError):
        raise Fail(403, "AccessDenied", "OSS authentication requires a valid Date.")
    if abs(time.time() - t) > SKEW:
        raise Fail(403, "RequestTimeTooSkewed", "The difference between the request time and the current time is "
                                                "too large.")
    oss_headers = "".join(f"{k}:{','.join(hdrs[k])}\n" for k in sorted(hdrs) if k.startswith("x-oss-"))
    sub = sorted((k, v) for k, v in query if k in V1_SUBRESOURCES)
    resource = "/" + (bucket + "/" if bucket else "") + key
    if sub:
        resource += "?" + "&".join(k + ("=" + v if v else "") for k, v in sub)
    sts = "\n".join([h.command, hdrs.get("content-md5", [""])[0], hdrs.get("content-type", [""])[0], date]) + "\n" \
        + oss_headers + resource
    want = base64.b64encode(hmac.new(secret.encode(), sts.encode(), hashlib.sha1).digest()).decode()
    if not hmac.compare_digest(want, sig):
        raise Fail(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature "
                                                 "you provided. Check your key and signing method.",
                   {"OSSAccessKeyId": ak, "StringToSign": sts})


def xml_doc(root: str, inner: str) -> bytes:
    return f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root}>{inner}</{root}>\n".encode()


def tag(name: str, value) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def oss_service(h: Handler, st: State, parts, data: bytes) -> None:
    bucket, key, region = oss_locate(h, st, parts.path)
    query = parse_qsl(parts.query, keep_blank_values=True)
    q = dict(query)
    label = f"OSS {h.command} /{bucket}/{key}?{parts.query}"
    st.log(label)
    fault = st.fault(label)
    if fault == "drop":
        return h.drop()
    if fault in ("status500", "status503", "throttle"):
        code = {"status500": (500, "InternalError", "We encountered an internal error. Please try again."),
                "status503": (503, "ServiceUnavailable", "Thread pool is almost full, please retry later"),
                # OSS's flow control (its "HTTP status code 503" page): the account's QPS limit.
                "throttle": (503, "TotalQpsLimitExceeded", "Max total qps limit is exceeded")}[fault]
        return oss_error(h, st, Fail(*code), bucket, key)
    try:
        with st.lock:
            b = st.buckets.get(bucket)
            if b is None:
                raise Fail(404, "NoSuchBucket", "The specified bucket does not exist.", {"BucketName": bucket})
            if region is None:
                region = b["region"]
            if region != b["region"]:
                raise Fail(403, "AccessDenied", "The bucket you are attempting to access must be addressed using "
                                                "the specified endpoint. Please send all future requests to this "
                                                "endpoint.", {"Endpoint": f"oss-{b['region']}.aliyuncs.com"})
        oss_auth(h, st, bucket, key, region, query)
        status, body, headers = oss_op(h, st, b, bucket, key, q, data)
        st.stats[f"oss {h.command} {'part' if 'partNumber' in q else 'object'}"] += 1
    except Fail as e:
        if fault == "drop_after":
            return h.drop()
        return oss_error(h, st, e, bucket, key)
    if fault == "drop_after":
        return h.drop()
    h.reply(status, body, headers + [("x-oss-request-id", request_id()), ("Server", "AliyunOSS")])


def etag_of(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest().upper() + '"'


def oss_op(h: Handler, st: State, b: dict, bucket: str, key: str, q: dict, data: bytes):
    cmd = h.command
    objects = b["objects"]
    if cmd == "PUT" and "partNumber" in q:
        n = int(q["partNumber"])
        if not 1 <= n <= 10000:
            raise Fail(400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive.")
        check_md5(h, data)
        time.sleep(float(st.config.get("part_delay") or 0))
        crc = crc64(data)
        with st.lock:
            up = st.uploads.get(q.get("uploadId", ""))
            if up is None or up["bucket"] != bucket or up["key"] != key:
                raise Fail(404, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, "
                                                "or the upload may have been aborted or completed.")
            up["parts"][n] = {"data": data, "etag": etag_of(data), "crc64": crc, "time": time.time()}
        return 200, b"", [("ETag", etag_of(data)), ("x-oss-hash-crc64ecma", str(crc))]
    if cmd == "PUT":
        check_md5(h, data)
        with st.lock:
            objects[key] = {"data": data, "etag": etag_of(data), "crc64": crc64(data), "type": "Normal"}
            return 200, b"", [("ETag", objects[key]["etag"]), ("x-oss-hash-crc64ecma", str(objects[key]["crc64"]))]
    if cmd == "POST" and "uploads" in q:
        uid = secrets.token_hex(16).upper()
        with st.lock:
            st.uploads[uid] = {"bucket": bucket, "key": key, "parts": {}}
        return 200, xml_doc("InitiateMultipartUploadResult", tag("Bucket", bucket) + tag("Key", key) +
                            tag("UploadId", uid)), [("Content-Type", "application/xml")]
    if cmd == "GET" and "uploadId" in q:
        with st.lock:
            up = st.uploads.get(q["uploadId"])
            if up is None or up["key"] != key:
                raise Fail(404, "NoSuchUpload", "The specified upload does not exist.")
            marker = int(q.get("part-number-marker") or 0)
            maxp = int(q.get("max-parts") or 1000)
            nums = [n for n in sorted(up["parts"]) if n > marker]
            page, more = nums[:maxp], len(nums) > maxp
            inner = tag("Bucket", bucket) + tag("Key", key) + tag("UploadId", q["uploadId"]) + \
                tag("PartNumberMarker", marker) + tag("NextPartNumberMarker", page[-1] if page else marker) + \
                tag("MaxParts", maxp) + tag("IsTruncated", "true" if more else "false")
            for n in page:
                p = up["parts"][n]
                inner += "<Part>" + tag("PartNumber", n) + tag("LastModified", datetime.fromtimestamp(
                    p["time"], timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")) + tag("ETag", p["etag"]) + \
                    tag("HashCrc64ecma", p["crc64"]) + tag("Size", len(p["data"])) + "</Part>"
        return 200, xml_doc("ListPartsResult", inner), [("Content-Type", "application/xml")]
    if cmd == "POST" and "uploadId" in q:
        try:
            root = ET.fromstring(data)
        except ET.ParseError:
            raise Fail(400, "MalformedXML", "The XML you provided was not well-formed.")
        wanted = [(int(p.findtext("PartNumber")), (p.findtext("ETag") or "").strip()) for p in root.iter("Part")]
        with st.lock:
            up = st.uploads.get(q["uploadId"])
            if up is None or up["key"] != key:
                raise Fail(404, "NoSuchUpload", "The specified upload does not exist.")
            if not wanted:
                raise Fail(400, "MalformedXML", "The XML you provided was not well-formed.")
            if [n for n, _ in wanted] != sorted({n for n, _ in wanted}):
                raise Fail(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
            chunks = []
            for i, (n, etag) in enumerate(wanted):
                p = up["parts"].get(n)
                if p is None or etag.strip('"').upper() != p["etag"].strip('"'):
                    raise Fail(400, "InvalidPart", "One or more of the specified parts could not be found or the "
                                                   "specified entity tag might not have matched the part's entity tag.",
                               {"PartNumber": n, "UploadId": q["uploadId"]})
                if i < len(wanted) - 1 and len(p["data"]) < MIN_PART:
                    raise Fail(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size.")
                chunks.append(p)
            blob = b"".join(p["data"] for p in chunks)
            md5s = b"".join(bytes.fromhex(p["etag"].strip('"')) for p in chunks)
            etag = '"' + hashlib.md5(md5s).hexdigest().upper() + f'-{len(chunks)}"'
        crc = crc64(blob)
        with st.lock:
            objects[key] = {"data": blob, "etag": etag, "crc64": crc, "type": "Multipart"}
            st.uploads.pop(q["uploadId"], None)
        return 200, xml_doc("CompleteMultipartUploadResult", tag("EncodingType", "url") + tag(
            "Location", f"http://{bucket}.oss-{b['region']}.aliyuncs.com/{enc(key, '/')}") + tag("Bucket", bucket) +
            tag("Key", key) + tag("ETag", etag)), [("Content-Type", "application/xml"), ("ETag", etag),
                                                   ("x-oss-hash-crc64ecma", str(crc))]
    if cmd == "DELETE" and "uploadId" in q:
        with st.lock:
            if st.uploads.pop(q["uploadId"], None) is None:
                raise Fail(404, "NoSuchUpload", "The specified upload does not exist.")
        return 204, b"", []
    if cmd in ("GET", "HEAD"):
        with st.lock:
            obj = objects.get(key)
        if obj is None:
            raise Fail(404, "NoSuchKey", "The specified key does not exist.", {"Key": key})
        hdrs = [("ETag", obj["etag"]), ("x-oss-hash-crc64ecma", str(obj["crc64"])),
                ("x-oss-object-type", obj["type"]), ("Content-Type", "application/octet-stream")]
        if cmd == "HEAD":
            # Content-Length of the object without a body.
            h.send_response(200)
            for k, v in hdrs + [("x-oss-request-id", request_id()), ("Server", "AliyunOSS")]:
                h.send_header(k, v)
            h.send_header("Date", formatdate(usegmt=True))
            h.send_header("Content-Length", str(len(obj["data"])))
            h.end_headers()
            raise _Handled()
        return 200, obj["data"], hdrs
    if cmd == "DELETE":
        with st.lock:
            objects.pop(key, None)
        return 204, b"", []
    raise Fail(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")


class _Handled(Exception):
    pass


def check_md5(h: Handler, data: bytes) -> None:
    given = h.headers.get("Content-MD5")
    if given is None:
        return
    try:
        raw = base64.b64decode(given, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 16:
        raise Fail(400, "InvalidDigest", "The Content-MD5 you specified was invalid.")
    if raw != hashlib.md5(data).digest():
        raise Fail(400, "InvalidDigest", "The Content-MD5 you specified did not match what we received.")


# --- ECS ------------------------------------------------------------------------------------------

def ecs_reply(h: Handler, status: int, doc: dict) -> None:
    rid = doc.setdefault("RequestId", "-".join([secrets.token_hex(4), secrets.token_hex(2), secrets.token_hex(2),
                                                 secrets.token_hex(2), secrets.token_hex(6)]).upper())
    h.reply(status, json.dumps(doc).encode(), [("Content-Type", "application/json;charset=utf-8"),
                                               ("x-acs-request-id", rid)])


def ecs_service(h: Handler, st: State, parts, data: bytes) -> None:
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if h.command == "POST" and "x-www-form-urlencoded" in (h.headers.get("Content-Type") or ""):
        pairs += parse_qsl(data.decode(), keep_blank_values=True)
    p = dict(pairs)
    action = p.get("Action", "")
    # "ECS Action k=v k=v": fault rules can aim at one test's image by name.
    label = f"ECS {action} " + " ".join(f"{k}={v}" for k, v in sorted(p.items()) if k not in (
        "Signature", "SignatureNonce", "AccessKeyId", "SecurityToken", "Timestamp"))
    st.log(label)
    with st.lock:
        code = next((r["codes"].pop(0) for r in st.throttles.values() if r["codes"] and r["match"].search(label)),
                    None)
    if code:
        st.stats[f"ecs {code}"] += 1
        status, message = THROTTLE_ANSWERS[code]
        return ecs_reply(h, status, {"Code": code, "Message": message, "HostId": "ecs.aliyuncs.com",
                                     "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}"})
    fault = st.fault(label)
    if fault == "drop":
        return h.drop()
    if fault == "throttle":
        st.stats["ecs Throttling.User"] += 1
        return ecs_reply(h, 400, {"Code": "Throttling.User", "Message": "Request was denied due to user flow control.",
                                  "HostId": "ecs.aliyuncs.com", "Recommend": ""})
    if fault in ("status500", "status503"):
        return ecs_reply(h, 500 if fault == "status500" else 503,
                         {"Code": "InternalError" if fault == "status500" else "ServiceUnavailable",
                          "Message": "The request processing has failed due to some unknown error.",
                          "HostId": "ecs.aliyuncs.com"})
    try:
        ecs_auth(h, st, pairs)
        with st.lock:
            out = ecs_action(st, action, p)
        st.stats[f"ecs {action}"] += 1
    except Fail as e:
        st.stats[f"ecs {e.code}"] += 1
        if fault == "drop_after":
            return h.drop()
        return ecs_reply(h, e.status, {"Code": e.code, "Message": e.message, "HostId": "ecs.aliyuncs.com",
                                       "Recommend": f"https://api.aliyun.com/troubleshoot?q={e.code}"})
    if fault == "drop_after":
        return h.drop()
    ecs_reply(h, 200, out)


def ecs_auth(h: Handler, st: State, pairs: list[tuple[str, str]]) -> None:
    p = dict(pairs)
    for name in ("AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp"):
        if not p.get(name):
            raise Fail(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
    if p["SignatureMethod"] != "HMAC-SHA1" or p["SignatureVersion"] != "1.0":
        raise Fail(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
    if p.get("Format", "XML") not in ("JSON", "XML"):
        raise Fail(400, "InvalidParameter.Format", "Specified parameter Format is not valid.")
    if p.get("Version") != "2014-05-26":
        raise Fail(400, "InvalidVersion", "Specified parameter Version is not valid.")
    ak = p["AccessKeyId"]
    if ak not in KEYS:
        raise Fail(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    secret, token = KEYS[ak]
    try:
        t = datetime.strptime(p["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise Fail(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
    if abs(time.time() - t) > SKEW:
        raise Fail(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
    signed = [(k, v) for k, v in pairs if k != "Signature"]
    canon = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted((k, v) for k, v in signed))
    sts = f"{h.command}&{enc('/')}&{enc(canon)}"
    want = base64.b64encode(hmac.new((secret + "&").encode(), sts.encode(), hashlib.sha1).digest()).decode()
    if not hmac.compare_digest(want, p["Signature"]):
        raise Fail(400, "SignatureDoesNotMatch", f"Specified signature is not matched with our calculation. "
                                                 f"server string to sign is:{sts}")
    if token is not None:
        if not p.get("SecurityToken"):
            raise Fail(400, "InvalidSecurityToken.Missing", "The security token you provided is missing.")
        if p["SecurityToken"] != token:
            raise Fail(400, "InvalidSecurityToken.MisMatch", "Specified SecurityToken mismatch with the AccessKey.")
    with st.lock:
        if p["SignatureNonce"] in st.nonces:
            raise Fail(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        st.nonces.add(p["SignatureNonce"])


def need(p: dict, name: str) -> str:
    if not p.get(name):
        raise Fail(400, "MissingParameter", f"The input parameter \"{name}\" that is mandatory for processing this "
                                            f"request is not supplied.")
    return p[name]


def indexed(p: dict, prefix: str, fields: tuple) -> list[dict]:
    out, n = [], 1
    while any(f"{prefix}.{n}.{f}" in p for f in fields):
        out.append({f: p.get(f"{prefix}.{n}.{f}", "") for f in fields})
        n += 1
    return out


def ecs_region(p: dict) -> str:
    r = need(p, "RegionId")
    if r not in REGIONS:
        raise Fail(404, "InvalidRegionId.NotFound", "The specified RegionId does not exist.")
    return r


def find_image(st: State, region: str, image_id: str) -> dict:
    img = st.images.get(image_id)
    if img is None or img["RegionId"] != region:
        raise Fail(404, "InvalidImageId.NotFound", "The specified ImageId does not exist.")
    return st.refresh(img)


def check_quota(st: State, action: str, region: str) -> None:
    """403 QuotaExceed.Image when REGION already holds its quota of custom images."""
    limit = st.quota.get(region)
    if limit is None or sum(1 for i in st.images.values() if i["RegionId"] == region) < limit:
        return
    st.stats[f"quota {action} {region}"] += 1
    raise Fail(403, "QuotaExceed.Image", "The Image Quota exceeds." if action == "ImportImage"
               else f"The number of images exceeds the limit ({limit}).")


def new_image(st: State, region: str, name: str, base: dict, seconds: float, final: str = "Available") -> dict:
    for other in st.images.values():
        if other["RegionId"] == region and other["ImageName"] == name:
            raise Fail(400, "InvalidImageName.Duplicated", "The specified Image name has already been used.")
    now = time.time()
    img = dict(base)
    img.update({"ImageId": "m-" + secrets.token_hex(10), "ImageName": name, "RegionId": region,
                "Status": "Creating", "Progress": "0%", "ImageOwnerAlias": "self", "OSType": "linux",
                "CreationTime": datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "_started": now, "_ready_at": now + seconds, "_final": final, "_public": False, "_accounts": [],
                "_tags": dict(base.get("_tags", {}))})
    st.images[img["ImageId"]] = img
    return img


def ecs_action(st: State, action: str, p: dict) -> dict:
    if action == "ImportImage":
        region = ecs_region(p)
        token = p.get("ClientToken")
        if token and token in st.tokens:
            img = st.images.get(st.tokens[token])
            if img:
                return {"ImageId": img["ImageId"], "TaskId": img["_task"], "RegionId": region}
        name = need(p, "ImageName")
        disks = indexed(p, "DiskDeviceMapping", ("OSSBucket", "OSSObject", "Format", "DiskImageSize", "Device"))
        if not disks:
            raise Fail(400, "MissingParameter", "The input parameter \"DiskDeviceMapping\" that is mandatory for "
                                                "processing this request is not supplied.")
        d = disks[0]
        b = st.buckets.get(d["OSSBucket"])
        obj = b["objects"].get(d["OSSObject"]) if b else None
        if b is None or b["region"] != region or obj is None:
            raise Fail(400, "InvalidOSSObject.NotFound", "The specified OSS object does not exist in the OSS bucket "
                                                         "of this region.")
        fmt = d["Format"].upper()
        if fmt not in ("RAW", "VHD", "QCOW2"):
            raise Fail(400, "InvalidParameter.Format", "The specified parameter Format is not valid.")
        vsize = qcow2_virtual_size(obj["data"]) if fmt == "QCOW2" else len(obj["data"]) - (512 if fmt == "VHD" else 0)
        if vsize is None:
            raise Fail(400, "InvalidImage.Format", "The OSS object is not a QCOW2 image.")
        try:
            gib = int(d["DiskImageSize"] or 0)
        except ValueError:
            gib = 0
        if gib < 1 or gib * GIB < vsize:
            raise Fail(400, "InvalidParameter.DiskImageSize", f"DiskImageSize {d['DiskImageSize']} GiB is smaller "
                                                              f"than the image ({vsize} bytes).")
        arch = p.get("Architecture", "x86_64")
        if arch not in ("x86_64", "i386", "arm64"):
            raise Fail(400, "InvalidParameter.Architecture", "The specified Architecture is not valid.")
        boot = p.get("BootMode", "BIOS")
        if boot not in ("BIOS", "UEFI") or (arch == "arm64" and boot != "UEFI"):
            raise Fail(400, "InvalidParameter.BootMode", "The specified BootMode is not valid for the architecture.")
        nvme = p.get("Features.NvmeSupport", "unsupported")
        if nvme not in ("supported", "unsupported"):
            raise Fail(400, "InvalidParameter.NvmeSupport", "Features.NvmeSupport is not valid.")
        tags = {t["Key"]: t["Value"] for t in indexed(p, "Tag", ("Key", "Value"))}
        check_quota(st, "ImportImage", region)
        img = new_image(st, region, name, {
            "Description": p.get("Description", ""), "Architecture": arch, "BootMode": boot,
            "Platform": p.get("Platform", "Others Linux"), "Size": gib, "Features": {"NvmeSupport": nvme},
            "DiskDeviceMappings": {"DiskDeviceMapping": [{"ImportOSSBucket": d["OSSBucket"],
                                                          "ImportOSSObject": d["OSSObject"], "Format": fmt,
                                                          "Size": str(gib), "Type": "system"}]},
            "_tags": tags}, st.config["import_seconds"])
        img["_task"] = "t-" + secrets.token_hex(10)
        if token:
            st.tokens[token] = img["ImageId"]
        return {"ImageId": img["ImageId"], "TaskId": img["_task"], "RegionId": region}
    if action == "DescribeImages":
        region = ecs_region(p)
        ids = [i for i in p.get("ImageId", "").split(",") if i]
        statuses = [s for s in p.get("Status", "Available").split(",") if s]
        out = []
        for img in st.images.values():
            st.refresh(img)
            if img["RegionId"] != region or (ids and img["ImageId"] not in ids) or img["Status"] not in statuses:
                continue
            if p.get("ImageName") and img["ImageName"] != p["ImageName"]:
                continue
            view = image_view(img)
            view["Tags"] = {"Tag": [{"TagKey": k, "TagValue": v} for k, v in img["_tags"].items()]}
            view["IsPublic"] = img["_public"]
            out.append(view)
        size = max(1, min(100, int(p.get("PageSize") or 10)))
        page = max(1, int(p.get("PageNumber") or 1))
        return {"RegionId": region, "TotalCount": len(out), "PageNumber": page, "PageSize": size,
                "Images": {"Image": out[(page - 1) * size: page * size]}}
    if action == "CopyImage":
        region = ecs_region(p)
        token = p.get("ClientToken")
        if token and token in st.tokens and st.tokens[token] in st.images:
            return {"ImageId": st.tokens[token]}
        src = find_image(st, region, need(p, "ImageId"))
        if src["Status"] != "Available":
            raise Fail(403, "IncorrectImageStatus", "The current status of the image does not support this operation.")
        dest = need(p, "DestinationRegionId")
        if dest not in REGIONS:
            raise Fail(404, "InvalidRegionId.NotFound", "The specified DestinationRegionId does not exist.")
        if dest == region:
            raise Fail(400, "InvalidRegionId.Malformed", "The source and destination regions must differ.")
        base = {k: v for k, v in src.items() if k in ("Description", "Architecture", "BootMode", "Platform", "Size",
                                                     "Features")}
        base["Description"] = p.get("DestinationDescription", src.get("Description", ""))
        base["_tags"] = {t["Key"]: t["Value"] for t in indexed(p, "Tag", ("Key", "Value"))}
        check_quota(st, "CopyImage", dest)
        final = "CreateFailed" if dest in st.config.get("copy_fail_regions", []) else "Available"
        img = new_image(st, dest, p.get("DestinationImageName") or src["ImageName"], base,
                        st.config["copy_seconds"], final)
        img["_copied_from"] = src["ImageId"]
        if token:
            st.tokens[token] = img["ImageId"]
        return {"ImageId": img["ImageId"]}
    if action == "ModifyImageSharePermission":
        img = find_image(st, ecs_region(p), need(p, "ImageId"))
        if img["Status"] != "Available":
            raise Fail(403, "IncorrectImageStatus", "The current status of the image does not support this operation.")
        if "IsPublic" in p:
            if p["IsPublic"] not in ("true", "false"):
                raise Fail(400, "InvalidParameter.IsPublic", "IsPublic must be true or false.")
            img["_public"] = p["IsPublic"] == "true"
        for k, v in p.items():
            if k.startswith("AddAccount.") and v not in img["_accounts"]:
                img["_accounts"].append(v)
            if k.startswith("RemoveAccount.") and v in img["_accounts"]:
                img["_accounts"].remove(v)
        return {}
    if action == "DescribeImageSharePermission":
        img = find_image(st, ecs_region(p), need(p, "ImageId"))
        return {"ImageId": img["ImageId"], "RegionId": img["RegionId"], "TotalCount": len(img["_accounts"]),
                "PageNumber": 1, "PageSize": 10,
                "ShareGroups": {"ShareGroup": [{"Group": "all"}] if img["_public"] else []},
                "Accounts": {"Account": [{"AliyunId": a} for a in img["_accounts"]]}}
    if action == "TagResources":
        region = ecs_region(p)
        if need(p, "ResourceType") != "image":
            raise Fail(400, "InvalidResourceType.NotSupported", "This resource type is not supported here.")
        tags = indexed(p, "Tag", ("Key", "Value"))
        ids = [v for k, v in sorted(p.items()) if k.startswith("ResourceId.")]
        if not ids or not tags:
            raise Fail(400, "MissingParameter", "ResourceId.N and Tag.N are required.")
        for i in ids:
            img = find_image(st, region, i)
            for t in tags:
                img["_tags"][t["Key"]] = t["Value"]
            if len(img["_tags"]) > 20:
                raise Fail(400, "InvalidTagCount", "The maximum number of tags is 20.")
        return {}
    if action == "DeleteImage":
        img = find_image(st, ecs_region(p), need(p, "ImageId"))
        if img["Status"] == "Creating":
            raise Fail(403, "IncorrectImageStatus", "The current status of the image does not support this operation.")
        del st.images[img["ImageId"]]
        return {}
    raise Fail(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")


def oss_entry(h, st, parts, data):
    try:
        oss_service(h, st, parts, data)
    except _Handled:
        pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--oss-port", type=int, required=True)
    ap.add_argument("--ecs-port", type=int, required=True)
    ap.add_argument("--state-dir", default="")
    ap.add_argument("--import-seconds", type=float, default=0.4)
    ap.add_argument("--copy-seconds", type=float, default=0.3)
    args = ap.parse_args()
    if args.state_dir:
        os.makedirs(args.state_dir, exist_ok=True)
    st = State(args)
    servers = [listen(args.host, args.oss_port, Handler, state=st, service=oss_entry),
               listen(args.host, args.ecs_port, Handler, state=st, service=ecs_service)]
    serve(servers, f"fake alicloud: OSS on {args.host}:{args.oss_port}, ECS on {args.host}:{args.ecs_port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
