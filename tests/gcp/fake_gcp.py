#!/usr/bin/env python3
"""Fake Google Cloud (OAuth2, STS, IAM Credentials, metadata server, Cloud Storage JSON API,
Compute Engine global images and operations) for cloud_helper's tests. Stdlib only, threaded.

    python3 tests/gcp/fake_gcp.py --port 48020 --state-dir DIR --service-account DIR/sa.json \\
        --modulus-file DIR/sa.modulus [--op-seconds 0.3]

One loopback HTTP server answers every Google host; the client is pointed at it through
token_uri / token_url / service_account_impersonation_url in the credentials JSON,
GCE_METADATA_HOST, STORAGE_EMULATOR_HOST and CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE.
Everything lives in memory; --state-dir gets requests.log (one line per request).

OAuth2 (oauth2.googleapis.com)
  POST /token  form:
    grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT: the JWT's RS256
      signature is VERIFIED (RSASSA-PKCS1-v1_5, SHA-256, computed here with pow()) against the
      test service account's public key (--modulus-file, e = 65537); header alg RS256 and kid =
      private_key_id; claims iss = client_email, aud = this server's /token URL, scope holding
      cloud-platform, iat not in the future (60 s skew), exp > now and exp - iat <= 3600.
      Failures: 400 {"error": "invalid_grant", "error_description": "Invalid JWT Signature."} etc.
    grant_type=refresh_token with client_id/client_secret/refresh_token of the test user
      (fake-client-id / fake-client-secret / fake-refresh-token): 400 invalid_grant / 401
      invalid_client otherwise.
  Answers {"access_token", "expires_in": 3599, "token_type": "Bearer"}.
STS (sts.googleapis.com)   POST /v1/token  RFC 8693 token exchange: grant_type token-exchange,
  audience = //iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/
  fake-pool/providers/fake-provider, subject_token = fake-oidc-subject-token, subject_token_type
  urn:ietf:params:oauth:token-type:jwt, requested_token_type access_token, scope given.
IAM Credentials   POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken  (Bearer of an
  STS token) {"scope": [...], "lifetime"} -> {"accessToken", "expireTime"}.
Metadata server   GET /computeMetadata/v1/instance/service-accounts/default/token and
  /computeMetadata/v1/project/project-id; header Metadata-Flavor: Google required (403 else).

Every API call below needs "Authorization: Bearer <token issued here>" (401 UNAUTHENTICATED
with WWW-Authenticate otherwise).

Cloud Storage JSON API (buckets exist when made with POST /_fake/buckets or --bucket)
  POST   /upload/storage/v1/b/{b}/o?uploadType=resumable&name=N[&ifGenerationMatch=G]
         body: object resource (crc32c/md5Hash, when given, are checked at the end: 400);
         X-Upload-Content-Length kept -> 200 + Location: {this server}/upload/storage/v1/b/{b}/o?
         uploadType=resumable&name=N&upload_id=ID
  PUT    {session}  Content-Range: bytes A-B/T (A must be <= the persisted size; bytes before
         it are skipped as GCS does; a non-final chunk persists only whole 256 KiB units) ->
         308 + Range: bytes=0-N, or 200 + the object at the end; Content-Range: bytes */T
         asks (308 [+ Range] / 200 + object); ifGenerationMatch checked again at the end (412
         conditionNotMet); a cancelled session answers 410, an unknown one 404.
  DELETE {session}  -> 499 (as GCS does), the session is gone.
  GET    /storage/v1/b/{b}/o/{name}  object resource (size as a string, crc32c and md5Hash base64,
         generation, metageneration, metadata); ?alt=media the bytes.  DELETE -> 204.
Compute Engine (/compute/v1/projects/{p}/...)
  POST   global/images[?requestId=R]: name [a-z]([-a-z0-9]*[a-z0-9])? <= 63 (400 invalid),
         409 alreadyExists, architecture/guestOsFeatures enums checked (400), rawDisk.source
         https://storage.googleapis.com/B/O. Answers a RUNNING operation; the image is PENDING.
         After --op-seconds the operation is DONE and the image READY, or, when the object is
         missing or is not a gzip tar whose first member is disk.raw, the operation ends with
         an error and the image is gone. The same requestId gives the same operation back.
  GET    global/images/{n}  (404 notFound);  DELETE -> operation (400 resourceNotReady while
         PENDING; the image is removed when it ends)
  POST   global/images/{n}/deprecate  DeprecationStatus -> operation
  GET    global/images/{n}/getIamPolicy   {"version", "etag", "bindings" (absent when none)}
  POST   global/images/{n}/setIamPolicy   {"policy"}: a stale etag -> 412 conditionNotMet;
         members must be user:/group:/serviceAccount:/domain:/allAuthenticatedUsers (allUsers
         is refused on images: 400).
  GET    global/operations/{op}

Test control (not Google)
  GET  /_fake/health;  GET /_fake/state (objects without data, sessions, images, policies,
  operations);  GET /_fake/stats {"requests", "faults", "statuses", "upload_bytes"}; POST
  /_fake/reset;  POST /_fake/buckets {"name"};  GET /_fake/object?bucket=B&name=N (bytes);
  POST /_fake/config {"op_seconds", "chunk_delay"};  POST /_fake/quota {"project", "images": N|null,
  "where": "request"|"operation"}: images.insert in PROJECT once it holds N images answers 403
  quotaExceeded (domain usageLimits, "Quota 'IMAGES' exceeded.  Limit: N.0 globally."), or
  ("operation") a RUNNING operation that ends DONE with error.errors[{code QUOTA_EXCEEDED,
  message, errorDetails[{quotaInfo}]}], httpErrorStatusCode 403; null lifts the quota;
  POST/DELETE /_fake/faults?rule=NAME {"match": regex on "METHOD /path", "throttle"|
  "status500"|"status503"|"drop"|"drop_after": share, "seed", "max_faults"} (first matching
  rule decides; drop = closed unanswered and not applied; drop_after = applied, then closed;
  throttle = what a rate quota answers: 403 rateLimitExceeded on Compute, 429 rateLimitExceeded
  with Retry-After elsewhere).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import random
import re
import secrets
import sys
import tarfile
import time
import uuid
from collections import Counter
from urllib.parse import parse_qs, quote, unquote

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fake_common import FakeApp, FakeHandler, Reply, listen, serve  # noqa: E402

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret"
REFRESH_TOKEN = "fake-refresh-token"
STS_AUDIENCE = ("//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/"
                "fake-pool/providers/fake-provider")
SUBJECT_TOKEN = "fake-oidc-subject-token"
METADATA_PROJECT = "fake-metadata-project"
CHUNK_QUANTUM = 256 * 1024
FEATURES = {"UEFI_COMPATIBLE", "VIRTIO_SCSI_MULTIQUEUE", "GVNIC", "IDPF", "SEV_CAPABLE", "SEV_SNP_CAPABLE",
            "SEV_LIVE_MIGRATABLE", "SEV_LIVE_MIGRATABLE_V2", "TDX_CAPABLE", "SECURE_BOOT", "MULTI_IP_SUBNET",
            "WINDOWS", "SUSPEND_RESUME_COMPATIBLE"}
NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# DigestInfo prefix of SHA-256 (RFC 8017 section 9.2, note 1).
SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


class GError(Exception):
    """A Google API error: {"error": {"code", "message", "errors": [{reason}], "status"}}."""
    STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
              409: "ALREADY_EXISTS", 410: "NOT_FOUND", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED",
              500: "INTERNAL", 503: "UNAVAILABLE"}

    def __init__(self, status: int, reason: str, message: str, headers=None, domain: str = "global"):
        self.status, self.reason, self.message, self.headers = status, reason, message, headers or []
        self.domain = domain  # "usageLimits" for quota and rate-limit errors

    def reply(self) -> Reply:
        return Reply(self.status, {"error": {"code": self.status, "message": self.message,
                                             "errors": [{"message": self.message, "domain": self.domain,
                                                         "reason": self.reason}],
                                             "status": self.STATUS.get(self.status, "UNKNOWN")}}, self.headers)


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str):
        self.status, self.error, self.description = status, error, description


class FakeGcp(FakeApp):
    def __init__(self, args):
        self.state_dir = args.state_dir
        self.op_seconds = args.op_seconds
        self.chunk_delay = 0.0
        with open(args.service_account) as f:
            self.sa = json.load(f)
        with open(args.modulus_file) as f:
            text = f.read().strip()
        self.modulus = int(text.split("=", 1)[-1], 16)
        self.base_url = f"http://{args.host}:{args.port}"
        self.tokens: dict[str, tuple[float, str]] = {}  # token -> (expiry, kind)
        self.buckets: set[str] = set(args.bucket or [])
        self.objects: dict[tuple[str, str], dict] = {}
        self.sessions: dict[str, dict] = {}
        self.images: dict[tuple[str, str], dict] = {}
        self.policies: dict[tuple[str, str], dict] = {}
        self.operations: dict[tuple[str, str], dict] = {}
        self.request_ids: dict[str, str] = {}
        # Per-project IMAGES quota: project -> {"images": limit, "where": "request"|"operation"}.
        self.quotas: dict[str, dict] = {}
        super().__init__()

    def reset_stats(self) -> None:
        super().reset_stats()
        self.upload_bytes: Counter = Counter()  # bytes received per object (resumable PUTs)

    # --- entry (FakeApp hooks) ----------------------------------------------------

    def base_headers(self, h, path: str) -> list:
        return [("x-guploader-uploadid", uuid.uuid4().hex)] if path.startswith(("/upload/", "/storage/")) else []

    def fault_reply(self, fault: str, path: str) -> Reply:
        if fault == "throttle":
            return self.rate_limited(path).reply()
        if fault == "status503":
            return GError(503, "backendError", "Backend Error").reply()
        return GError(500, "internalError", "Internal Error").reply()

    @staticmethod
    def rate_limited(path: str) -> GError:
        """What a rate quota answers, per service. Compute: 403 rateLimitExceeded ("If your project
        exceeds a rate quota, you receive a 403 error with the reason rateLimitExceeded", Compute
        rate quotas), with a message that starts "Quota exceeded" like a resource quota's: only the
        reason tells them apart. Cloud Storage and the token endpoints: 429 Too Many Requests."""
        m = re.match(r"^/compute/v1/projects/([^/]+)/", path)
        if m:
            group = "Read requests" if "/operations/" in path else "Queries"
            return GError(403, "rateLimitExceeded", f"Quota exceeded for quota metric '{group}' and limit "
                          f"'{group} per minute' of service 'compute.googleapis.com' for consumer "
                          f"'project_number:123456'.", domain="usageLimits")
        return GError(429, "rateLimitExceeded", "The project exceeded the rate limit for CloudStorage and the "
                      "specified bucket.", [("Retry-After", "1")], domain="usageLimits")

    def answer(self, h, method: str, path: str, query: str, body: bytes) -> Reply:
        try:
            return self.dispatch(h, method, path, query, body)
        except GError as e:
            return e.reply()
        except OAuthError as e:
            return Reply(e.status, {"error": e.error, "error_description": e.description})

    def bug_reply(self, e: Exception) -> Reply:
        return GError(500, "fakeBug", f"{type(e).__name__}: {e}").reply()

    @staticmethod
    def request_kind(method: str, path: str) -> str:
        if path.startswith("/upload/"):
            return f"{method} upload"
        if path.startswith("/storage/"):
            return f"{method} object"
        m = re.match(r"^/compute/v1/projects/[^/]+/global/(images|operations)(/[^/]+)?(/\w+)?", path)
        if m:
            return f"{method} {m.group(1)}{m.group(3) or ''}"
        return f"{method} {path}"

    def log(self, method: str, path: str, query: str, status: str, kind: str) -> None:
        if not self.state_dir:
            return
        # upload_id is a credential of its session: not logged whole.
        q = re.sub(r"(upload_id=[^&]{6})[^&]*", r"\1...", query)
        with self.lock, open(os.path.join(self.state_dir, "requests.log"), "a") as f:
            f.write(f"{rfc3339(time.time())} {method} {path}{'?' + q if q else ''} {status}\n")

    def dispatch(self, h, method: str, path: str, query: str, body: bytes) -> Reply:
        q = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        if path == "/token" and method == "POST":
            return self.oauth_token(h, body)
        if path == "/v1/token" and method == "POST":
            return self.sts_token(h, body)
        if path.startswith("/computeMetadata/v1/"):
            return self.metadata(h, method, path)
        m = re.match(r"^/v1/projects/-/serviceAccounts/([^/:]+):generateAccessToken$", path)
        if m and method == "POST":
            self.check_auth(h, kinds=("sts",))
            return self.generate_access_token(unquote(m.group(1)), body)
        self.check_auth(h)
        m = re.match(r"^/upload/storage/v1/b/([^/]+)/o$", path)
        if m:
            return self.upload(h, method, m.group(1), q, body)
        m = re.match(r"^/storage/v1/b/([^/]+)/o/(.+)$", path)
        if m:
            return self.object(method, m.group(1), unquote(m.group(2)), q)
        m = re.match(r"^/compute/v1/projects/([^/]+)/global/(.+)$", path)
        if m:
            return self.compute(method, m.group(1), m.group(2), q, body)
        raise GError(404, "notFound", f"Not Found: {method} {path}")

    # --- tokens -----------------------------------------------------------------

    def issue(self, kind: str, seconds: int = 3599) -> str:
        token = f"ya29.fake-{kind}-" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = (time.time() + seconds, kind)
        return token

    def check_auth(self, h, kinds=("oauth", "user", "metadata", "impersonated", "sts")) -> None:
        auth = h.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self.lock:
            entry = self.tokens.get(token)
        if not entry or entry[0] < time.time() or entry[1] not in kinds:
            raise GError(401, "authError", "Request had invalid authentication credentials. Expected OAuth 2 access "
                         "token, login cookie or other valid authentication credential.",
                         [("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/"')])

    @staticmethod
    def form(body: bytes) -> dict:
        return {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}

    def oauth_token(self, h, body: bytes) -> Reply:
        f = self.form(body)
        grant = f.get("grant_type", "")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            self.verify_jwt(f.get("assertion", ""))
            return Reply(200, {"access_token": self.issue("oauth"), "expires_in": 3599, "token_type": "Bearer"})
        if grant == "refresh_token":
            if f.get("client_id") != CLIENT_ID or f.get("client_secret") != CLIENT_SECRET:
                raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
            if f.get("refresh_token") != REFRESH_TOKEN:
                raise OAuthError(400, "invalid_grant", "Bad Request")
            return Reply(200, {"access_token": self.issue("user"), "expires_in": 3599, "token_type": "Bearer",
                               "scope": "https://www.googleapis.com/auth/cloud-platform"})
        raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")

    def verify_jwt(self, jwt: str) -> None:
        parts = jwt.split(".")
        if len(parts) != 3:
            raise OAuthError(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token and in a "
                             "reasonable timeframe")
        try:
            header, claims, sig = json.loads(b64url_decode(parts[0])), json.loads(b64url_decode(parts[1])), \
                b64url_decode(parts[2])
        except (ValueError, json.JSONDecodeError):
            raise OAuthError(400, "invalid_grant", "Invalid JWT: not base64url JSON")
        if header.get("alg") != "RS256":
            raise OAuthError(400, "invalid_grant", "Invalid JWT: alg must be RS256")
        if header.get("kid") and header["kid"] != self.sa.get("private_key_id"):
            raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.")
        n = self.modulus
        k = (n.bit_length() + 7) // 8
        if len(sig) != k:
            raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.")
        em = pow(int.from_bytes(sig, "big"), 65537, n).to_bytes(k, "big")
        digest = hashlib.sha256((parts[0] + "." + parts[1]).encode()).digest()
        t = SHA256_PREFIX + digest
        want = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
        if em != want:
            raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.")
        now = time.time()
        if claims.get("iss") != self.sa["client_email"]:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        if claims.get("aud") != self.base_url + "/token":
            raise OAuthError(400, "invalid_grant", "Invalid JWT: Failed audience check.")
        if "https://www.googleapis.com/auth/cloud-platform" not in str(claims.get("scope", "")).split():
            raise OAuthError(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if not isinstance(iat, int) or not isinstance(exp, int) or iat > now + 60 or exp < now or exp - iat > 3600:
            raise OAuthError(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and "
                             "in a reasonable timeframe. Check your iat and exp values in the JWT claim.")

    def sts_token(self, h, body: bytes) -> Reply:
        f = self.form(body)
        if f.get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange":
            raise OAuthError(400, "unsupported_grant_type", "Unsupported grant_type.")
        if f.get("audience") != STS_AUDIENCE:
            raise OAuthError(400, "invalid_target", "The target service indicated by the \"audience\" parameters "
                             "is invalid.")
        if f.get("requested_token_type") != "urn:ietf:params:oauth:token-type:access_token" or not f.get("scope"):
            raise OAuthError(400, "invalid_request", "requested_token_type and scope are required")
        if f.get("subject_token_type") != "urn:ietf:params:oauth:token-type:jwt" or f.get("subject_token") != SUBJECT_TOKEN:
            raise OAuthError(400, "invalid_grant", "The access token is invalid.")
        return Reply(200, {"access_token": self.issue("sts"), "issued_token_type":
                           "urn:ietf:params:oauth:token-type:access_token", "token_type": "Bearer",
                           "expires_in": 3599})

    def generate_access_token(self, email: str, body: bytes) -> Reply:
        doc = json.loads(body or b"{}")
        if email != self.sa["client_email"]:
            raise GError(403, "forbidden", "Permission 'iam.serviceAccounts.getAccessToken' denied on resource "
                         "(or it may not exist).")
        if "https://www.googleapis.com/auth/cloud-platform" not in doc.get("scope", []):
            raise GError(400, "badRequest", "Scope required.")
        return Reply(200, {"accessToken": self.issue("impersonated"), "expireTime": rfc3339(time.time() + 3599)})

    def metadata(self, h, method: str, path: str) -> Reply:
        if h.headers.get("Metadata-Flavor") != "Google":
            return Reply(403, b"Missing required header: Metadata-Flavor\n")
        if path == "/computeMetadata/v1/instance/service-accounts/default/token":
            return Reply(200, {"access_token": self.issue("metadata"), "expires_in": 3599, "token_type": "Bearer"},
                         [("Metadata-Flavor", "Google")])
        if path == "/computeMetadata/v1/project/project-id":
            return Reply(200, METADATA_PROJECT.encode(), [("Metadata-Flavor", "Google")])
        return Reply(404, b"Not Found\n")

    # --- Cloud Storage -------------------------------------------------------

    def object_resource(self, o: dict) -> dict:
        return {"kind": "storage#object", "id": f"{o['bucket']}/{o['name']}/{o['generation']}",
                "selfLink": f"{self.base_url}/storage/v1/b/{o['bucket']}/o/{quote(o['name'], safe='')}",
                "name": o["name"], "bucket": o["bucket"], "generation": str(o["generation"]), "metageneration": "1",
                "contentType": o["contentType"], "size": str(len(o["data"])), "md5Hash": o["md5Hash"],
                "crc32c": o["crc32c"], "metadata": o["metadata"], "timeCreated": o["timeCreated"],
                "updated": o["timeCreated"], "storageClass": "STANDARD"}

    def object(self, method: str, bucket: str, name: str, q: dict) -> Reply:
        with self.lock:
            if bucket not in self.buckets:
                raise GError(404, "notFound", "The specified bucket does not exist.")
            o = self.objects.get((bucket, name))
            if not o:
                raise GError(404, "notFound", f"No such object: {bucket}/{name}")
            if method == "GET":
                return Reply(200, bytes(o["data"]) if q.get("alt") == "media" else self.object_resource(o))
            if method == "DELETE":
                del self.objects[(bucket, name)]
                return Reply(204)
        raise GError(405, "methodNotAllowed", "Method not allowed")

    def upload(self, h, method: str, bucket: str, q: dict, body: bytes) -> Reply:
        if "upload_id" in q:
            return self.session_request(h, method, q["upload_id"], body)
        if method != "POST" or q.get("uploadType") != "resumable":
            raise GError(400, "invalid", "Only uploadType=resumable is supported by this fake")
        meta = json.loads(body or b"{}")
        name = q.get("name") or meta.get("name")
        if not name:
            raise GError(400, "required", "Required parameter: name")
        with self.lock:
            if bucket not in self.buckets:
                raise GError(404, "notFound", "The specified bucket does not exist.")
            igm = q.get("ifGenerationMatch")
            existing = self.objects.get((bucket, name))
            if igm is not None and str(existing["generation"] if existing else 0) != igm:
                raise GError(412, "conditionNotMet", "At least one of the pre-conditions you specified did not hold.")
            total = h.headers.get("X-Upload-Content-Length")
            sid = "ADPycd" + secrets.token_urlsafe(30)
            self.sessions[sid] = {"bucket": bucket, "name": name, "meta": meta, "ifGenerationMatch": igm,
                                  "total": int(total) if total else None, "data": bytearray(), "state": "open",
                                  "object": None}
        loc = (f"{self.base_url}/upload/storage/v1/b/{bucket}/o?uploadType=resumable&name={quote(name, safe='')}"
               f"&upload_id={sid}")
        return Reply(200, b"", [("Location", loc)])

    def session_request(self, h, method: str, sid: str, body: bytes) -> Reply:
        with self.lock:
            s = self.sessions.get(sid)
        if not s:
            raise GError(404, "notFound", "No such upload session")
        if method == "DELETE":
            with self.lock:
                s["state"] = "cancelled"
            return Reply(499, b"")
        if method != "PUT":
            raise GError(405, "methodNotAllowed", "Method not allowed")
        if s["state"] == "cancelled":
            raise GError(410, "gone", "The upload session was cancelled")
        cr = h.headers.get("Content-Range", "")
        m = re.match(r"^bytes (\*|(\d+)-(\d+))/(\*|\d+)$", cr)
        if not m:
            raise GError(400, "invalid", f"Invalid Content-Range: {cr!r}")
        total = None if m.group(4) == "*" else int(m.group(4))
        with self.lock:
            if s["state"] == "done":
                return Reply(200, self.object_resource(s["object"]))
            if total is not None:
                if s["total"] is not None and s["total"] != total:
                    raise GError(400, "invalid", "The total size differs from the one of the session")
                s["total"] = total
            if m.group(1) != "*":
                start, end = int(m.group(2)), int(m.group(3))
                if end - start + 1 != len(body):
                    raise GError(400, "invalid", "Content-Range does not match the body length")
                have = len(s["data"])
                if start > have:
                    raise GError(400, "invalid", f"Invalid request. According to the Content-Range header, the "
                                 f"upload offset is {start} byte(s), which exceeds already uploaded size of {have} "
                                 f"byte(s).")
                self.upload_bytes[f"{s['bucket']}/{s['name']}"] += len(body)
                new = body[have - start:]
                final = total is not None and end + 1 == total
                if not final:  # GCS persists whole 256 KiB units of a non-final chunk
                    keep = (have + len(new)) // CHUNK_QUANTUM * CHUNK_QUANTUM - have
                    new = new[:max(keep, 0)]
                s["data"] += new
        if self.chunk_delay:
            time.sleep(self.chunk_delay)
        with self.lock:
            if s["total"] is not None and len(s["data"]) == s["total"]:
                return self.finish(s)
            n = len(s["data"])
        return Reply(308, b"", [("Range", f"bytes=0-{n - 1}")] if n else [])

    def finish(self, s: dict) -> Reply:
        data = bytes(s["data"])
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        crc = base64.b64encode(crc32c(data).to_bytes(4, "big")).decode()
        meta = s["meta"]
        if meta.get("md5Hash") and meta["md5Hash"] != md5:
            raise GError(400, "invalid", f"Provided MD5 hash \"{meta['md5Hash']}\" doesn't match calculated MD5 "
                         f"hash \"{md5}\".")
        if meta.get("crc32c") and meta["crc32c"] != crc:
            raise GError(400, "invalid", f"Provided CRC32C \"{meta['crc32c']}\" doesn't match calculated CRC32C "
                         f"\"{crc}\".")
        key = (s["bucket"], s["name"])
        existing = self.objects.get(key)
        igm = s["ifGenerationMatch"]
        if igm is not None and str(existing["generation"] if existing else 0) != igm:
            raise GError(412, "conditionNotMet", "At least one of the pre-conditions you specified did not hold.")
        o = {"bucket": s["bucket"], "name": s["name"], "data": data, "md5Hash": md5, "crc32c": crc,
             "generation": time.time_ns() // 1000, "contentType": meta.get("contentType", "application/octet-stream"),
             "metadata": meta.get("metadata", {}), "timeCreated": rfc3339(time.time())}
        self.objects[key] = o
        s["state"], s["object"], s["data"] = "done", o, bytearray()
        return Reply(200, self.object_resource(o))

    # --- Compute ---------------------------------------------------------------

    def new_operation(self, project: str, op_type: str, target: str, finish, request_id: str | None) -> dict:
        name = f"operation-{int(time.time() * 1000)}-{secrets.token_hex(6)}"
        now = time.time()
        op = {"kind": "compute#operation", "id": str(random.getrandbits(63)), "name": name,
              "operationType": op_type, "targetLink": f"{self.base_url}/compute/v1/projects/{project}/global/{target}",
              "status": "RUNNING", "progress": 0, "insertTime": rfc3339(now), "startTime": rfc3339(now),
              "selfLink": f"{self.base_url}/compute/v1/projects/{project}/global/operations/{name}",
              "user": self.sa["client_email"], "_done_at": now + self.op_seconds, "_finish": finish}
        self.operations[(project, name)] = op
        if request_id:
            self.request_ids[request_id] = name
        return op

    def advance(self) -> None:
        """Completes operations whose time has come (called under the lock on every Compute call)."""
        now = time.time()
        for op in self.operations.values():
            if op["status"] != "DONE" and now >= op["_done_at"]:
                err = op["_finish"]()
                op["status"], op["progress"], op["endTime"] = "DONE", 100, rfc3339(now)
                if err:
                    # (code, message[, HTTP status, errorDetails])
                    e = {"code": err[0], "message": err[1]}
                    if len(err) > 3:
                        e["errorDetails"] = err[3]
                    status = err[2] if len(err) > 2 else 400
                    op["error"] = {"errors": [e]}
                    op["httpErrorStatusCode"] = status
                    op["httpErrorMessage"] = {400: "BAD REQUEST", 403: "FORBIDDEN"}.get(status, "ERROR")

    @staticmethod
    def render_op(op: dict) -> dict:
        return {k: v for k, v in op.items() if not k.startswith("_")}

    def compute(self, method: str, project: str, rest: str, q: dict, body: bytes) -> Reply:
        with self.lock:
            self.advance()
            if rest == "images" and method == "POST":
                return self.insert_image(project, json.loads(body or b"{}"), q.get("requestId"))
            m = re.match(r"^operations/([^/]+)$", rest)
            if m and method == "GET":
                op = self.operations.get((project, m.group(1)))
                if not op:
                    raise GError(404, "notFound", f"The resource 'projects/{project}/global/operations/"
                                 f"{m.group(1)}' was not found")
                return Reply(200, self.render_op(op))
            m = re.match(r"^images/([^/]+?)(/getIamPolicy|/setIamPolicy|/deprecate)?$", rest)
            if not m:
                raise GError(404, "notFound", f"Not Found: {rest}")
            name, action = m.group(1), m.group(2)
            img = self.images.get((project, name))
            if not img:
                raise GError(404, "notFound", f"The resource 'projects/{project}/global/images/{name}' was not found")
            if action is None and method == "GET":
                return Reply(200, img)
            if action is None and method == "DELETE":
                if img["status"] == "PENDING":
                    raise GError(400, "resourceNotReady", f"The resource 'projects/{project}/global/images/{name}' "
                                 "is not ready")
                if q.get("requestId") in self.request_ids:
                    return Reply(200, self.render_op(self.operations[(project, self.request_ids[q["requestId"]])]))

                def gone():
                    self.images.pop((project, name), None)
                    self.policies.pop((project, name), None)
                op = self.new_operation(project, "delete", f"images/{name}", gone, q.get("requestId"))
                return Reply(200, self.render_op(op))
            if action == "/deprecate" and method == "POST":
                doc = json.loads(body or b"{}")
                if doc.get("state", "ACTIVE") not in ("ACTIVE", "DEPRECATED", "OBSOLETE", "DELETED"):
                    raise GError(400, "invalid", f"Invalid value for field 'resource.state': '{doc.get('state')}'.")

                def apply():
                    if doc.get("state", "ACTIVE") == "ACTIVE" and len(doc) == 1:
                        img.pop("deprecated", None)
                    else:
                        img["deprecated"] = {k: v for k, v in doc.items()
                                             if k in ("state", "deprecated", "obsolete", "deleted", "replacement")}
                op = self.new_operation(project, "setDeprecation", f"images/{name}", apply, q.get("requestId"))
                return Reply(200, self.render_op(op))
            pol = self.policies.setdefault((project, name), {"version": 1, "etag": "ACAB", "bindings": []})
            if action == "/getIamPolicy" and method == "GET":
                out = {"version": pol["version"], "etag": pol["etag"]}
                if pol["bindings"]:
                    out["bindings"] = pol["bindings"]
                return Reply(200, out)
            if action == "/setIamPolicy" and method == "POST":
                new = json.loads(body or b"{}").get("policy", {})
                if new.get("etag") and new["etag"] != pol["etag"]:
                    raise GError(412, "conditionNotMet", "Precondition Failed: the policy's etag does not match")
                for b in new.get("bindings", []):
                    for mem in b.get("members", []):
                        if mem == "allUsers":
                            raise GError(400, "invalid", "Invalid value for field 'policy.bindings.members': "
                                         "'allUsers'. allUsers is not allowed on images.")
                        if mem != "allAuthenticatedUsers" and not re.match(
                                r"^(user|group|serviceAccount|domain|principal|principalSet):.+", mem):
                            raise GError(400, "invalid", f"Invalid value for field 'policy.bindings.members': "
                                         f"'{mem}'.")
                pol["bindings"] = new.get("bindings", [])
                pol["version"] = new.get("version", 1)
                pol["etag"] = base64.b64encode(secrets.token_bytes(6)).decode()
                out = {"version": pol["version"], "etag": pol["etag"]}
                if pol["bindings"]:
                    out["bindings"] = pol["bindings"]
                return Reply(200, out)
            raise GError(405, "methodNotAllowed", f"{method} not allowed on {rest}")

    def insert_image(self, project: str, doc: dict, request_id: str | None) -> Reply:
        if request_id and request_id in self.request_ids:
            return Reply(200, self.render_op(self.operations[(project, self.request_ids[request_id])]))
        name = doc.get("name", "")
        if not NAME_RE.match(name) or len(name) > 63:
            raise GError(400, "invalid", f"Invalid value for field 'resource.name': '{name}'. Must be a match of "
                         "regex '[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?'")
        if (project, name) in self.images:
            raise GError(409, "alreadyExists", f"The resource 'projects/{project}/global/images/{name}' already "
                         "exists")
        if doc.get("architecture", "X86_64") not in ("X86_64", "ARM64"):
            raise GError(400, "invalid", f"Invalid value for field 'resource.architecture': "
                         f"'{doc.get('architecture')}'.")
        for f in doc.get("guestOsFeatures", []):
            if f.get("type") not in FEATURES:
                raise GError(400, "invalid", f"Invalid value for field 'resource.guestOsFeatures[].type': "
                             f"'{f.get('type')}'.")
        src = doc.get("rawDisk", {}).get("source", "")
        m = re.match(r"^https://(?:storage\.googleapis\.com|storage\.cloud\.google\.com)/([^/]+)/(.+)$", src)
        if not m:
            raise GError(400, "invalid", f"Invalid value for field 'resource.rawDisk.source': '{src}'.")
        bucket, obj = m.group(1), unquote(m.group(2))
        quota = self.quotas.get(project)
        if quota is not None and sum(p == project for p, _ in self.images) >= quota["images"]:
            # Google's words for a resource quota; whether images.insert refuses at once (403
            # quotaExceeded) or accepts and fails its operation (QUOTA_EXCEEDED) is not
            # documented for images, so the test chooses.
            limit = float(quota["images"])
            message = f"Quota 'IMAGES' exceeded.  Limit: {limit} globally."
            if quota["where"] == "request":
                raise GError(403, "quotaExceeded", message, domain="usageLimits")
            details = [{"quotaInfo": {"metricName": "compute.googleapis.com/images", "limitName": "IMAGES-per-project",
                                      "limit": limit}}]
            op = self.new_operation(project, "insert", f"images/{name}",
                                    lambda: ("QUOTA_EXCEEDED", message, 403, details), request_id)
            return Reply(200, self.render_op(op))
        now = time.time()
        img = {"kind": "compute#image", "id": str(random.getrandbits(63)), "creationTimestamp": rfc3339(now),
               "name": name, "status": "PENDING", "sourceType": "RAW", "rawDisk": {"source": src, "containerType": "TAR"},
               "architecture": doc.get("architecture", "X86_64"), "guestOsFeatures": doc.get("guestOsFeatures", []),
               "selfLink": f"{self.base_url}/compute/v1/projects/{project}/global/images/{name}",
               "labelFingerprint": "42WmSpB8rSM=", "storageLocations": doc.get("storageLocations", ["eu"])}
        for k in ("family", "description", "labels", "licenses", "shieldedInstanceInitialState"):
            if k in doc:
                img[k] = doc[k]
        self.images[(project, name)] = img

        def finish():
            o = self.objects.get((bucket, obj))
            err = None
            if not o:
                err = ("RESOURCE_NOT_FOUND", f"The resource '{src}' was not found")
            else:
                try:
                    with tarfile.open(fileobj=io.BytesIO(o["data"]), mode="r:gz") as t:
                        first = t.next()
                        if first is None or first.name != "disk.raw":
                            err = ("INVALID_IMAGE_FILE", "The image archive must hold disk.raw as its first member")
                        else:
                            img["diskSizeGb"] = str(max(1, (first.size + (1 << 30) - 1) >> 30))
                except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile):
                    err = ("INVALID_IMAGE_FILE", "The image file is not a gzip-compressed tar archive")
            if err:
                self.images.pop((project, name), None)
                return err
            img["status"] = "READY"
            img["archiveSizeBytes"] = str(len(o["data"]))
            return None
        op = self.new_operation(project, "insert", f"images/{name}", finish, request_id)
        return Reply(200, self.render_op(op))

    # --- control -----------------------------------------------------------------

    def control(self, method: str, path: str, query: str, body: bytes) -> Reply:
        if path in ("/_fake/health", "/_fake/reset", "/_fake/faults"):
            try:
                return super().control(method, path, query, body)
            except (ValueError, re.error) as e:  # a bad rule or its JSON
                return Reply(400, {"error": str(e)})
        q = {k: v[0] for k, v in parse_qs(query).items()}
        with self.lock:
            if path == "/_fake/state":
                self.advance()
                return Reply(200, {
                    "objects": {f"{b}/{n}": self.object_resource(o) for (b, n), o in self.objects.items()},
                    "sessions": {sid[:8]: {"object": f"{s['bucket']}/{s['name']}", "state": s["state"],
                                           "persisted": len(s["data"]) if s["state"] == "open" else s["total"],
                                           "total": s["total"]} for sid, s in self.sessions.items()},
                    "images": {f"{p}/{n}": i for (p, n), i in self.images.items()},
                    "policies": {f"{p}/{n}": v for (p, n), v in self.policies.items()},
                    "operations": {f"{p}/{n}": self.render_op(o) for (p, n), o in self.operations.items()},
                    "tokens": len(self.tokens)})
            if path == "/_fake/stats":
                return Reply(200, {"requests": dict(self.requests), "faults": dict(self.faults),
                                   "statuses": dict(self.statuses), "upload_bytes": dict(self.upload_bytes)})
            if path == "/_fake/buckets" and method == "POST":
                self.buckets.add(json.loads(body)["name"])
                return Reply(200, {})
            if path == "/_fake/object":
                o = self.objects.get((q.get("bucket", ""), q.get("name", "")))
                return Reply(200, bytes(o["data"])) if o else Reply(404, {"error": "no such object"})
            if path == "/_fake/quota" and method == "POST":
                doc = json.loads(body or b"{}")
                if doc.get("images") is None:
                    self.quotas.pop(doc["project"], None)
                else:
                    if doc.get("where", "request") not in ("request", "operation"):
                        return Reply(400, {"error": "where: request or operation"})
                    self.quotas[doc["project"]] = {"images": int(doc["images"]), "where": doc.get("where", "request")}
                return Reply(200, {"quotas": self.quotas})
            if path == "/_fake/config" and method == "POST":
                doc = json.loads(body or b"{}")
                self.op_seconds = float(doc.get("op_seconds", self.op_seconds))
                self.chunk_delay = float(doc.get("chunk_delay", self.chunk_delay))
                return Reply(200, {"op_seconds": self.op_seconds, "chunk_delay": self.chunk_delay})
        return Reply(404, {"error": f"unknown control path {path}"})


class Handler(FakeHandler):
    server_version = "fake-gcp"
    json_type = "application/json; charset=UTF-8"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=48020)
    ap.add_argument("--state-dir", default="")
    ap.add_argument("--service-account", required=True, help="the test service account's JSON")
    ap.add_argument("--modulus-file", required=True, help="`openssl rsa -noout -modulus` of its key")
    ap.add_argument("--bucket", action="append", help="a bucket that exists from the start")
    ap.add_argument("--op-seconds", type=float, default=0.3)
    args = ap.parse_args()
    server = listen(args.host, args.port, Handler, app=FakeGcp(args))
    serve([server], f"fake GCP listening on http://{args.host}:{args.port}")


if __name__ == "__main__":
    sys.exit(main())
