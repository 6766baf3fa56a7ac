#!/usr/bin/python3
"""A fake of OCI Object Storage and Compute (Core Services) for the tests.

    /usr/bin/python3 tests/oci/fake_oci.py --port P --key KEY_ID=PUBLIC.pem [--key ...]
                                           [--namespace fakens] [--work-request-seconds 0.3]

Run with Debian's /usr/bin/python3: the signature check needs python3-cryptography.

Written from the OCI REST API references (Object Storage API and Core
Services API 20160918). One port serves both services and every region: a
path starting /REGION/ (an OCI region id) is that region's endpoint (the
tests set OCI_OBJECTSTORAGE_ENDPOINT and OCI_IAAS_ENDPOINT to
http://127.0.0.1:PORT/{region}); no such prefix is us-ashburn-1. Buckets,
objects, PARs, images, work requests and schemas belong to one region and
are not found through another's endpoint. Every request
outside /_fake/ must carry a valid OCI HTTP signature (draft-cavage,
rsa-sha256, keyId TENANCY/USER/FINGERPRINT of a --key): Authorization
"Signature version=1,...", signed headers date (or x-date), (request-target),
host, plus content-length, content-type and x-content-sha256 for
POST/PUT/PATCH except PutObject/UploadPart; the date within 5 minutes;
x-content-sha256 equal to the body's SHA-256; content-length equal to the
body. Anything else: 401 NotAuthenticated.

Object Storage (/n/...):
  GET  /n/                                          GetNamespace (JSON string)
  POST /n/NS/b/B/u                                  CreateMultipartUpload (if-none-match: * -> 412 IfNoneMatchFailed)
  PUT  /n/NS/b/B/u/OBJ?uploadId&uploadPartNum       UploadPart (Content-MD5 checked: 400 UnmatchedContentMD5)
  GET  /n/NS/b/B/u/OBJ?uploadId[&limit&page]        ListMultipartUploadParts (opc-next-page)
  POST /n/NS/b/B/u/OBJ?uploadId                     CommitMultipartUpload (partsToCommit etags checked)
  DELETE /n/NS/b/B/u/OBJ?uploadId                   AbortMultipartUpload
  GET  /n/NS/b/B/u                                  ListMultipartUploads
  PUT|GET|HEAD|DELETE /n/NS/b/B/o/OBJ               PutObject, GetObject, HeadObject, DeleteObject
  POST /n/NS/b/B/p/                                 CreatePreauthenticatedRequest (accessType, objectName,
        timeExpires in the future; answers accessUri /p/TOKEN/n/NS/b/B/o/OBJ and fullPath, once)
  GET  /n/NS/b/B/p/[?objectNamePrefix]              ListPreauthenticatedRequests (no URLs; paged)
  GET|DELETE /n/NS/b/B/p/ID                         GetPreauthenticatedRequest, DeletePreauthenticatedRequest
  GET|HEAD /p/TOKEN/n/NS/b/B/o/OBJ                  the object through a PAR: NO signature; 404 once the
        PAR is deleted or expired, or for another object
  Buckets are made with POST /_fake/buckets; a missing one is 404 BucketNotFound.
Compute (/20160918/...):
  POST /images (opc-retry-token)                    CreateImage from objectStorageTuple (the object in this
        region) or objectStorageUri (a PAR URL of this fake, any region: fetched when the work request
        finishes, so a PAR deleted or expired before then FAILS it): the object must exist and start
        with the QCOW2 ("QFI\\xfb") or VMDK ("KDMV") magic, else the work request FAILS; IMPORTING until
        --work-request-seconds (twice that from a URL) have passed, then AVAILABLE. 400 LimitExceeded past the region's
        image limit (POST /_fake/config image_limits)
  GET /images/ID, GET /images?compartmentId[&displayName], DELETE /images/ID
  POST /images/ID/actions/export (opc-retry-token)  ExportImage to objectStorageTuple (QCOW2/VMDK: the bytes the
        image was imported from), the object written when its work request finishes
  GET /workRequests/ID, GET /workRequests/ID/errors
  GET /computeGlobalImageCapabilitySchemas, GET .../ID/versions/NAME
  POST /computeImageCapabilitySchemas (opc-retry-token; schemaData checked against the global version;
        the image must be AVAILABLE), GET (one, list by compartmentId/imageId), PUT, DELETE
  PUT|DELETE /images/ID/shapes/SHAPE, GET /images/ID/shapes   (image AVAILABLE, shape known)
Errors: JSON {"code", "message"}; every answer has opc-request-id.

Test controls (no auth):
  GET  /_fake/health;  POST /_fake/config {"work_request_seconds", "page_size",
                                            "image_limits": {REGION: N or null}}
  POST /_fake/buckets {"name", "region"};  GET|DELETE /_fake/object?bucket=B&name=OBJ[&region=R]
  POST /_fake/pars/revoke {"bucket"}: every PAR on the bucket deleted
  GET  /_fake/state (images, schemas, work requests with their region; shapes, objects, uploads, pars)
  GET  /_fake/stats {"requests": {"CreateImage": n, ...}, "faults", "statuses", "regions": {REGION: n}}
  POST /_fake/reset
  POST/DELETE /_fake/faults?rule=NAME {"match": regex on "METHOD /path", "sequence": [...],
       "drop"|"drop_after"|"status500"|"status503"|"throttle": share, "max_faults", "seed",
       "delay": seconds every matching request waits before it is handled}
       (tests/fake_common.py): drop closes the connection unanswered, drop_after acts then
       closes, throttle is 429 TooManyRequests; every answer is {"rules", "injected", "sequence_left"};
       a bad rule is 400 BadFaultRule.
       PAR URLs (/p/...) get no faults.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import sys
import time
import uuid
from collections import Counter
from datetime import datetime
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fake_common import FakeApp, FakeHandler, Reply, listen, serve  # noqa: E402

API = "/20160918"
GLOBAL_SCHEMA_ID = "ocid1.computeglobalimgcapschema.oc1..fakeglobalschema"
GLOBAL_VERSION = "2020-10-21"
GLOBAL_SCHEMA = {
    "Compute.Firmware": {"descriptorType": "enumstring", "source": "GLOBAL", "values": ["BIOS", "UEFI_64"],
                         "defaultValue": "BIOS"},
    "Compute.LaunchMode": {"descriptorType": "enumstring", "source": "GLOBAL",
                           "values": ["NATIVE", "EMULATED", "PARAVIRTUALIZED", "CUSTOM"], "defaultValue": "NATIVE"},
    "Compute.SecureBoot": {"descriptorType": "boolean", "source": "GLOBAL", "defaultValue": False},
    "Network.AttachmentType": {"descriptorType": "enumstring", "source": "GLOBAL",
                               "values": ["E1000", "VFIO", "PARAVIRTUALIZED"], "defaultValue": "VFIO"},
    "Storage.BootVolumeType": {"descriptorType": "enumstring", "source": "GLOBAL",
                               "values": ["ISCSI", "SCSI", "IDE", "PARAVIRTUALIZED"], "defaultValue": "PARAVIRTUALIZED"},
}
SHAPES = {"VM.Standard.E4.Flex", "VM.Standard.E5.Flex", "VM.Standard3.Flex", "VM.Standard.A1.Flex",
          "VM.Standard2.1", "BM.Standard.E4.128", "VM.Standard.E2.1.Micro"}
MAGIC = {"QCOW2": b"QFI\xfb", "VMDK": b"KDMV"}


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def ocid(kind: str, region: str = "fake") -> str:
    return f"ocid1.{kind}.oc1.{region}.{uuid.uuid4().hex}"


DEFAULT_REGION = "us-ashburn-1"
# /REGION/... : the region's endpoint (OCI_IAAS_ENDPOINT=http://host:port/{region}); no prefix: DEFAULT_REGION.
REGION_PREFIX = re.compile(r"^/([a-z]{2}(?:-[a-z]+)+-[0-9]{1,2})(/.*)$")
# A PAR URL's path: /p/TOKEN/n/NS/b/BUCKET/o/OBJECT.
PAR_PATH = re.compile(r"^/p/([^/]+)/n/([^/]+)/b/([^/]+)/o/(.+)$")


def split_region(path: str) -> tuple[str, str]:
    m = REGION_PREFIX.match(path)
    return (m[1], m[2]) if m else (DEFAULT_REGION, path)


def public(d: dict) -> dict:
    return {k: v for k, v in d.items() if not k.startswith("_")}


class OciError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


class FakeOci(FakeApp):
    def __init__(self, args):
        self.keys = {}
        for spec in args.key:
            key_id, _, path = spec.rpartition("=")
            with open(path, "rb") as f:
                self.keys[key_id] = serialization.load_pem_public_key(f.read())
        self.namespace = args.namespace
        self.wr_seconds = args.work_request_seconds
        self.page_size = 1000
        self.address = f"{args.host}:{args.port}"
        self.region = DEFAULT_REGION  # the region of the request being handled (set under self.lock)
        self.prefix = ""              # ...and its path prefix ("/REGION" or "")
        self.buckets: dict = {}       # (region, name) -> {"objects": {}, "uploads": {}}
        self.pars: dict = {}          # token -> PAR (with _region, _bucket, _deleted)
        self.image_limits: dict = {}  # region -> custom images allowed (400 LimitExceeded beyond)
        self.images: dict = {}
        self.work_requests: dict = {}
        self.schemas: dict = {}
        self.shapes: dict = {}        # image id -> {shape: entry}
        self.tokens: dict = {}        # (op, token) -> (body digest, Reply)
        super().__init__()

    def reset_stats(self) -> None:
        super().reset_stats()
        self.region_requests: Counter = Counter()

    # --- entry (FakeApp hooks) ----------------------------------------------------

    def handle(self, h, method: str, path: str, query: str, body: bytes) -> None:
        region, rpath = split_region(path)
        if PAR_PATH.match(rpath) and method in ("GET", "HEAD"):
            # A PAR URL carries its own authorisation: no signature, and no faults.
            with self.lock:
                self.requests["GetObject (PAR)"] += 1
                reply = self.par_get(region, rpath, method)
            h.send_reply(reply, self.base_headers(h, path))
            return
        if not path.startswith("/_fake/"):
            with self.lock:
                self.region_requests[region] += 1
        super().handle(h, method, path, query, body)

    def base_headers(self, h, path: str) -> list:
        return [("opc-request-id", (h.headers.get("opc-request-id") or "") + uuid.uuid4().hex.upper())]

    def request_kind(self, method: str, path: str) -> str:
        return self.operation(method, split_region(path)[1])

    def fault_reply(self, fault: str, path: str) -> Reply:
        if fault == "throttle":
            return Reply(429, {"code": "TooManyRequests", "message": "Too many requests for the tenancy"},
                         [("retry-after", "1")])
        if fault == "status503":
            return Reply(503, {"code": "ServiceUnavailable", "message": "Internal error, please retry"})
        return Reply(500, {"code": "InternalServerError", "message": "Internal error, please retry"})

    def answer(self, h, method: str, path: str, query: str, body: bytes) -> Reply:
        region, rpath = split_region(path)
        try:
            self.authenticate(h, method, path, query, body)
            with self.lock:
                self.region, self.prefix = region, path[:len(path) - len(rpath)]
                return self.dispatch(h, method, rpath, dict(parse_qsl(query, keep_blank_values=True)), body)
        except OciError as e:
            return Reply(e.status, {"code": e.code, "message": e.message})

    def bug_reply(self, e: Exception) -> Reply:
        return Reply(500, {"code": "FakeOciBug", "message": f"{type(e).__name__}: {e}"},
                     [("opc-request-id", uuid.uuid4().hex)])

    @staticmethod
    def operation(method: str, path: str) -> str:
        """The API operation's name, for /_fake/stats."""
        if path.startswith("/n/"):
            parts = path.split("/")
            if len(parts) <= 3 or parts[2] == "":
                return "GetNamespace"
            kind = parts[5] if len(parts) > 5 else ""
            if kind == "u":
                if len(parts) == 6 or parts[6] == "":
                    return {"POST": "CreateMultipartUpload", "GET": "ListMultipartUploads"}.get(method, method)
                if method == "PUT":
                    return "UploadPart"
                return {"GET": "ListMultipartUploadParts", "POST": "CommitMultipartUpload",
                        "DELETE": "AbortMultipartUpload"}.get(method, method)
            if kind == "p":
                if len(parts) == 6 or parts[6] == "":
                    return {"POST": "CreatePreauthenticatedRequest", "GET": "ListPreauthenticatedRequests"}.get(method, method)
                return {"GET": "GetPreauthenticatedRequest", "DELETE": "DeletePreauthenticatedRequest"}.get(method, method)
            if kind == "o":
                return {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method, method)
            return method + " bucket"
        p = path[len(API):] if path.startswith(API) else path
        if re.fullmatch(r"/images", p):
            return "CreateImage" if method == "POST" else "ListImages"
        if p.endswith("/actions/export"):
            return "ExportImage"
        if re.fullmatch(r"/images/[^/]+", p):
            return {"GET": "GetImage", "DELETE": "DeleteImage"}.get(method, method)
        if "/shapes" in p:
            return {"PUT": "AddImageShapeCompatibilityEntry", "GET": "ListImageShapeCompatibilityEntries",
                    "DELETE": "RemoveImageShapeCompatibilityEntry"}.get(method, method)
        if p.startswith("/workRequests"):
            return "ListWorkRequestErrors" if p.endswith("/errors") else "GetWorkRequest"
        if p.startswith("/computeGlobalImageCapabilitySchemas"):
            return "GlobalSchemas"
        if p.startswith("/computeImageCapabilitySchemas"):
            if p == "/computeImageCapabilitySchemas":
                return "CreateComputeImageCapabilitySchema" if method == "POST" else "ListComputeImageCapabilitySchemas"
            return {"GET": "GetComputeImageCapabilitySchema", "PUT": "UpdateComputeImageCapabilitySchema",
                    "DELETE": "DeleteComputeImageCapabilitySchema"}.get(method, method)
        return f"{method} {path}"

    # --- OCI HTTP signature -----------------------------------------------------

    def authenticate(self, h, method: str, path: str, query: str, body: bytes) -> None:
        def fail(why: str):
            raise OciError(401, "NotAuthenticated", f"The required information to complete authentication was "
                                                    f"not provided or was incorrect: {why}")
        auth = h.headers.get("authorization") or ""
        if not auth.startswith("Signature "):
            fail("no Authorization: Signature header")
        params = dict(re.findall(r'(\w+)="([^"]*)"', auth[len("Signature "):]))
        if params.get("version", "1") != "1" or params.get("algorithm") != "rsa-sha256":
            fail("version must be 1 and algorithm rsa-sha256")
        key = self.keys.get(params.get("keyId", ""))
        if key is None:
            fail(f"unknown keyId {params.get('keyId', '')!r}")
        signed = params.get("headers", "date").lower().split()
        date_name = "x-date" if "x-date" in signed else "date"
        required = [date_name, "(request-target)", "host"]
        exempt = method == "PUT" and re.match(r"^/n/[^/]+/b/[^/]+/[ou]/.", split_region(path)[1]) is not None
        if method in ("POST", "PUT", "PATCH") and not exempt:
            required += ["content-length", "content-type", "x-content-sha256"]
        missing = [n for n in required if n not in signed]
        if missing:
            fail(f"headers {missing} are not signed")
        try:
            when = parsedate_to_datetime(h.headers.get(date_name) or "").timestamp()
        except (TypeError, ValueError):
            fail(f"bad {date_name} header")
        if abs(time.time() - when) > 300:
            fail("the date is more than 5 minutes off (clock skew)")
        if "x-content-sha256" in signed:
            want = base64.b64encode(hashlib.sha256(body).digest()).decode()
            if h.headers.get("x-content-sha256") != want:
                fail("x-content-sha256 does not match the body")
        if "content-length" in signed and h.headers.get("content-length", "0") != str(len(body)):
            fail("content-length does not match the body")
        target = path + ("?" + query if query else "")
        lines = []
        for name in signed:
            if name == "(request-target)":
                lines.append(f"(request-target): {method.lower()} {target}")
            else:
                v = h.headers.get(name)
                if v is None:
                    fail(f"signed header {name} is absent")
                lines.append(f"{name}: {v}")
        try:
            sig = base64.b64decode(params.get("signature", ""), validate=True)
            key.verify(sig, "\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            fail("the signature does not verify with the key of " + params["keyId"].rsplit("/", 1)[-1])

    # --- routing ----------------------------------------------------------------

    def dispatch(self, h, method, path, q, body) -> Reply:
        if path.startswith("/n/"):
            return self.object_storage(h, method, path, q, body)
        if path.startswith(API + "/"):
            with self.lock:
                return self.compute(h, method, path[len(API):], q, body)
        raise OciError(404, "NotFound", f"no route for {method} {path}")

    @staticmethod
    def json_body(body: bytes) -> dict:
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            raise OciError(400, "InvalidParameter", "the request body is not valid JSON")
        if not isinstance(doc, dict):
            raise OciError(400, "InvalidParameter", "the request body must be a JSON object")
        return doc

    def retried(self, op: str, h, body: bytes, make) -> Reply:
        """opc-retry-token: the same token and body give the first answer again."""
        token = h.headers.get("opc-retry-token")
        if not token:
            return make()
        digest = hashlib.sha256(body).hexdigest()
        seen = self.tokens.get((op, token))
        if seen:
            if seen[0] != digest:
                raise OciError(409, "RetryTokenInUse", "the retry token was used for a different request")
            return seen[1]
        reply = make()
        if reply.status < 300:
            self.tokens[(op, token)] = (digest, reply)
        return reply

    # --- Object Storage ---------------------------------------------------------

    def bucket(self, ns: str, name: str) -> dict:
        if ns != self.namespace:
            raise OciError(404, "NamespaceNotFound", f"namespace {ns} not found")
        b = self.buckets.get((self.region, name))
        if b is None:
            raise OciError(404, "BucketNotFound", f"Either the bucket named '{name}' does not exist in the "
                                                  f"namespace '{ns}' or you are not authorized to access it")
        return b

    def object_storage(self, h, method, path, q, body) -> Reply:
        if path == "/n/" or path == "/n":
            return Reply(200, self.namespace)
        m = re.match(r"^/n/([^/]+)/b/([^/]+)/([oup])(?:/(.*))?$", path)
        if not m:
            raise OciError(404, "NotFound", f"no route for {method} {path}")
        ns, bname, kind, raw_obj = unquote(m[1]), unquote(m[2]), m[3], m[4]
        obj = unquote(raw_obj) if raw_obj else ""
        with self.lock:
            b = self.bucket(ns, bname)
            if kind == "u" and not obj:
                if method == "POST":
                    return self.create_upload(h, b, body)
                if method == "GET":
                    return Reply(200, [{"namespace": ns, "bucket": bname, "object": u["object"], "uploadId": uid,
                                        "timeCreated": u["created"]} for uid, u in b["uploads"].items()])
            if kind == "u" and obj:
                uid = q.get("uploadId", "")
                u = b["uploads"].get(uid)
                if u is None or u["object"] != obj:
                    raise OciError(404, "NoSuchUpload", f"The upload ID {uid} does not exist for object {obj}")
                if method == "PUT":
                    return self.upload_part(h, u, q, body)
                if method == "GET":
                    return self.list_parts(u, q)
                if method == "POST":
                    return self.commit(h, b, uid, u, body)
                if method == "DELETE":
                    del b["uploads"][uid]
                    return Reply(204)
            if kind == "o" and obj:
                return self.object_op(h, method, b, obj, body)
            if kind == "p":
                return self.par_op(h, method, b, unquote(raw_obj or ""), q, body)
        raise OciError(405, "MethodNotAllowed", f"{method} is not allowed on {path}")

    @staticmethod
    def if_none_match(h, b, obj) -> None:
        inm = h.headers.get("if-none-match")
        if inm is not None and inm != "*":
            raise OciError(400, "InvalidParameter", "if-none-match only accepts '*'")
        if inm == "*" and obj in b["objects"]:
            raise OciError(412, "IfNoneMatchFailed", f"The If-None-Match precondition failed: object {obj} exists")

    def create_upload(self, h, b, body) -> Reply:
        doc = self.json_body(body)
        obj = doc.get("object")
        if not isinstance(obj, str) or not obj:
            raise OciError(400, "InvalidParameter", "object is required")
        meta = doc.get("metadata") or {}
        if any(not k.startswith("opc-meta-") for k in meta):
            raise OciError(400, "InvalidParameter", "metadata keys must start with opc-meta-")
        self.if_none_match(h, b, obj)
        uid = str(uuid.uuid4())
        b["uploads"][uid] = {"object": obj, "parts": {}, "metadata": meta, "created": now_iso(),
                             "contentType": doc.get("contentType", "application/octet-stream")}
        return Reply(200, {"namespace": self.namespace, "bucket": b["name"], "object": obj, "uploadId": uid,
                           "timeCreated": now_iso(), "storageTier": "Standard"})

    def upload_part(self, h, u, q, body) -> Reply:
        try:
            n = int(q.get("uploadPartNum", ""))
        except ValueError:
            raise OciError(400, "InvalidParameter", "uploadPartNum is required")
        if not 1 <= n <= 10000:
            raise OciError(400, "InvalidParameter", "uploadPartNum must be 1 to 10000")
        md5 = b64md5(body)
        sent = h.headers.get("content-md5")
        if sent is not None and sent != md5:
            raise OciError(400, "UnmatchedContentMD5", f"The computed MD5 of the request body ({md5}) does not "
                                                       f"match the Content-MD5 header ({sent})")
        etag = uuid.uuid4().hex
        u["parts"][n] = {"data": body, "md5": md5, "etag": etag}
        return Reply(200, None, [("etag", etag), ("opc-content-md5", md5)])

    def list_parts(self, u, q) -> Reply:
        limit = min(int(q.get("limit", "1000") or 1000), self.page_size)
        start = int(q.get("page", "0") or 0)
        numbers = sorted(n for n in u["parts"] if n > start)
        page = numbers[:limit]
        items = [{"partNumber": n, "etag": u["parts"][n]["etag"], "md5": u["parts"][n]["md5"],
                  "size": len(u["parts"][n]["data"])} for n in page]
        headers = [("opc-next-page", str(page[-1]))] if len(numbers) > limit else []
        return Reply(200, items, headers)

    def commit(self, h, b, uid, u, body) -> Reply:
        doc = self.json_body(body)
        commit = doc.get("partsToCommit")
        if not isinstance(commit, list) or not commit:
            raise OciError(400, "InvalidParameter", "partsToCommit is required")
        self.if_none_match(h, b, u["object"])
        data, md5s = bytearray(), b""
        for p in sorted(commit, key=lambda p: p.get("partNum", 0)):
            part = u["parts"].get(p.get("partNum"))
            if part is None or part["etag"] != p.get("etag"):
                raise OciError(400, "InvalidParameter", f"part {p.get('partNum')} with etag {p.get('etag')} "
                                                        f"was not uploaded")
            data += part["data"]
            md5s += base64.b64decode(part["md5"])
        mp_md5 = f"{b64md5(md5s)}-{len(commit)}"
        etag = uuid.uuid4().hex
        b["objects"][u["object"]] = {"data": bytes(data), "etag": etag, "multipart_md5": mp_md5, "md5": None,
                                     "metadata": u["metadata"], "contentType": u["contentType"],
                                     "modified": formatdate(usegmt=True)}
        del b["uploads"][uid]
        return Reply(200, None, [("etag", etag), ("opc-multipart-md5", mp_md5), ("last-modified", formatdate(usegmt=True))])

    def object_op(self, h, method, b, name, body) -> Reply:
        if method == "PUT":
            self.if_none_match(h, b, name)
            md5 = b64md5(body)
            if h.headers.get("content-md5") not in (None, md5):
                raise OciError(400, "UnmatchedContentMD5", "Content-MD5 does not match the body")
            meta = {k.lower(): v for k, v in h.headers.items() if k.lower().startswith("opc-meta-")}
            b["objects"][name] = {"data": body, "etag": uuid.uuid4().hex, "md5": md5, "multipart_md5": None,
                                  "metadata": meta, "contentType": h.headers.get("content-type", ""),
                                  "modified": formatdate(usegmt=True)}
            return Reply(200, None, [("etag", b["objects"][name]["etag"]), ("opc-content-md5", md5)])
        o = b["objects"].get(name)
        if o is None:
            raise OciError(404, "ObjectNotFound", f"The object '{name}' was not found in the bucket '{b['name']}'")
        if method == "DELETE":
            del b["objects"][name]
            return Reply(204)
        headers = [("etag", o["etag"]), ("last-modified", o["modified"])]
        headers += [("opc-multipart-md5", o["multipart_md5"])] if o["multipart_md5"] else [("content-md5", o["md5"])]
        headers += list(o["metadata"].items())
        if method in ("GET", "HEAD"):
            return Reply(200, o["data"], headers)  # HEAD: FakeHandler sends the length only
        raise OciError(405, "MethodNotAllowed", f"{method} on an object")

    # --- Compute ----------------------------------------------------------------

    def image_state(self, img: dict) -> str:
        if img["lifecycleState"] == "IMPORTING" and time.time() >= img["_ready_at"]:
            wr = self.work_requests[img["_wr"]]
            if img["_source"].get("sourceType") == "objectStorageUri":
                img["_failure"] = self.fetch_source(img)
                wr["_errors"] = [img["_failure"]] if img["_failure"] else []
            if img["_failure"]:
                img["lifecycleState"] = "DELETED"
                wr.update(status="FAILED", timeFinished=now_iso(), percentComplete=100.0)
            else:
                img["lifecycleState"] = "AVAILABLE"
                img["_data"] = self.source_data(img)
                wr.update(status="SUCCEEDED", timeFinished=now_iso(), percentComplete=100.0)
                wr["resources"][0]["actionType"] = "CREATED"
        return img["lifecycleState"]

    def source_data(self, img: dict) -> bytes:
        """The bytes the image was imported from (ExportImage writes them back)."""
        src = img["_source"]
        if src.get("sourceType") == "objectStorageUri":
            region, path = split_region(urlsplit(src["sourceUri"]).path)
            m = PAR_PATH.match(path)
            return self.buckets[(region, unquote(m[3]))]["objects"][unquote(m[4])]["data"]
        return self.buckets[(img["_region"], src["bucketName"])]["objects"][src["objectName"]]["data"]

    def export_image(self, h, img: dict, body: bytes) -> Reply:
        doc = self.json_body(body)
        if self.image_state(img) != "AVAILABLE":
            raise OciError(409, "Conflict", f"image {img['id']} is {img['lifecycleState']}, not AVAILABLE")
        if doc.get("destinationType") != "objectStorageTuple":
            raise OciError(400, "InvalidParameter", "the fake exports to destinationType objectStorageTuple only")
        fmt = doc.get("exportFormat", "OCI")
        if fmt not in MAGIC:
            raise OciError(400, "InvalidParameter", "the fake exports QCOW2 or VMDK (the image's own format)")
        b = self.bucket(doc.get("namespaceName", ""), doc.get("bucketName", ""))
        if not doc.get("objectName"):
            raise OciError(400, "InvalidParameter", "objectName is required")
        wr_id = ocid("workrequest", self.region)
        self.work_requests[wr_id] = {
            "id": wr_id, "operationType": "ExportImage", "status": "IN_PROGRESS", "compartmentId": img["compartmentId"],
            "percentComplete": 0.0, "timeAccepted": now_iso(), "timeStarted": now_iso(),
            "resources": [{"entityType": "image", "actionType": "IN_PROGRESS", "identifier": img["id"],
                           "entityUri": f"{API}/images/{img['id']}"}],
            "_errors": [], "_region": self.region, "_ready_at": time.time() + self.wr_seconds,
            "_export": (b, doc["objectName"], img["_data"])}
        return Reply(200, self.public_image(img), [("opc-work-request-id", wr_id)])

    def export_state(self, wr: dict) -> None:
        """An export's object appears when its work request finishes."""
        if wr["status"] == "IN_PROGRESS" and time.time() >= wr["_ready_at"]:
            b, name, data = wr["_export"]
            b["objects"][name] = {"data": data, "etag": uuid.uuid4().hex, "md5": b64md5(data), "multipart_md5": None,
                                  "metadata": {}, "contentType": "application/octet-stream",
                                  "modified": formatdate(usegmt=True)}
            wr.update(status="SUCCEEDED", timeFinished=now_iso(), percentComplete=100.0)

    def public_image(self, img: dict) -> dict:
        self.image_state(img)
        return {k: v for k, v in img.items() if not k.startswith("_")}

    def image(self, image_id: str) -> dict:
        img = self.images.get(image_id)
        if img is None or img["_region"] != self.region:
            raise OciError(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
        return img

    def compute(self, h, method, p, q, body) -> Reply:
        if p == "/images" and method == "POST":
            return self.retried("CreateImage", h, body, lambda: self.create_image(body))
        if p == "/images" and method == "GET":
            if not q.get("compartmentId"):
                raise OciError(400, "MissingParameter", "compartmentId is required")
            out = [self.public_image(i) for i in self.images.values() if i["compartmentId"] == q["compartmentId"]
                   and i["_region"] == self.region
                   and (not q.get("displayName") or i["displayName"] == q["displayName"])]
            out = [i for i in out if i["lifecycleState"] != "DELETED"
                   and (not q.get("lifecycleState") or i["lifecycleState"] == q["lifecycleState"])]
            return self.paged(out, q)
        m = re.fullmatch(r"/images/([^/]+)", p)
        if m:
            img = self.image(unquote(m[1]))
            if method == "GET":
                return Reply(200, self.public_image(img), [("etag", img["_etag"])])
            if method == "DELETE":
                if self.image_state(img) == "DELETED":
                    raise OciError(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
                img["lifecycleState"] = "DELETED"
                self.shapes.pop(img["id"], None)
                return Reply(204)
        m = re.fullmatch(r"/images/([^/]+)/actions/export", p)
        if m and method == "POST":
            img = self.image(unquote(m[1]))
            return self.retried("ExportImage", h, body, lambda: self.export_image(h, img, body))
        m = re.fullmatch(r"/images/([^/]+)/shapes(?:/([^/]+))?", p)
        if m:
            img = self.image(unquote(m[1]))
            shape = unquote(m[2]) if m[2] else ""
            entries = self.shapes.setdefault(img["id"], {})
            if not shape and method == "GET":
                return Reply(200, list(entries.values()))
            if shape and method == "PUT":
                if self.image_state(img) != "AVAILABLE":
                    raise OciError(409, "Conflict", f"image {img['id']} is {img['lifecycleState']}, not AVAILABLE")
                if shape not in SHAPES:
                    raise OciError(404, "NotAuthorizedOrNotFound", f"shape {shape} not found")
                doc = self.json_body(body)
                entries[shape] = {"imageId": img["id"], "shape": shape, **{k: doc[k] for k in
                                  ("memoryConstraints", "ocpuConstraints") if k in doc}}
                return Reply(200, entries[shape])
            if shape and method == "DELETE":
                entries.pop(shape, None)
                return Reply(204)
        m = re.fullmatch(r"/workRequests/([^/]+)(/errors)?", p)
        if m and method == "GET":
            wr = self.work_requests.get(unquote(m[1]))
            if wr is None or wr["_region"] != self.region:
                raise OciError(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
            if wr["operationType"] == "ExportImage":
                self.export_state(wr)
            else:
                self.image_state(self.images[wr["resources"][0]["identifier"]])
            if m[2]:
                return Reply(200, wr["_errors"] if wr["status"] == "FAILED" else [])
            return Reply(200, {k: v for k, v in wr.items() if not k.startswith("_")})
        if p == "/computeGlobalImageCapabilitySchemas" and method == "GET":
            return Reply(200, [{"id": GLOBAL_SCHEMA_ID, "compartmentId": None,
                                "displayName": "OCI.ComputeGlobalImageCapabilitySchema",
                                "currentVersionName": GLOBAL_VERSION, "timeCreated": "2020-10-21T00:00:00.000Z"}])
        m = re.fullmatch(r"/computeGlobalImageCapabilitySchemas/([^/]+)/versions/([^/]+)", p)
        if m and method == "GET":
            if unquote(m[1]) != GLOBAL_SCHEMA_ID or unquote(m[2]) != GLOBAL_VERSION:
                raise OciError(404, "NotAuthorizedOrNotFound", "global schema version not found")
            return Reply(200, {"name": GLOBAL_VERSION, "computeGlobalImageCapabilitySchemaId": GLOBAL_SCHEMA_ID,
                               "displayName": GLOBAL_VERSION, "schemaData": GLOBAL_SCHEMA,
                               "timeCreated": "2020-10-21T00:00:00.000Z"})
        if p == "/computeImageCapabilitySchemas" and method == "POST":
            return self.retried("CreateComputeImageCapabilitySchema", h, body, lambda: self.create_schema(body))
        if p == "/computeImageCapabilitySchemas" and method == "GET":
            if not q.get("compartmentId") and not q.get("imageId"):
                raise OciError(400, "MissingParameter", "compartmentId is required")
            out = [public(s) for s in self.schemas.values() if s["lifecycleState"] != "DELETED" and s["_region"] == self.region
                   and (not q.get("compartmentId") or s["compartmentId"] == q["compartmentId"])
                   and (not q.get("imageId") or s["imageId"] == q["imageId"])]
            return self.paged(out, q)
        m = re.fullmatch(r"/computeImageCapabilitySchemas/([^/]+)", p)
        if m:
            s = self.schemas.get(unquote(m[1]))
            if s is None or s["lifecycleState"] == "DELETED" or s["_region"] != self.region:
                raise OciError(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
            if method == "GET":
                return Reply(200, public(s))
            if method == "PUT":
                doc = self.json_body(body)
                if "schemaData" in doc:
                    self.check_schema_data(doc["schemaData"])
                    s["schemaData"] = doc["schemaData"]
                if "displayName" in doc:
                    s["displayName"] = doc["displayName"]
                return Reply(200, public(s))
            if method == "DELETE":
                s["lifecycleState"] = "DELETED"
                return Reply(204)
        raise OciError(404, "NotFound", f"no route for {method} {API}{p}")

    def paged(self, items: list, q: dict) -> Reply:
        limit = min(int(q.get("limit", "1000") or 1000), self.page_size)
        start = int(q.get("page", "0") or 0)
        page = items[start:start + limit]
        headers = [("opc-next-page", str(start + limit))] if start + limit < len(items) else []
        return Reply(200, page, headers)

    def create_image(self, body: bytes) -> Reply:
        doc = self.json_body(body)
        comp = doc.get("compartmentId")
        if not isinstance(comp, str) or not comp.startswith("ocid1."):
            raise OciError(400, "InvalidParameter", "compartmentId must be an OCID")
        limit = self.image_limits.get(self.region)
        if limit is not None:
            count = sum(1 for i in self.images.values() if i["_region"] == self.region and self.image_state(i) != "DELETED")
            if count >= limit:
                raise OciError(400, "LimitExceeded", f"The service limit custom-image-count ({limit}) for region "
                                                     f"{self.region} has been reached; delete custom images or "
                                                     f"request a limit increase")
        src = doc.get("imageSourceDetails") or {}
        stype = src.get("sourceImageType", "QCOW2")
        if stype not in MAGIC:
            raise OciError(400, "InvalidParameter", "sourceImageType must be QCOW2 or VMDK")
        mode = doc.get("launchMode", "PARAVIRTUALIZED")
        if mode not in ("NATIVE", "EMULATED", "PARAVIRTUALIZED", "CUSTOM"):
            raise OciError(400, "InvalidParameter", f"launchMode {mode} is not valid")
        failure, size = None, 0
        if src.get("sourceType") == "objectStorageTuple":
            for k in ("namespaceName", "bucketName", "objectName"):
                if not src.get(k):
                    raise OciError(400, "InvalidParameter", f"imageSourceDetails.{k} is required")
            b = self.buckets.get((self.region, src["bucketName"]))
            o = b["objects"].get(src["objectName"]) if b and src["namespaceName"] == self.namespace else None
            if o is None:
                failure = {"code": "ImageSourceNotFound", "message": f"object {src['objectName']} not found in bucket "
                                                                     f"{src['bucketName']}", "timestamp": now_iso()}
            elif not o["data"].startswith(MAGIC[stype]):
                failure = {"code": "InvalidImageFormat", "message": f"the object is not a {stype} image",
                           "timestamp": now_iso()}
            size = len(o["data"]) if o else 0
        elif src.get("sourceType") == "objectStorageUri":
            uri = src.get("sourceUri") or ""
            parts = urlsplit(uri)
            if parts.scheme not in ("http", "https") or not PAR_PATH.match(split_region(parts.path)[1]):
                raise OciError(400, "InvalidParameter", "imageSourceDetails.sourceUri must be an Object Storage URL "
                                                        "(the fake takes pre-authenticated request URLs only)")
            # Fetched while the work request runs (see image_state): a PAR deleted too early fails it.
        else:
            raise OciError(400, "InvalidParameter", "imageSourceDetails.sourceType must be objectStorageTuple or "
                                                    "objectStorageUri")
        image_id, wr_id = ocid("image", self.region), ocid("workrequest", self.region)
        img = {"id": image_id, "compartmentId": comp, "displayName": doc.get("displayName") or image_id,
               "lifecycleState": "IMPORTING", "launchMode": mode, "operatingSystem": src.get("operatingSystem", "Custom"),
               "operatingSystemVersion": src.get("operatingSystemVersion", "Custom"), "createImageAllowed": True,
               "sizeInMBs": size >> 20, "timeCreated": now_iso(),
               "freeformTags": doc.get("freeformTags") or {}, "sourceImageType": stype,
               # An import through a URL (from another region) takes longer: twice the time.
               "_source": src, "_wr": wr_id, "_failure": failure,
               "_ready_at": time.time() + self.wr_seconds * (2 if src["sourceType"] == "objectStorageUri" else 1),
               "_etag": uuid.uuid4().hex, "_region": self.region}
        self.images[image_id] = img
        self.work_requests[wr_id] = {
            "id": wr_id, "operationType": "CreateImage", "status": "IN_PROGRESS", "compartmentId": comp,
            "percentComplete": 0.0, "timeAccepted": now_iso(), "timeStarted": now_iso(),
            "resources": [{"entityType": "image", "actionType": "IN_PROGRESS", "identifier": image_id,
                           "entityUri": f"{API}/images/{image_id}"}],
            "_errors": [failure] if failure else [], "_region": self.region}
        return Reply(200, self.public_image(img), [("opc-work-request-id", wr_id), ("etag", img["_etag"]),
                                                   ("location", f"{API}/images/{image_id}")])

    # --- pre-authenticated requests ---------------------------------------------

    def par_valid(self, token: str, region: str, ns: str, bucket: str, obj: str) -> str | None:
        """Why a GET through this PAR fails, or None."""
        par = self.pars.get(token)
        if par is None or par["_deleted"]:
            return "no such pre-authenticated request (deleted?)"
        if par["_expires"] <= time.time():
            return "the pre-authenticated request has expired"
        if (par["_region"], ns, par["_bucket"], par["objectName"]) != (region, self.namespace, bucket, obj) \
                or par["accessType"] not in ("ObjectRead", "ObjectReadWrite"):
            return "the pre-authenticated request does not grant reading this object"
        o = self.buckets.get((region, bucket), {}).get("objects", {}).get(obj)
        return None if o else f"object {obj} not found"

    def par_get(self, region: str, path: str, method: str) -> Reply:
        m = PAR_PATH.match(path)
        token, ns, bucket, obj = m[1], unquote(m[2]), unquote(m[3]), unquote(m[4])
        why = self.par_valid(token, region, ns, bucket, obj)
        if why:
            return Reply(404, {"code": "NotFound", "message": why})
        o = self.buckets[(region, bucket)]["objects"][obj]
        return Reply(200, o["data"], [("etag", o["etag"])])

    def fetch_source(self, img: dict) -> dict | None:
        """What the import's GET of sourceUri finds: None when it is a valid image, else the error."""
        src = img["_source"]
        parts = urlsplit(src["sourceUri"])
        region, path = split_region(parts.path)
        m = PAR_PATH.match(path)
        why = None
        if parts.netloc != self.address:
            why = f"cannot reach {parts.netloc}"
        else:
            why = self.par_valid(m[1], region, unquote(m[2]), unquote(m[3]), unquote(m[4]))
        if why:
            return {"code": "ImageSourceNotFound", "message": f"GET of the source URL failed: HTTP 404: {why}",
                    "timestamp": now_iso()}
        data = self.buckets[(region, unquote(m[3]))]["objects"][unquote(m[4])]["data"]
        if not data.startswith(MAGIC[img["sourceImageType"]]):
            return {"code": "InvalidImageFormat", "message": f"the object is not a {img['sourceImageType']} image",
                    "timestamp": now_iso()}
        img["sizeInMBs"] = len(data) >> 20
        return None

    def par_summary(self, par: dict) -> dict:
        return {k: v for k, v in par.items() if not k.startswith("_") and k not in ("accessUri", "fullPath")}

    def par_op(self, h, method, b, par_id, q, body) -> Reply:
        if not par_id and method == "POST":
            doc = self.json_body(body)
            access = doc.get("accessType")
            if access not in ("ObjectRead", "ObjectWrite", "ObjectReadWrite", "AnyObjectRead", "AnyObjectWrite",
                              "AnyObjectReadWrite"):
                raise OciError(400, "InvalidParameter", f"accessType {access!r} is not valid")
            if not doc.get("name"):
                raise OciError(400, "InvalidParameter", "name is required")
            obj = doc.get("objectName") or ""
            if access.startswith("Object") and not obj:
                raise OciError(400, "InvalidParameter", f"objectName is required for accessType {access}")
            try:
                expires = datetime.fromisoformat(str(doc.get("timeExpires", "")).replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise OciError(400, "InvalidParameter", "timeExpires must be an RFC 3339 date-time")
            if expires <= time.time():
                raise OciError(400, "InvalidParameter", "timeExpires must be in the future")
            token = base64.urlsafe_b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode().rstrip("=")
            par_id = base64.b64encode(uuid.uuid4().bytes).decode() + ":" + obj  # '/', '+', ':' as real ids have
            uri = f"/p/{token}/n/{self.namespace}/b/{b['name']}/o/{quote(obj, safe='')}"
            par = {"id": par_id, "name": doc["name"], "accessUri": uri,
                   "fullPath": f"http://{h.headers.get('host', self.address)}{self.prefix}{uri}",
                   "objectName": obj or None, "accessType": access, "bucketListingAction": "Deny",
                   "timeCreated": now_iso(), "timeExpires": doc["timeExpires"],
                   "_region": self.region, "_bucket": b["name"], "_expires": expires, "_deleted": False,
                   "_token": token}
            self.pars[token] = par
            return Reply(200, public(par))
        if not par_id and method == "GET":
            prefix = q.get("objectNamePrefix", "")
            out = [self.par_summary(p) for p in self.pars.values() if not p["_deleted"] and p["_region"] == self.region
                   and p["_bucket"] == b["name"] and (p["objectName"] or "").startswith(prefix)]
            return self.paged(out, q)
        par = next((p for p in self.pars.values() if p["id"] == par_id and p["_region"] == self.region
                    and p["_bucket"] == b["name"] and not p["_deleted"]), None)
        if par is None:
            raise OciError(404, "NotFound", f"pre-authenticated request {par_id} not found")
        if method == "GET":
            return Reply(200, self.par_summary(par))
        if method == "DELETE":
            par["_deleted"] = True
            return Reply(204)
        raise OciError(405, "MethodNotAllowed", f"{method} on a pre-authenticated request")

    @staticmethod
    def check_schema_data(data) -> None:
        if not isinstance(data, dict) or not data:
            raise OciError(400, "InvalidParameter", "schemaData must be a non-empty map")
        for name, d in data.items():
            g = GLOBAL_SCHEMA.get(name)
            if g is None:
                raise OciError(400, "InvalidParameter", f"{name} is not in the global image capability schema")
            if d.get("descriptorType") != g["descriptorType"] or d.get("source") not in ("IMAGE", "GLOBAL"):
                raise OciError(400, "InvalidParameter", f"{name}: descriptorType must be {g['descriptorType']} and "
                                                        f"source IMAGE or GLOBAL")
            if g["descriptorType"] == "enumstring":
                vals = d.get("values") or []
                if not vals or any(v not in g["values"] for v in vals) or d.get("defaultValue", vals[0]) not in vals:
                    raise OciError(400, "InvalidParameter", f"{name}: values {vals} must be a subset of "
                                                            f"{g['values']} holding defaultValue")
            elif not isinstance(d.get("defaultValue", False), bool):
                raise OciError(400, "InvalidParameter", f"{name}: defaultValue must be a boolean")

    def create_schema(self, body: bytes) -> Reply:
        doc = self.json_body(body)
        for k in ("compartmentId", "computeGlobalImageCapabilitySchemaVersionName", "imageId", "schemaData"):
            if not doc.get(k):
                raise OciError(400, "InvalidParameter", f"{k} is required")
        if doc["computeGlobalImageCapabilitySchemaVersionName"] != GLOBAL_VERSION:
            raise OciError(404, "NotAuthorizedOrNotFound", "global schema version not found")
        img = self.image(doc["imageId"])
        if self.image_state(img) != "AVAILABLE":
            raise OciError(409, "Conflict", f"image {img['id']} is {img['lifecycleState']}, not AVAILABLE")
        self.check_schema_data(doc["schemaData"])
        sid = ocid("computeimgcapschema", self.region)
        self.schemas[sid] = {"id": sid, "compartmentId": doc["compartmentId"],
                             "computeGlobalImageCapabilitySchemaId": GLOBAL_SCHEMA_ID,
                             "computeGlobalImageCapabilitySchemaVersionName": GLOBAL_VERSION,
                             "imageId": img["id"], "displayName": doc.get("displayName") or sid,
                             "schemaData": doc["schemaData"], "lifecycleState": "ACTIVE", "timeCreated": now_iso(),
                             "_region": self.region}
        return Reply(200, public(self.schemas[sid]))

    # --- controls ---------------------------------------------------------------

    def control(self, method, path, query, body) -> Reply:
        q = dict(parse_qsl(query, keep_blank_values=True))
        with self.lock:
            if path == "/_fake/config" and method == "POST":
                doc = json.loads(body or b"{}")
                self.wr_seconds = float(doc.get("work_request_seconds", self.wr_seconds))
                self.page_size = int(doc.get("page_size", self.page_size))
                for region, limit in (doc.get("image_limits") or {}).items():
                    if limit is None:
                        self.image_limits.pop(region, None)
                    else:
                        self.image_limits[region] = int(limit)
                return Reply(200, {"work_request_seconds": self.wr_seconds, "page_size": self.page_size,
                                   "image_limits": self.image_limits})
            if path == "/_fake/buckets" and method == "POST":
                doc = json.loads(body)
                name, region = doc["name"], doc.get("region", DEFAULT_REGION)
                self.buckets.setdefault((region, name), {"name": name, "region": region, "objects": {}, "uploads": {}})
                return Reply(200, {"name": name, "namespace": self.namespace, "region": region})
            if path == "/_fake/pars/revoke" and method == "POST":
                # As if someone deleted the bucket's PARs (imports still reading them then fail).
                bucket = json.loads(body or b"{}").get("bucket")
                hit = [p for p in self.pars.values() if p["_bucket"] == bucket and not p["_deleted"]]
                for p in hit:
                    p["_deleted"] = True
                return Reply(200, {"revoked": len(hit)})
            if path == "/_fake/object":
                objects = self.buckets.get((q.get("region", DEFAULT_REGION), q.get("bucket")), {}).get("objects", {})
                o = objects.get(q.get("name"))
                if o and method == "DELETE":
                    del objects[q.get("name")]
                    return Reply(200, {})
                return Reply(200, o["data"]) if o else Reply(404, {"code": "ObjectNotFound", "message": "no object"})
            if path == "/_fake/state":
                for img in self.images.values():
                    self.image_state(img)
                return Reply(200, {
                    "namespace": self.namespace,
                    "images": {k: {**self.public_image(v), "region": v["_region"]} for k, v in self.images.items()},
                    "work_requests": {k: {**public(v), "region": v["_region"]} for k, v in self.work_requests.items()},
                    "schemas": {k: {**public(v), "region": v["_region"]} for k, v in self.schemas.items()},
                    "shapes": self.shapes,
                    "pars": {p["id"]: {**self.par_summary(p), "region": p["_region"], "bucket": p["_bucket"],
                                       "deleted": p["_deleted"]} for p in self.pars.values()},
                    "objects": {f"{bn}/{on}": {"size": len(o["data"]), "md5": o["md5"],
                                               "multipart_md5": o["multipart_md5"], "metadata": o["metadata"]}
                                for (_, bn), b in self.buckets.items() for on, o in b["objects"].items()},
                    "uploads": {f"{bn}/{u['object']}": {"uploadId": uid, "parts": sorted(u["parts"])}
                                for (_, bn), b in self.buckets.items() for uid, u in b["uploads"].items()}})
            if path == "/_fake/stats":
                return Reply(200, {"requests": dict(self.requests), "faults": dict(self.faults),
                                   "statuses": dict(self.statuses), "regions": dict(self.region_requests)})
            if path in ("/_fake/health", "/_fake/reset", "/_fake/faults"):
                try:
                    return super().control(method, path, query, body)
                except (ValueError, re.error) as e:  # a bad rule or its JSON
                    return Reply(400, {"code": "BadFaultRule", "message": str(e)})
        return Reply(404, {"code": "NotFound", "message": f"no control {method} {path}"})


class Handler(FakeHandler):
    server_version = "fake-oci"
    json_type = "application/json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", action="append", default=[], help="KEY_ID=PUBLIC_KEY.pem (repeatable)")
    ap.add_argument("--namespace", default="fakens")
    ap.add_argument("--work-request-seconds", type=float, default=0.3)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    server = listen(args.host, args.port, Handler, app=FakeOci(args), verbose=args.verbose)
    serve([server], f"fake OCI listening on http://{args.host}:{args.port}")


if __name__ == "__main__":
    sys.exit(main())
