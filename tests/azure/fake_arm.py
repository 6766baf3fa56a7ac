#!/usr/bin/env python3
"""Fake Azure Resource Manager + Entra ID token endpoint, for cloud_helper's tests.

    python3 tests/azure/fake_arm.py --port 48200 --state-dir DIR \\
        --blob-endpoint http://127.0.0.1:48210/devstoreaccount1 --account-key KEY \\
        [--tenant T --client-id C --client-secret S] [--lro-seconds 0.3]

One loopback HTTP server answers both login.microsoftonline.com and
management.azure.com requests. Everything lives in memory; --state-dir gets
requests.log (one line per request) and state.json (written on every change).

Entra ID (v2.0 client-credentials flow)
  POST /{tenant}/oauth2/v2.0/token   form: grant_type=client_credentials, client_id, scope
        (must end in /.default) and either client_secret, or client_assertion_type=
        urn:ietf:params:oauth:client-assertion-type:jwt-bearer + client_assertion:
        - certificate credential: RS256/PS256 JWT signed by a certificate registered with
          POST /_fake/certificates {"client_id", "pem"}; x5t / x5t#S256 pick the certificate;
          checked: signature, aud (this server's token URL or login.microsoftonline.com's),
          iss == sub == client_id, exp in the future, nbf not in the future.
        - federated credential: a JWT whose iss is registered with POST /_fake/federated
          {"client_id", "issuer", "subject"[, "audiences"]}: iss, sub, aud (default
          api://AzureADTokenExchange) and exp are checked, the signature is not.
        Answers {"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token"}
        or Entra's error body {"error","error_description":"AADSTSnnnn: ...","error_codes",...}
        (400 for request errors, 401 invalid_client for a bad secret/assertion).
  GET  /{tenant}/v2.0/.well-known/openid-configuration
Every ARM request needs "Authorization: Bearer <token issued for https://management.azure.com/
.default or https://management.core.windows.net//.default>"; otherwise 401 with WWW-Authenticate
and AuthenticationFailed / InvalidAuthenticationToken / InvalidAuthenticationTokenAudience /
ExpiredAuthenticationToken.

ARM (paths case-insensitive in their fixed segments and in resource names, as ARM is; any
GUID-shaped subscription id; api-version required: 400 MissingApiVersionParameter, a malformed
one InvalidApiVersionParameter, one older than the provider supports here NoRegisteredProviderFound;
errors {"error":{"code","message"[,"target"]}}; every answer carries x-ms-request-id and
x-ms-correlation-request-id (the client's, if sent) and echoes x-ms-client-request-id):
  GET    /subscriptions/{s}/locations                    12 physical regions + 2 logical ones
  PUT/GET/DELETE  /subscriptions/{s}/resourcegroups/{rg}     PUT 201/200; location change 409
        InvalidResourceGroupLocation; DELETE 202 + Location (operationresults), removes the
        group's resources when done.
  PUT/GET/DELETE  .../providers/Microsoft.Storage/storageAccounts/{name}   PUT 202 + Location +
        Retry-After: 1; the poll answers 202 at least once, then 200 with the account. Name
        3-24 lowercase alnum (400 AccountNameInvalid), unique across resource groups (409
        StorageAccountAlreadyTaken). primaryEndpoints.blob = --blob-endpoint + "/" for
        devstoreaccount1, else https://{name}.blob.core.windows.net/.
  PUT/GET/PATCH/DELETE .../providers/Microsoft.Compute/galleries/{g}; GET .../galleries (list)
  POST   .../galleries/{g}/share   {"operationType": Add|Remove|Reset|EnableCommunity, "groups"}
  PUT/GET/PATCH/DELETE .../galleries/{g}/images/{def};           GET .../images (list)
  PUT/GET/PATCH/DELETE .../galleries/{g}/images/{def}/versions/{v}; GET .../versions (list)
  PUT/GET/DELETE  .../providers/Microsoft.Compute/images/{name}  (managed images)
  GET    /subscriptions/{s}/providers/Microsoft.Compute/locations/{loc}/communityGalleries/
         {publicName}/images/{def}/versions/{v}
  GET    .../locations/{loc}/capsOperations/{id} and .../operations/{id}   (Azure-AsyncOperation;
         with ?monitor=true the Location semantics: 202 until done, then the result)
Compute writes are long-running as in Azure: PUT/PATCH answer 201 (new) / 200 (update) with
provisioningState Creating/Updating and Azure-AsyncOperation; DELETE answers 202 with
Azure-AsyncOperation + Location (+Retry-After) and the resource shows Deleting until removed;
share answers 202 the same way and takes effect when its operation finishes. Completion is
time-based (lro_seconds after the request, default 0.3 s), so a client that dies mid-way finds
the resource finished or still in progress when it comes back. Lists page 2 items at a time
(nextLink with $skiptoken).

Validation that is faithful to Azure's behaviour (codes/messages as documented or as seen in
public error reports): nested delete while children exist (409 CannotDeleteResource, with IDs);
parent missing (404 ParentResourceNotFound); resource group missing (404 ResourceGroupNotFound);
changing immutable properties (409 PropertyChangeNotAllowed "Changing property '...' is not
allowed."): definition identifier/osType/osState/hyperVGeneration/architecture, version
storageProfile, managed image osDisk; location change of an existing resource (409
InvalidResourceLocation); version name Major.Minor.Patch int32 (400 InvalidParameter); version and
definition location = gallery location; targetRegions must contain the version's location;
Arm64 requires V2, TrustedLaunch/Confidential SecurityType requires V2; VHD source checks done
with a SharedKey-signed HEAD + footer read on the emulator (page blob, size-512 a whole number of
MiB, "conectix" cookie, fixed disk type); managed-image source must exist (404), be in the
version's region and match the definition's hyperVGeneration.
Simplified / guessed (not verified against Azure): the identifier-uniqueness conflict (409
"Conflict", message names the other definition); 409 OperationNotAllowed for a *changing* write
while another operation runs (an identical re-PUT is answered 200, idempotently); enum/required
errors use InvalidParameter; blobs are only readable on --blob-endpoint (other accounts' URIs are
rejected); no RBAC, no If-Match, no real replication, no ARM-level throttling except injected.
replicationStatus is returned only with $expand=ReplicationStatus (as Azure does); targetRegions
names come back as display names ("East US"), as Azure returns them.

Test control (not Azure):
  GET  /_fake/health
  POST /_fake/config   {"lro_seconds": 0.3, "page_size": 2, "token_seconds": 3599,
                        "lro_fail": [{"match": regex on "METHOD resource-id", "code", "message",
                                      "times": n}]}   (a matching write's operation ends Failed)
  POST/DELETE /_fake/faults?rule=NAME  {"match": regex searched in "METHOD /path",
        "throttle"|"status500"|"status503"|"drop"|"drop_after": share, "seed", "sequence",
        "max_faults"} - tests/aws/fault_proxy.py semantics: first rule (in creation order)
        whose match fits decides; throttle = 429 TooManyRequests + Retry-After: 1 +
        x-ms-ratelimit-remaining-subscription-*: 0; drop = close unanswered, not applied;
        drop_after = applied, then closed unanswered.  GET /_fake/faults lists rules.
  POST /_fake/certificates {"client_id","pem"};  POST /_fake/federated {"client_id","issuer",
        "subject"[,"audiences"]}
  GET  /_fake/state    every resource (rendered as GET would), operations, token count
  GET  /_fake/stats    {"requests": {"PUT galleryImageVersion": n}, "faults": {...},
                        "faults_by_rule", "statuses"};  POST /_fake/reset zeroes them
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import math
import os
import re
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate
from urllib.parse import parse_qsl, unquote, urlsplit

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fake_common import FakeApp, FakeHandler, Reply, listen, serve  # noqa: E402

DEFAULT_TENANT = "00000000-0000-0000-0000-0000000000aa"
DEFAULT_CLIENT_ID = "00000000-0000-0000-0000-0000000000cc"
DEFAULT_SECRET = "fake-arm-client-secret"
AZURITE_ACCOUNT = "devstoreaccount1"
BLOB_API_VERSION = "2021-08-06"
ARM_AUDIENCES = ("https://management.azure.com", "https://management.core.windows.net")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"
INT32_MAX = 2147483647
MIB = 1024 * 1024

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview|-beta|-privatepreview)?$")
VERSION_NAME_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
GALLERY_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._]{0,78}[A-Za-z0-9])?$")
DEFINITION_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,78}[A-Za-z0-9])?$")
IMAGE_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,78}[A-Za-z0-9_])?$")
STORAGE_NAME_RE = re.compile(r"^[a-z0-9]{3,24}$")

# (name, displayName, regionalDisplayName, geographyGroup, paired)
PHYSICAL_REGIONS = [
    ("eastus", "East US", "(US) East US", "US", "westus"),
    ("eastus2", "East US 2", "(US) East US 2", "US", "centralus"),
    ("westus", "West US", "(US) West US", "US", "eastus"),
    ("westus2", "West US 2", "(US) West US 2", "US", "westcentralus"),
    ("centralus", "Central US", "(US) Central US", "US", "eastus2"),
    ("southcentralus", "South Central US", "(US) South Central US", "US", "northcentralus"),
    ("northeurope", "North Europe", "(Europe) North Europe", "Europe", "westeurope"),
    ("westeurope", "West Europe", "(Europe) West Europe", "Europe", "northeurope"),
    ("germanywestcentral", "Germany West Central", "(Europe) Germany West Central", "Europe",
     "germanynorth"),
    ("uksouth", "UK South", "(Europe) UK South", "Europe", "ukwest"),
    ("southeastasia", "Southeast Asia", "(Asia Pacific) Southeast Asia", "Asia Pacific", "eastasia"),
    ("japaneast", "Japan East", "(Asia Pacific) Japan East", "Asia Pacific", "japanwest"),
]
LOGICAL_REGIONS = [("unitedstates", "United States", "United States"), ("europe", "Europe", "Europe")]
REGION_DISPLAY = {r[0]: r[1] for r in PHYSICAL_REGIONS}

# Oldest api-version each provider/type is served with here (the features used need these).
MIN_API = {"resources": "2016-06-01", "storage": "2019-06-01", "gallery": "2022-03-03",
           "community": "2022-03-03", "image": "2021-03-01"}


def norm_loc(s) -> str:
    return str(s or "").replace(" ", "").lower()


def now_iso(t: float | None = None) -> str:
    dt = datetime.fromtimestamp(time.time() if t is None else t, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0+00:00"


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str, target: str | None = None,
                 headers: list | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.target = status, code, message, target
        self.headers = headers or []


class EntraError(Exception):
    def __init__(self, status: int, error: str, aadsts: int, text: str):
        super().__init__(text)
        self.status, self.error, self.aadsts, self.text = status, error, aadsts, text


def bad_param(message: str, target: str | None = None) -> ArmError:
    return ArmError(400, "InvalidParameter", message, target)


def change_not_allowed(prop: str) -> ArmError:
    return ArmError(409, "PropertyChangeNotAllowed", f"Changing property '{prop}' is not allowed.", prop)


# --- blob access (Shared Key) -------------------------------------------------

def shared_key_headers(method: str, url: str, account: str, key_b64: str, headers: dict | None = None,
                       content_length: int = 0) -> dict:
    """Headers for a Shared Key-signed blob request (Blob service, version 2015-02-21+ rules).

    Azurite's path-style URLs put the account first in the path; the canonicalized resource is
    "/" + account + the URL path, so for the emulator it names the account twice."""
    u = urlsplit(url)
    h = {k.lower(): v for k, v in (headers or {}).items()}
    h.setdefault("x-ms-date", formatdate(usegmt=True))
    h.setdefault("x-ms-version", BLOB_API_VERSION)
    canon_headers = "".join(f"{k}:{' '.join(str(h[k]).split())}\n" for k in sorted(h) if k.startswith("x-ms-"))
    q: dict[str, list] = {}
    for k, v in parse_qsl(u.query, keep_blank_values=True):
        q.setdefault(k.lower(), []).append(v)
    canon_res = f"/{account}{u.path or '/'}" + "".join(
        f"\n{k}:{','.join(sorted(q[k]))}" for k in sorted(q))
    std = [h.get(n, "") for n in ("content-encoding", "content-language")]
    length = str(content_length) if content_length else ""
    rest = [h.get(n, "") for n in ("content-md5", "content-type", "date", "if-modified-since", "if-match",
                                   "if-none-match", "if-unmodified-since", "range")]
    to_sign = "\n".join([method.upper(), *std, length, *rest]) + "\n" + canon_headers + canon_res
    sig = base64.b64encode(hmac.new(base64.b64decode(key_b64), to_sign.encode(), hashlib.sha256).digest())
    h["authorization"] = f"SharedKey {account}:{sig.decode()}"
    return h


def blob_request(method: str, url: str, account: str, key: str, headers: dict | None = None,
                 body: bytes = b"", timeout: float = 10.0) -> tuple[int, dict, bytes]:
    u = urlsplit(url)
    hdrs = shared_key_headers(method, url, account, key, headers, len(body))
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        target = u.path + ("?" + u.query if u.query else "")
        conn.request(method, target, body=body if body or method in ("PUT", "POST") else None, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


# --- state ----------------------------------------------------------------------

@dataclass
class Entry:
    kind: str              # resourceGroup storageAccount gallery galleryImage galleryImageVersion image
    id: str                # canonical casing
    name: str
    location: str
    spec: dict             # normalized user-settable properties
    tags: dict | None
    extra: dict = field(default_factory=dict)   # sku/kind (storage) and server-set values
    pending: str | None = None                  # Creating | Updating | Deleting
    done_at: float = 0.0
    failed: dict | None = None
    staged: dict | None = None                  # sharing change applied when the operation ends
    created: float = field(default_factory=time.time)


@dataclass
class Operation:
    id: str
    key: str               # resource key
    kind: str              # put | delete | share | storage | rgdelete
    start: float
    done_at: float
    error: dict | None = None
    result: object = None
    polls: int = 0


ROUTES = [
    ("locations", "subscriptions/*/locations"),
    ("resourceGroup", "subscriptions/*/resourcegroups/*"),
    ("rgOperation", "subscriptions/*/operationresults/*"),
    ("storageAccount", "subscriptions/*/resourcegroups/*/providers/microsoft.storage/storageaccounts/*"),
    ("storageOperation", "subscriptions/*/providers/microsoft.storage/locations/*/asyncoperations/*"),
    ("galleryList", "subscriptions/*/resourcegroups/*/providers/microsoft.compute/galleries"),
    ("gallery", "subscriptions/*/resourcegroups/*/providers/microsoft.compute/galleries/*"),
    ("galleryShare", "subscriptions/*/resourcegroups/*/providers/microsoft.compute/galleries/*/share"),
    ("galleryImageList", "subscriptions/*/resourcegroups/*/providers/microsoft.compute/galleries/*/images"),
    ("galleryImage", "subscriptions/*/resourcegroups/*/providers/microsoft.compute/galleries/*/images/*"),
    ("galleryImageVersionList",
     "subscriptions/*/resourcegroups/*/providers/microsoft.compute/galleries/*/images/*/versions"),
    ("galleryImageVersion",
     "subscriptions/*/resourcegroups/*/providers/microsoft.compute/galleries/*/images/*/versions/*"),
    ("image", "subscriptions/*/resourcegroups/*/providers/microsoft.compute/images/*"),
    ("computeOperation", "subscriptions/*/providers/microsoft.compute/locations/*/capsoperations/*"),
    ("computeOperation", "subscriptions/*/providers/microsoft.compute/locations/*/operations/*"),
    ("communityGalleryImageVersion",
     "subscriptions/*/providers/microsoft.compute/locations/*/communitygalleries/*/images/*/versions/*"),
]
ROUTE_PROVIDER = {"locations": "resources", "resourceGroup": "resources", "rgOperation": "resources",
                  "storageAccount": "storage", "storageOperation": "storage",
                  "communityGalleryImageVersion": "community", "image": "image"}
TYPE_NAMES = {"resourceGroup": "Microsoft.Resources/resourceGroups",
              "storageAccount": "Microsoft.Storage/storageAccounts",
              "gallery": "Microsoft.Compute/galleries", "galleryImage": "Microsoft.Compute/galleries/images",
              "galleryImageVersion": "Microsoft.Compute/galleries/images/versions",
              "image": "Microsoft.Compute/images"}


def route(path: str) -> tuple[str, list[str]]:
    segs = [unquote(s) for s in path.split("/") if s]
    low = [s.lower() for s in segs]
    for kind, pattern in ROUTES:
        pat = pattern.split("/")
        if len(pat) == len(segs) and all(p == "*" or p == s for p, s in zip(pat, low)):
            return kind, [s for p, s in zip(pat, segs) if p == "*"]
    if len(low) >= 3 and low[1:3] == ["oauth2", "v2.0"]:
        return "token", segs
    if len(low) == 4 and low[1:] == ["v2.0", ".well-known", "openid-configuration"]:
        return "openidConfiguration", segs
    return "unknown", segs


class FakeArm(FakeApp):
    def __init__(self, args):
        super().__init__()
        self.tenant = args.tenant
        self.clients = {args.client_id.lower(): args.client_secret}
        self.blob_endpoint = args.blob_endpoint.rstrip("/")
        self.account_key = args.account_key
        self.state_dir = args.state_dir
        self.config = {"lro_seconds": args.lro_seconds, "page_size": 2, "token_seconds": 3599, "lro_fail": []}
        self.res: dict[str, Entry] = {}
        self.ops: dict[str, Operation] = {}
        self.tokens: dict[str, dict] = {}
        self.certs: dict[str, list] = {}       # client id -> [(sha1, sha256, public key, pem)]
        self.federated: list[dict] = []
        if self.state_dir:
            os.makedirs(self.state_dir, exist_ok=True)

    # --- request entry (FakeApp hooks) -------------------------------------------

    def base_headers(self, h, path: str) -> list:
        h.request_id = rid = str(uuid.uuid4())
        base = [("x-ms-request-id", rid),
                ("x-ms-correlation-request-id", h.headers.get("x-ms-correlation-request-id") or rid)]
        if h.headers.get("x-ms-client-request-id"):
            base.append(("x-ms-client-request-id", h.headers["x-ms-client-request-id"]))
        return base

    def request_kind(self, method: str, path: str) -> str:
        return f"{method} {route(path)[0]}"

    def answer(self, h, method: str, path: str, query: str, body: bytes) -> Reply:
        kind, caps = route(path)
        try:
            return self.dispatch(h, method, path, query, body, kind, caps)
        except ArmError as e:
            err = {"code": e.code, "message": e.message}
            if e.target:
                err["target"] = e.target
            return Reply(e.status, {"error": err}, e.headers)
        except EntraError as e:
            return self.entra_error(e, h.request_id)

    def bug_reply(self, e: Exception) -> Reply:
        return Reply(500, {"error": {"code": "FakeArmBug", "message": f"{type(e).__name__}: {e}"}},
                     [("x-ms-request-id", str(uuid.uuid4())), ("x-ms-correlation-request-id", str(uuid.uuid4()))])

    def log(self, method, path, query, status, kind) -> None:
        if not self.state_dir:
            return
        with self.lock, open(os.path.join(self.state_dir, "requests.log"), "a") as f:
            f.write(f"{now_iso()} {method} {path} {status} {kind}\n")

    def fault_reply(self, fault: str, path: str) -> Reply:
        if fault == "throttle":
            return Reply(429, {"error": {"code": "TooManyRequests", "message":
                         "The request is being throttled as the limit has been reached for operation type - "
                         "Write_ObservationWindow_00:01:00. For more information, see - "
                         "https://aka.ms/srpthrottlinglimits"}},
                         [("Retry-After", "1"), ("x-ms-ratelimit-remaining-subscription-writes", "0"),
                          ("x-ms-ratelimit-remaining-subscription-reads", "0")])
        if fault == "status503":
            return Reply(503, {"error": {"code": "ServiceUnavailable", "message":
                               "The server is currently unable to handle the request. Please retry."}},
                         [("Retry-After", "1")])
        caps = route(path)[1]
        sub = caps[0] if caps else ""
        return Reply(500, {"error": {"code": "InternalServerError", "message":
                     f"Encountered internal server error. Diagnostic information: timestamp '{now_iso()}', "
                     f"subscription id '{sub}', tracking id '{uuid.uuid4()}'."}})

    def entra_error(self, e: EntraError, rid: str) -> Reply:
        ts = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        desc = f"AADSTS{e.aadsts}: {e.text} Trace ID: {rid} Correlation ID: {rid} Timestamp: {ts}"
        return Reply(e.status, {"error": e.error, "error_description": desc, "error_codes": [e.aadsts],
                                "timestamp": ts, "trace_id": rid, "correlation_id": rid,
                                "error_uri": f"https://login.microsoftonline.com/error?code={e.aadsts}"})

    def dispatch(self, h, method, path, query, body, kind, caps) -> Reply:
        host = h.headers.get("Host") or f"{h.server.server_address[0]}:{h.server.server_address[1]}"
        self.base_url = f"http://{host}"
        if kind == "token":
            return self.token(method, caps, body)
        if kind == "openidConfiguration":
            t = caps[0]
            return Reply(200, {"token_endpoint": f"{self.base_url}/{t}/oauth2/v2.0/token",
                               "issuer": f"https://login.microsoftonline.com/{t}/v2.0",
                               "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                                         "private_key_jwt"]})
        self.authenticate(h.headers.get("Authorization"))
        if kind == "unknown":
            raise ArmError(404, "InvalidResourceType" if path.lower().startswith("/subscriptions/")
                           else "NotFound", f"The resource type could not be found for '{path}'.")
        q = dict(parse_qsl(query, keep_blank_values=True))
        self.check_api_version(q.get("api-version"), kind)
        sub = caps[0]
        if not GUID_RE.match(sub):
            raise ArmError(400, "InvalidSubscriptionId",
                           f"The provided subscription identifier '{sub}' is malformed or invalid.")
        doc = None
        if method in ("PUT", "PATCH", "POST") and body.strip():
            try:
                doc = json.loads(body)
            except ValueError as e:
                raise ArmError(400, "InvalidRequestContent",
                               f"The request content was invalid and could not be deserialized: '{e}'.")
            if not isinstance(doc, dict):
                raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
        handler = getattr(self, "r_" + kind)
        with self.lock:
            self.settle()
            reply = handler(method, caps, q, doc, path)
            if method != "GET":
                self.persist()
            return reply

    def check_api_version(self, v, kind) -> None:
        if not v:
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")
        if not API_VERSION_RE.match(v):
            raise ArmError(400, "InvalidApiVersionParameter",
                           f"The api-version '{v}' is invalid. The supported versions are '2023-07-03,"
                           f"2022-03-03,2021-04-01'.")
        provider = ROUTE_PROVIDER.get(kind, "gallery")
        if kind.endswith("Operation"):
            return
        if v[:10] < MIN_API[provider]:
            raise ArmError(400, "NoRegisteredProviderFound",
                           f"No registered resource provider found for API version '{v}' and this resource "
                           f"type. The fake supports api-version {MIN_API[provider]} or later.")

    # --- Entra ------------------------------------------------------------------

    def token(self, method, segs, body) -> Reply:
        tenant = segs[0]
        if method != "POST" or [s.lower() for s in segs[1:]] != ["oauth2", "v2.0", "token"]:
            raise EntraError(400, "invalid_request", 900561,
                             "The endpoint only accepts POST requests.")
        if tenant.lower() != self.tenant.lower():
            raise EntraError(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if form.get("grant_type") != "client_credentials":
            raise EntraError(400, "unsupported_grant_type", 70003,
                             f"The app requested an unsupported grant type '{form.get('grant_type', '')}'.")
        cid = form.get("client_id", "")
        if not cid:
            raise EntraError(400, "invalid_request", 900144,
                             "The request body must contain the following parameter: 'client_id'.")
        scope = form.get("scope", "")
        if not scope:
            raise EntraError(400, "invalid_request", 900144,
                             "The request body must contain the following parameter: 'scope'.")
        if len(scope.split()) != 1 or not scope.endswith("/.default"):
            raise EntraError(400, "invalid_scope", 1002012,
                             f"The provided value for scope {scope} is not valid. Client credential flows "
                             f"must have a scope value with /.default suffixed to the resource identifier "
                             f"(application ID URI).")
        with self.lock:
            known = cid.lower() in self.clients
        if not known:
            raise EntraError(400, "unauthorized_client", 700016,
                             f"Application with identifier '{cid}' was not found in the directory "
                             f"'{self.tenant}'.")
        if "client_assertion" in form:
            if form.get("client_assertion_type") != JWT_BEARER:
                raise EntraError(400, "invalid_request", 70002,
                                 "client_assertion_type must be " + JWT_BEARER + ".")
            self.verify_assertion(cid, tenant, form["client_assertion"])
        elif "client_secret" in form:
            with self.lock:
                ok = hmac.compare_digest(self.clients[cid.lower()].encode(), form["client_secret"].encode())
            if not ok:
                raise EntraError(401, "invalid_client", 7000215,
                                 "Invalid client secret provided. Ensure the secret being sent in the request "
                                 "is the client secret value, not the client secret ID, for a secret added to "
                                 f"app '{cid}'.")
        else:
            raise EntraError(401, "invalid_client", 7000218,
                             "The request body must contain the following parameter: 'client_assertion' "
                             "or 'client_secret'.")
        now = time.time()
        lifetime = int(self.config["token_seconds"])
        resource = scope[: -len("/.default")].rstrip("/")
        claims = {"aud": resource, "iss": f"https://sts.windows.net/{self.tenant}/", "iat": int(now),
                  "nbf": int(now), "exp": int(now) + lifetime, "appid": cid, "tid": self.tenant,
                  "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, cid)), "jti": str(uuid.uuid4())}
        access = ".".join([b64url(json.dumps({"typ": "JWT", "alg": "RS256", "kid": "fake-arm"}).encode()),
                           b64url(json.dumps(claims).encode()), b64url(secrets.token_bytes(64))])
        with self.lock:
            self.tokens[access] = {"client_id": cid, "scope": scope, "resource": resource, "exp": now + lifetime}
        return Reply(200, {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                           "access_token": access})

    def verify_assertion(self, cid: str, tenant: str, assertion: str) -> None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        try:
            h64, p64, s64 = assertion.split(".")
            header, claims, sig = json.loads(b64url_decode(h64)), json.loads(b64url_decode(p64)), b64url_decode(s64)
        except (ValueError, TypeError):
            raise EntraError(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
        now = time.time()
        iss, sub, aud = claims.get("iss"), claims.get("sub"), claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] < now - 300:
            raise EntraError(401, "invalid_client", 700024,
                             "Client assertion is not within its valid time range.")
        if isinstance(claims.get("nbf"), (int, float)) and claims["nbf"] > now + 300:
            raise EntraError(401, "invalid_client", 700024,
                             "Client assertion is not within its valid time range.")
        if iss is not None and str(iss).lower() == cid.lower():
            # Certificate credential.
            if str(sub).lower() != cid.lower():
                raise EntraError(401, "invalid_client", 700021,
                                 "Client assertion application identifier doesn't match 'client_id' parameter.")
            token_urls = {f"{self.base_url}/{tenant}/oauth2/v2.0/token".lower(),
                          f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token".lower(),
                          f"https://login.microsoftonline.com/{tenant}/v2.0".lower()}
            if not any(str(a).lower() in token_urls for a in auds):
                raise EntraError(401, "invalid_client", 700212,
                                 f"Client assertion audience claim '{aud}' does not match the token endpoint "
                                 f"'{self.base_url}/{tenant}/oauth2/v2.0/token'.")
            alg = header.get("alg")
            if alg not in ("RS256", "PS256"):
                raise EntraError(401, "invalid_client", 5002730, f"Client assertion algorithm '{alg}' is not "
                                 "supported; use RS256 or PS256.")
            with self.lock:
                certs = list(self.certs.get(cid.lower(), []))
            x5t, x5t256 = header.get("x5t"), header.get("x5t#S256")
            if x5t or x5t256:
                certs = [c for c in certs if (x5t and c[0] == x5t) or (x5t256 and c[1] == x5t256)]
            signing_input = f"{h64}.{p64}".encode()
            for _, _, key, _ in certs:
                pad = padding.PKCS1v15() if alg == "RS256" else padding.PSS(
                    mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
                try:
                    key.verify(sig, signing_input, pad, hashes.SHA256())
                    return
                except InvalidSignature:
                    continue
            thumb = b64url_decode(x5t).hex().upper() if x5t else (x5t256 or "none")
            raise EntraError(401, "invalid_client", 700027,
                             "Client assertion failed signature validation. [Reason - The key was not found., "
                             f"Thumbprint of key used by client: '{thumb}']")
        with self.lock:
            fed = [f for f in self.federated if f["client_id"].lower() == cid.lower() and f["issuer"] == iss]
        match = [f for f in fed if f["subject"] == sub and any(a in f["audiences"] for a in auds)]
        if not match:
            raise EntraError(400 if not fed else 401, "invalid_request" if not fed else "invalid_client", 70021,
                             "No matching federated identity record found for presented assertion. "
                             f"Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: "
                             f"'{','.join(map(str, auds))}'.")

    def authenticate(self, auth: str | None) -> None:
        www = f'Bearer authorization_uri="https://login.microsoftonline.com/{self.tenant}", error="invalid_token"'
        if not auth:
            raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.",
                           headers=[("WWW-Authenticate", www + ', error_description="The authentication failed '
                                     'because of missing \'Authorization\' header."')])
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise ArmError(401, "AuthenticationFailed",
                           "Authentication failed. The 'Authorization' header is provided in an invalid format.",
                           headers=[("WWW-Authenticate", www + ', error_description="The authentication failed '
                                     'because of invalid format of \'Authorization\' header."')])
        with self.lock:
            tok = self.tokens.get(auth[7:].strip())
        if tok is None:
            raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.",
                           headers=[("WWW-Authenticate", www + ', error_description="The access token is invalid."')])
        if tok["resource"].lower() not in ARM_AUDIENCES:
            raise ArmError(401, "InvalidAuthenticationTokenAudience",
                           f"The access token has been obtained for wrong audience or resource "
                           f"'{tok['resource']}'. It should exactly match with one of the allowed audiences "
                           f"'https://management.core.windows.net/','https://management.azure.com/'.",
                           headers=[("WWW-Authenticate", www + ', error_description="The access token has been '
                                     'obtained from wrong audience or resource."')])
        if tok["exp"] < time.time():
            raise ArmError(401, "ExpiredAuthenticationToken",
                           f"The access token expiry UTC time '{now_iso(tok['exp'])}' is earlier than current UTC "
                           f"time '{now_iso()}'.",
                           headers=[("WWW-Authenticate", www + ', error_description="The access token expiry '
                                     'UTC time is earlier than current UTC time."')])

    # --- LRO machinery -------------------------------------------------------

    def settle(self) -> None:
        """Finishes every operation whose time has come (called under the lock)."""
        now = time.time()
        for key, e in list(self.res.items()):
            if not e.pending or now < e.done_at or key not in self.res:
                continue
            if e.pending == "Deleting" and not e.failed:
                for k in [k for k in self.res if k == key or k.startswith(key + "/")]:
                    del self.res[k]
                continue
            if e.staged and not e.failed:
                e.spec["sharingProfile"] = e.staged
            e.pending, e.staged = None, None

    def lro_failure(self, method: str, rid: str) -> dict | None:
        for f in self.config.get("lro_fail", []):
            if f.get("times", 1) > 0 and re.search(f.get("match", ""), f"{method} {rid}"):
                f["times"] = f.get("times", 1) - 1
                return {"code": f.get("code", "InternalExecutionError"),
                        "message": f.get("message", "An internal execution error occurred. Please retry later.")}
        return None

    def start_op(self, e: Entry, kind: str, pending: str, method: str, key: str, result=None) -> Operation:
        now = time.time()
        e.pending, e.done_at = pending, now + float(self.config["lro_seconds"])
        e.failed = self.lro_failure(method, e.id)
        op = Operation(str(uuid.uuid4()), key, kind, now, e.done_at, e.failed, result)
        self.ops[op.id] = op
        return op

    def op_url(self, sub: str, e: Entry, op: Operation, api: str, monitor: bool = False) -> str:
        coll = "operations" if e.kind == "image" else "capsOperations"
        return (f"{self.base_url}/subscriptions/{sub}/providers/Microsoft.Compute/locations/{e.location}/"
                f"{coll}/{op.id}?" + ("monitor=true&" if monitor else "") + f"api-version={api}")

    def op_status(self, op: Operation) -> str:
        if time.time() < op.done_at:
            return "InProgress"
        return "Failed" if op.error else "Succeeded"

    def r_computeOperation(self, method, caps, q, doc, path) -> Reply:
        op = self.ops.get(caps[2])
        if method != "GET" or op is None:
            raise ArmError(404, "NotFound", f"The operation '{caps[2]}' was not found.")
        status = self.op_status(op)
        if q.get("monitor", "").lower() == "true":
            if status == "InProgress":
                return Reply(202, None, [("Location", f"{self.base_url}{path}?monitor=true&api-version="
                                          f"{q['api-version']}"), ("Retry-After", "1")])
            if status == "Failed":
                return Reply(400 if op.error["code"] != "InternalExecutionError" else 500, {"error": op.error})
            if op.kind == "delete":
                return Reply(200, None)
            if op.kind == "share":
                return Reply(200, op.result)
            e = self.res.get(op.key)
            return Reply(200, self.render(e, q) if e else None)
        out = {"startTime": now_iso(op.start), "status": status, "name": op.id}
        if status != "InProgress":
            out["endTime"] = now_iso(op.done_at)
        if status == "Failed":
            out["error"] = op.error
        return Reply(200, out)

    def lro_reply(self, status: int, sub: str, e: Entry, op: Operation, api: str, body, q) -> Reply:
        headers = [("Azure-AsyncOperation", self.op_url(sub, e, op, api))]
        if status == 202:
            headers += [("Location", self.op_url(sub, e, op, api, monitor=True)), ("Retry-After", "1")]
        return Reply(status, body, headers)

    # --- ids, lookups, rendering ---------------------------------------------------

    def need_rg(self, sub: str, rg: str) -> Entry:
        e = self.res.get(f"/subscriptions/{sub}/resourcegroups/{rg}".lower())
        if e is None or e.pending == "Deleting":
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        return e

    def need_parent(self, key: str, name: str) -> Entry:
        e = self.res.get(key.lower())
        if e is None or e.pending == "Deleting":
            raise ArmError(404, "ParentResourceNotFound", "Can not perform requested operation on nested "
                           f"resource. Parent resource '{name}' not found.")
        return e

    def not_found(self, type_name: str, name: str, rg: str) -> ArmError:
        return ArmError(404, "ResourceNotFound", f"The Resource '{type_name}/{name}' under resource group "
                        f"'{rg}' was not found. For more details please go to "
                        f"https://aka.ms/ARMResourceNotFoundFix")

    def provisioning(self, e: Entry) -> str:
        if e.pending and time.time() < e.done_at:
            return e.pending
        return "Failed" if e.failed else "Succeeded"

    def render(self, e: Entry, q: dict | None = None) -> dict:
        q = q or {}
        out: dict = {"id": e.id, "name": e.name, "type": TYPE_NAMES[e.kind], "location": e.location}
        if e.tags:
            out["tags"] = dict(e.tags)
        props = json.loads(json.dumps(e.spec))
        state = self.provisioning(e)
        if e.kind == "resourceGroup":
            out["properties"] = {"provisioningState": state}
            return out
        if e.kind == "storageAccount":
            out.update({"sku": e.extra["sku"], "kind": e.extra["kind"]})
            props.update({"provisioningState": state, "creationTime": now_iso(e.created),
                          "primaryLocation": e.location, "statusOfPrimary": "available",
                          "primaryEndpoints": self.storage_endpoints(e.name)})
        elif e.kind == "gallery":
            props["identifier"] = {"uniqueName": e.extra["uniqueName"]}
            props["provisioningState"] = state
            sp = props.get("sharingProfile")
            if sp and sp.get("permissions") == "Community":
                props["sharingStatus"] = {"aggregatedState": "InProgress" if e.staged else "Succeeded"}
        elif e.kind == "galleryImage":
            props["provisioningState"] = state
        elif e.kind == "galleryImageVersion":
            pp = props["publishingProfile"]
            pp["publishedDate"] = now_iso(e.created)
            for tr in pp["targetRegions"]:
                tr["name"] = REGION_DISPLAY.get(tr["name"], tr["name"])
            props["provisioningState"] = state
            if "replicationstatus" in q.get("$expand", "").lower():
                done = state != "Creating" and state != "Updating"
                props["replicationStatus"] = {
                    "aggregatedState": "Completed" if done else "InProgress",
                    "summary": [{"region": tr["name"], "state": "Completed" if done else "Replicating",
                                 "details": "", "progress": 100 if done else 0} for tr in pp["targetRegions"]]}
        elif e.kind == "image":
            props["provisioningState"] = state
        out["properties"] = props
        return out

    def storage_endpoints(self, name: str) -> dict:
        if name == AZURITE_ACCOUNT:
            return {"blob": self.blob_endpoint + "/"}
        return {s: f"https://{name}.{s}.core.windows.net/" for s in ("blob", "queue", "table", "file", "dfs")}

    def check_location(self, doc: dict, rtype: str) -> str:
        loc = norm_loc(doc.get("location"))
        if not loc:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        if loc not in REGION_DISPLAY:
            raise ArmError(400, "LocationNotAvailableForResourceType",
                           f"The provided location '{doc.get('location')}' is not available for resource type "
                           f"'{rtype}'. List of available regions for the resource type is "
                           f"'{','.join(REGION_DISPLAY)}'.")
        return loc

    def same_location(self, old: Entry, loc: str, rg: str) -> None:
        if old.location != loc:
            raise ArmError(409, "InvalidResourceLocation",
                           f"The resource '{old.name}' already exists in location '{old.location}' in resource "
                           f"group '{rg}'. A resource with the same name cannot be created in location '{loc}'. "
                           f"Please select a new resource name.")

    def busy(self, old: Entry) -> None:
        if old.pending == "Deleting":
            raise ArmError(409, "OperationNotAllowed", f"Operation on '{old.name}' is not allowed since the "
                           "resource is marked for deletion.")
        if old.pending:
            raise ArmError(409, "OperationNotAllowed", f"Operation on '{old.name}' is not allowed because "
                           f"another operation ({old.pending}) is in progress on the resource.")

    def tags(self, doc: dict) -> dict | None:
        t = doc.get("tags")
        if t is not None and (not isinstance(t, dict) or not all(isinstance(v, str) for v in t.values())):
            raise ArmError(400, "InvalidTag", "Tags must be an object of string values.")
        return t

    def page(self, items: list, q: dict, path: str) -> Reply:
        size = int(self.config["page_size"])
        start = int(q.get("$skiptoken", "0") or 0)
        out = {"value": items[start:start + size]}
        if start + size < len(items):
            out["nextLink"] = (f"{self.base_url}{path}?api-version={q['api-version']}&$skiptoken={start + size}")
        return Reply(200, out)

    def children(self, key: str, kind: str) -> list[Entry]:
        depth = key.count("/") + 2
        return sorted((e for k, e in self.res.items() if e.kind == kind and k.startswith(key + "/")
                       and k.count("/") == depth), key=lambda e: e.name.lower())

    # --- locations, resource groups --------------------------------------------------

    def r_locations(self, method, caps, q, doc, path) -> Reply:
        if method != "GET":
            raise ArmError(405, "MethodNotAllowed", f"The requested method '{method}' is not allowed.")
        sub = caps[0]
        value = [{"id": f"/subscriptions/{sub}/locations/{n}", "name": n, "type": "Region", "displayName": d,
                  "regionalDisplayName": rd,
                  "metadata": {"regionType": "Physical", "regionCategory": "Recommended", "geographyGroup": g,
                               "pairedRegion": [{"name": p, "id": f"/subscriptions/{sub}/locations/{p}"}]}}
                 for n, d, rd, g, p in PHYSICAL_REGIONS]
        value += [{"id": f"/subscriptions/{sub}/locations/{n}", "name": n, "type": "Region", "displayName": d,
                   "regionalDisplayName": rd, "metadata": {"regionType": "Logical", "regionCategory": "Other"}}
                  for n, d, rd in LOGICAL_REGIONS]
        return Reply(200, {"value": value})

    def r_resourceGroup(self, method, caps, q, doc, path) -> Reply:
        sub, rg = caps
        key = f"/subscriptions/{sub}/resourcegroups/{rg}".lower()
        old = self.res.get(key)
        if method == "GET":
            if old is None:
                raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
            return Reply(200, self.render(old))
        if method == "PUT":
            doc = doc or {}
            loc = norm_loc(doc.get("location"))
            if not loc:
                raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
            if loc not in REGION_DISPLAY:
                raise ArmError(400, "LocationNotAvailableForResourceGroup",
                               f"The provided location '{doc.get('location')}' is not available for resource "
                               f"group. List of available regions is '{','.join(REGION_DISPLAY)}'.")
            if old is not None:
                if old.pending == "Deleting":
                    raise ArmError(409, "ResourceGroupBeingDeleted",
                                   f"The resource group '{old.name}' is in deprovisioning state and cannot perform "
                                   f"this operation.")
                if old.location != loc:
                    raise ArmError(409, "InvalidResourceGroupLocation",
                                   f"Invalid resource group location '{loc}'. The Resource group already exists in "
                                   f"location '{old.location}'.")
                old.tags = self.tags(doc)
                return Reply(200, self.render(old))
            e = Entry("resourceGroup", f"/subscriptions/{sub}/resourceGroups/{rg}", rg, loc, {}, self.tags(doc))
            self.res[key] = e
            return Reply(201, self.render(e))
        if method == "DELETE":
            if old is None:
                raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
            if old.pending == "Deleting":
                op = next(o for o in self.ops.values() if o.key == key and o.kind == "rgdelete")
            else:
                op = self.start_op(old, "rgdelete", "Deleting", method, key)
                for k, child in self.res.items():
                    if k.startswith(key + "/"):
                        child.pending, child.done_at = "Deleting", op.done_at
            url = f"{self.base_url}/subscriptions/{sub}/operationresults/{op.id}?api-version={q['api-version']}"
            return Reply(202, None, [("Location", url), ("Retry-After", "1")])
        raise ArmError(405, "MethodNotAllowed", f"The requested method '{method}' is not allowed.")

    def r_rgOperation(self, method, caps, q, doc, path) -> Reply:
        op = self.ops.get(caps[1])
        if op is None:
            raise ArmError(404, "NotFound", "The operation was not found.")
        status = self.op_status(op)
        if status == "InProgress":
            return Reply(202, None, [("Location", f"{self.base_url}{path}?api-version={q['api-version']}"),
                                     ("Retry-After", "1")])
        if status == "Failed":
            return Reply(500, {"error": op.error})
        return Reply(200, None)

    # --- storage accounts ------------------------------------------------------------

    def r_storageAccount(self, method, caps, q, doc, path) -> Reply:
        sub, rg, name = caps
        rge = self.need_rg(sub, rg)
        key = f"{rge.id}/providers/microsoft.storage/storageaccounts/{name}".lower()
        old = self.res.get(key)
        if method == "GET":
            if old is None or old.pending == "Deleting":
                raise self.not_found("Microsoft.Storage/storageAccounts", name, rg)
            return Reply(200, self.render(old))
        if method == "DELETE":
            if old is not None:
                del self.res[key]
                return Reply(200, None)
            return Reply(204, None)
        if method != "PUT":
            raise ArmError(405, "MethodNotAllowed", f"The requested method '{method}' is not allowed.")
        if not STORAGE_NAME_RE.match(name):
            raise ArmError(400, "AccountNameInvalid", f"{name} is not a valid storage account name. Storage account "
                           "name must be between 3 and 24 characters in length and use numbers and lower-case "
                           "letters only.", "accountName")
        doc = doc or {}
        loc = self.check_location(doc, "Microsoft.Storage/storageAccounts")
        sku, kind = (doc.get("sku") or {}).get("name"), doc.get("kind")
        if sku not in ("Standard_LRS", "Standard_GRS", "Standard_RAGRS", "Standard_ZRS", "Premium_LRS",
                       "Premium_ZRS", "Standard_GZRS", "Standard_RAGZRS"):
            raise ArmError(400, "InvalidValuesForRequestParameters" if sku else "MissingRequiredParameter",
                           f"Values for request parameters are invalid: sku.name ('{sku}').", "sku")
        if kind not in ("Storage", "StorageV2", "BlobStorage", "FileStorage", "BlockBlobStorage"):
            raise ArmError(400, "InvalidValuesForRequestParameters" if kind else "MissingRequiredParameter",
                           f"Values for request parameters are invalid: kind ('{kind}').", "kind")
        taken = [e for k, e in self.res.items() if e.kind == "storageAccount" and e.name == name and k != key]
        if taken:
            raise ArmError(409, "StorageAccountAlreadyTaken", f"The storage account named {name} is already taken.",
                           name)
        if old is not None:
            self.same_location(old, loc, rg)
            old.tags = self.tags(doc)
            old.spec.update({k: v for k, v in (doc.get("properties") or {}).items() if k in
                             ("allowBlobPublicAccess", "minimumTlsVersion", "supportsHttpsTrafficOnly",
                              "allowSharedKeyAccess")})
            return Reply(200, self.render(old))
        props = {"supportsHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": False}
        props.update({k: v for k, v in (doc.get("properties") or {}).items() if k in props or k ==
                      "allowSharedKeyAccess"})
        e = Entry("storageAccount", f"{rge.id}/providers/Microsoft.Storage/storageAccounts/{name}", name, loc,
                  props, self.tags(doc), {"sku": {"name": sku, "tier": sku.split("_")[0]}, "kind": kind})
        self.res[key] = e
        op = self.start_op(e, "storage", "Creating", method, key)
        url = (f"{self.base_url}/subscriptions/{sub}/providers/Microsoft.Storage/locations/{loc}/asyncoperations/"
               f"{op.id}?monitor=true&api-version={q['api-version']}")
        return Reply(202, None, [("Location", url), ("Retry-After", "1")])

    def r_storageOperation(self, method, caps, q, doc, path) -> Reply:
        op = self.ops.get(caps[2])
        if op is None:
            raise ArmError(404, "NotFound", "The operation was not found.")
        op.polls += 1
        if op.polls == 1 or self.op_status(op) == "InProgress":
            return Reply(202, None, [("Location", f"{self.base_url}{path}?monitor=true&api-version="
                                      f"{q['api-version']}"), ("Retry-After", "1")])
        if op.error:
            return Reply(500, {"error": op.error})
        e = self.res.get(op.key)
        return Reply(200, self.render(e) if e else None)

    # --- galleries -----------------------------------------------------------------------

    def gallery_key(self, rge: Entry, g: str) -> str:
        return f"{rge.id}/providers/microsoft.compute/galleries/{g}".lower()

    def r_galleryList(self, method, caps, q, doc, path) -> Reply:
        rge = self.need_rg(*caps[:2])
        items = [self.render(e) for k, e in sorted(self.res.items()) if e.kind == "gallery"
                 and k.startswith(rge.id.lower() + "/")]
        return self.page(items, q, path)

    def sharing_spec(self, sp, old: dict | None) -> dict | None:
        if sp is None:
            return old
        if not isinstance(sp, dict):
            raise bad_param("sharingProfile must be an object.", "sharingProfile")
        perm = sp.get("permissions", "Private")
        if perm not in ("Private", "Groups", "Community"):
            raise bad_param(f"The value '{perm}' of parameter 'sharingProfile.permissions' is not allowed. "
                            "Allowed values are 'Private', 'Groups', 'Community'.", "sharingProfile.permissions")
        out: dict = {"permissions": perm}
        if perm == "Groups":
            out["groups"] = (old or {}).get("groups", [])
        if perm == "Community":
            info = sp.get("communityGalleryInfo") or {}
            for f in ("publisherUri", "publisherContact", "eula", "publicNamePrefix"):
                if not isinstance(info.get(f), str) or not info[f]:
                    raise bad_param(f"Required parameter 'sharingProfile.communityGalleryInfo.{f}' is missing "
                                    "(null).", f"sharingProfile.communityGalleryInfo.{f}")
            prev = (old or {}).get("communityGalleryInfo")
            if prev and prev["publicNamePrefix"] != info["publicNamePrefix"]:
                raise change_not_allowed("sharingProfile.communityGalleryInfo.publicNamePrefix")
            out["communityGalleryInfo"] = {
                "publisherUri": info["publisherUri"], "publisherContact": info["publisherContact"],
                "eula": info["eula"], "publicNamePrefix": info["publicNamePrefix"],
                "communityGalleryEnabled": bool(prev and prev["communityGalleryEnabled"]),
                "publicNames": prev["publicNames"] if prev else [f"{info['publicNamePrefix']}-{uuid.uuid4()}"]}
        return out

    def r_gallery(self, method, caps, q, doc, path) -> Reply:
        sub, rg, g = caps
        rge = self.need_rg(sub, rg)
        key = self.gallery_key(rge, g)
        old = self.res.get(key)
        api = q["api-version"]
        if (done := self.read_or_delete(method, q, sub, rg, key, old, "Microsoft.Compute/galleries", g,
                                        "galleryImage")) is not None:
            return done
        doc = doc or {}
        if method == "PATCH":
            if old is None:
                raise self.not_found("Microsoft.Compute/galleries", g, rg)
            doc = {"location": old.location, "tags": doc.get("tags", old.tags),
                   "properties": {**old.spec, **(doc.get("properties") or {})}}
        if not GALLERY_NAME_RE.match(g):
            raise bad_param(f"The gallery name '{g}' is invalid. Gallery names may contain letters, digits, "
                            "underscores and periods (not at the start or end), up to 80 characters.", "galleryName")
        loc = self.check_location(doc, "Microsoft.Compute/galleries")
        props = doc.get("properties") or {}
        spec = {"description": props["description"]} if props.get("description") is not None else {}
        sp = self.sharing_spec(props.get("sharingProfile"), old.spec.get("sharingProfile") if old else None)
        if sp:
            spec["sharingProfile"] = sp
        if old is not None:
            self.same_location(old, loc, rg)
            if spec == old.spec and self.tags(doc) == old.tags and old.pending != "Deleting" \
                    and not old.failed:
                return self.idempotent(sub, old, key, api, q)
            self.busy(old)
            old.spec, old.tags = spec, self.tags(doc)
            op = self.start_op(old, "put", "Updating", method, key)
            return self.lro_reply(200, sub, old, op, api, self.render(old, q), q)
        e = Entry("gallery", f"{rge.id}/providers/Microsoft.Compute/galleries/{g}", g, loc, spec, self.tags(doc),
                  {"uniqueName": f"{sub}-{g.upper()}"})
        self.res[key] = e
        op = self.start_op(e, "put", "Creating", method, key)
        return self.lro_reply(201, sub, e, op, api, self.render(e, q), q)

    def idempotent(self, sub, old: Entry, key: str, api: str, q) -> Reply:
        """An identical re-PUT: answered 200 with the operation still running, if one is."""
        op = next((o for o in sorted(self.ops.values(), key=lambda o: -o.start) if o.key == key), None)
        if op is None or old.pending is None:
            op = Operation(str(uuid.uuid4()), key, "put", time.time(), time.time())
            self.ops[op.id] = op
        return self.lro_reply(200, sub, old, op, api, self.render(old, q), q)

    def no_children(self, e: Entry, key: str, kind: str) -> None:
        kids = self.children(key, kind)
        if kids:
            ids = ", ".join(k.id.split("/providers/", 1)[1] for k in kids[:5])
            raise ArmError(409, "CannotDeleteResource", "Cannot delete resource while nested resources exist. "
                           f"Some existing nested resource IDs include: '{ids}'. Please delete all nested "
                           "resources before deleting this resource.")

    def read_or_delete(self, method, q, sub, rg, key, old, type_name, name, child=None,
                       writes=("PUT", "PATCH")) -> Reply | None:
        """GET and DELETE of a Microsoft.Compute resource, the same for every type (a DELETE
        is an LRO, refused while CHILD resources are left); None for a method in WRITES,
        405 for any other."""
        if method == "GET":
            if old is None:
                raise self.not_found(type_name, name, rg)
            return Reply(200, self.render(old, q))
        if method == "DELETE":
            if old is None:
                return Reply(204, None)
            if child:
                self.no_children(old, key, child)
            return self.delete_lro(sub, old, key, q["api-version"], q)
        if method not in writes:
            raise ArmError(405, "MethodNotAllowed", f"The requested method '{method}' is not allowed.")
        return None

    def delete_lro(self, sub, e: Entry, key: str, api: str, q) -> Reply:
        if e.pending == "Deleting":
            op = next(o for o in sorted(self.ops.values(), key=lambda o: -o.start) if o.key == key)
        else:
            self.busy(e)
            op = self.start_op(e, "delete", "Deleting", "DELETE", key)
        return self.lro_reply(202, sub, e, op, api, None, q)

    def r_galleryShare(self, method, caps, q, doc, path) -> Reply:
        sub, rg, g = caps
        rge = self.need_rg(sub, rg)
        key = self.gallery_key(rge, g)
        e = self.res.get(key)
        if e is None or e.pending == "Deleting":
            raise self.not_found("Microsoft.Compute/galleries", g, rg)
        if method != "POST":
            raise ArmError(405, "MethodNotAllowed", f"The requested method '{method}' is not allowed.")
        doc = doc or {}
        optype = doc.get("operationType")
        if optype not in ("Add", "Remove", "Reset", "EnableCommunity"):
            raise bad_param(f"The value '{optype}' of parameter 'operationType' is not allowed. Allowed values are "
                            "'Add', 'Remove', 'Reset', 'EnableCommunity'.", "operationType")
        self.busy(e)
        sp = json.loads(json.dumps(e.spec.get("sharingProfile") or {"permissions": "Private"}))
        if optype == "EnableCommunity":
            if sp.get("permissions") != "Community":
                raise ArmError(409, "OperationNotAllowed", f"Gallery '{g}' sharing permissions are "
                               f"'{sp.get('permissions')}'; set sharingProfile.permissions to 'Community' (with "
                               "communityGalleryInfo) before enabling community sharing.")
            sp["communityGalleryInfo"]["communityGalleryEnabled"] = True
        elif optype == "Reset":
            sp = {"permissions": "Private"}
        else:
            groups = doc.get("groups")
            if not isinstance(groups, list) or not groups:
                raise bad_param("Required parameter 'groups' is missing (null).", "groups")
            if sp.get("permissions") == "Community":
                raise ArmError(409, "OperationNotAllowed", "Group sharing is not allowed on a community gallery.")
            cur = {gr["type"]: set(gr["ids"]) for gr in sp.get("groups", [])}
            for gr in groups:
                if gr.get("type") not in ("Subscriptions", "AADTenants") or not isinstance(gr.get("ids"), list):
                    raise bad_param("Each group needs type 'Subscriptions' or 'AADTenants' and a list of ids.",
                                    "groups")
                s = cur.setdefault(gr["type"], set())
                s |= set(gr["ids"]) if optype == "Add" else set()
                s -= set(gr["ids"]) if optype == "Remove" else set()
            sp = {"permissions": "Groups", "groups": [{"type": t, "ids": sorted(v)} for t, v in cur.items() if v]}
        op = self.start_op(e, "share", "Updating", method, key, {"operationType": optype,
                                                                    **({"groups": doc["groups"]}
                                                                       if "groups" in doc else {})})
        e.staged = sp
        return self.lro_reply(202, sub, e, op, q["api-version"], None, q)

    # --- gallery image definitions -------------------------------------------------------

    def r_galleryImageList(self, method, caps, q, doc, path) -> Reply:
        sub, rg, g = caps
        rge = self.need_rg(sub, rg)
        gkey = self.gallery_key(rge, g)
        self.need_parent(gkey, g)
        return self.page([self.render(e, q) for e in self.children(gkey, "galleryImage")], q, path)

    def definition_spec(self, props: dict) -> dict:
        ident = props.get("identifier")
        if not isinstance(ident, dict):
            raise bad_param("Required parameter 'identifier' is missing (null).", "identifier")
        for f in ("publisher", "offer", "sku"):
            if not isinstance(ident.get(f), str) or not ident[f]:
                raise bad_param(f"Required parameter 'identifier.{f}' is missing (null).", f"identifier.{f}")
        spec = {"identifier": {f: ident[f] for f in ("publisher", "offer", "sku")}}
        enums = {"osType": (("Linux", "Windows"), None), "osState": (("Generalized", "Specialized"), None),
                 "hyperVGeneration": (("V1", "V2"), "V1"), "architecture": (("x64", "Arm64"), "x64")}
        for f, (allowed, default) in enums.items():
            v = props.get(f, default)
            if v is None:
                raise bad_param(f"Required parameter '{f}' is missing (null).", f)
            match = next((a for a in allowed if a.lower() == str(v).lower()), None)
            if match is None:
                raise bad_param(f"The value '{v}' of parameter '{f}' is not allowed. Allowed values are "
                                f"{', '.join(repr(a) for a in allowed)}.", f)
            spec[f] = match
        if spec["architecture"] == "Arm64" and spec["hyperVGeneration"] == "V1":
            raise bad_param("The Arm64 architecture is only supported with hyperVGeneration 'V2'; "
                            "'V1' was requested.", "hyperVGeneration")
        feats = props.get("features")
        if feats is not None:
            if not isinstance(feats, list) or not all(isinstance(f, dict) and isinstance(f.get("name"), str)
                                                      and isinstance(f.get("value"), str) for f in feats):
                raise bad_param("'features' must be a list of {name, value} strings.", "features")
            for f in feats:
                if f["name"] == "SecurityType":
                    ok = ("Standard", "TrustedLaunchSupported", "TrustedLaunch", "ConfidentialVM",
                          "ConfidentialVMSupported", "TrustedLaunchAndConfidentialVmSupported")
                    if f["value"] not in ok:
                        raise bad_param(f"The value '{f['value']}' of feature 'SecurityType' is not allowed.",
                                        "features")
                    if f["value"] != "Standard" and spec["hyperVGeneration"] != "V2":
                        raise bad_param(f"SecurityType '{f['value']}' requires hyperVGeneration 'V2'.", "features")
                elif f["name"] in ("IsAcceleratedNetworkSupported", "IsHibernateSupported") and \
                        f["value"].lower() not in ("true", "false"):
                    raise bad_param(f"The value '{f['value']}' of feature '{f['name']}' must be 'True' or 'False'.",
                                    "features")
                elif f["name"] == "DiskControllerTypes" and not all(
                        p.strip() in ("SCSI", "NVMe") for p in f["value"].split(",")):
                    raise bad_param(f"The value '{f['value']}' of feature 'DiskControllerTypes' is not allowed. "
                                    "Allowed values are 'SCSI', 'NVMe' or 'SCSI, NVMe'.", "features")
            spec["features"] = feats
        for f in ("description", "eula", "privacyStatementUri", "releaseNoteUri", "endOfLifeDate",
                  "recommended", "disallowed", "purchasePlan"):
            if props.get(f) is not None:
                spec[f] = props[f]
        return spec

    def r_galleryImage(self, method, caps, q, doc, path) -> Reply:
        sub, rg, g, d = caps
        rge = self.need_rg(sub, rg)
        gkey = self.gallery_key(rge, g)
        key = f"{gkey}/images/{d}".lower()
        old = self.res.get(key)
        api = q["api-version"]
        if method == "GET":
            self.need_parent(gkey, g)
        if (done := self.read_or_delete(method, q, sub, rg, key, old, "Microsoft.Compute/galleries/images",
                                        f"{g}/{d}", "galleryImageVersion")) is not None:
            return done
        gal = self.need_parent(gkey, g)
        doc = doc or {}
        if method == "PATCH":
            if old is None:
                raise self.not_found("Microsoft.Compute/galleries/images", f"{g}/{d}", rg)
            doc = {"location": old.location, "tags": doc.get("tags", old.tags),
                   "properties": {**old.spec, **(doc.get("properties") or {})}}
        if not DEFINITION_NAME_RE.match(d):
            raise bad_param(f"The gallery image name '{d}' is invalid. The allowed characters are alphabets and "
                            "numbers with dots, dashes, and periods allowed in the middle; at most 80 characters.",
                            "galleryImageName")
        loc = self.check_location(doc, "Microsoft.Compute/galleries/images")
        if loc != gal.location:
            raise bad_param(f"The gallery image location '{loc}' must be the gallery's location "
                            f"'{gal.location}'.", "location")
        spec = self.definition_spec(doc.get("properties") or {})
        ident = spec["identifier"]
        for other in self.children(gkey, "galleryImage"):
            if other is not old and {k: v.lower() for k, v in other.spec["identifier"].items()} == \
                    {k: v.lower() for k, v in ident.items()}:
                raise ArmError(409, "Conflict", f"Gallery image identifier (publisher '{ident['publisher']}', "
                               f"offer '{ident['offer']}', sku '{ident['sku']}') is already used by gallery image "
                               f"'{other.name}' in gallery '{gal.name}'. The identifier must be unique within "
                               "the gallery.", "identifier")
        if old is not None:
            self.same_location(old, loc, rg)
            for f in ("identifier", "osType", "osState", "hyperVGeneration", "architecture"):
                if old.spec[f] != spec[f]:
                    sub_f = next((k for k in ("publisher", "offer", "sku") if old.spec[f][k] != spec[f][k]),
                                 None) if f == "identifier" else None
                    raise change_not_allowed(f"galleryImage.properties.{f}" + (f".{sub_f}" if sub_f else ""))
            if spec == old.spec and self.tags(doc) == old.tags and old.pending != "Deleting" \
                    and not old.failed:
                return self.idempotent(sub, old, key, api, q)
            self.busy(old)
            old.spec, old.tags = spec, self.tags(doc)
            op = self.start_op(old, "put", "Updating", method, key)
            return self.lro_reply(200, sub, old, op, api, self.render(old, q), q)
        e = Entry("galleryImage", f"{gal.id}/images/{d}", d, loc, spec, self.tags(doc))
        self.res[key] = e
        op = self.start_op(e, "put", "Creating", method, key)
        return self.lro_reply(201, sub, e, op, api, self.render(e, q), q)

    # --- gallery image versions ------------------------------------------------------------

    def r_galleryImageVersionList(self, method, caps, q, doc, path) -> Reply:
        sub, rg, g, d = caps
        rge = self.need_rg(sub, rg)
        gkey = self.gallery_key(rge, g)
        self.need_parent(gkey, g)
        dkey = f"{gkey}/images/{d}".lower()
        self.need_parent(dkey, d)
        return self.page([self.render(e, q) for e in self.children(dkey, "galleryImageVersion")], q, path)

    def publishing_spec(self, pp, loc: str) -> dict:
        if pp is None:
            pp = {}
        if not isinstance(pp, dict):
            raise bad_param("publishingProfile must be an object.", "publishingProfile")
        sat_ok = ("Standard_LRS", "Standard_ZRS", "Premium_LRS")
        replicas = pp.get("replicaCount", 1)
        if not isinstance(replicas, int) or not 1 <= replicas <= 100:
            raise bad_param(f"replicaCount must be between 1 and 100; got '{replicas}'.",
                            "publishingProfile.replicaCount")
        sat = pp.get("storageAccountType", "Standard_LRS")
        if sat not in sat_ok:
            raise bad_param(f"The value '{sat}' of parameter 'storageAccountType' is not allowed. Allowed values "
                            f"are {', '.join(sat_ok)}.", "publishingProfile.storageAccountType")
        regions = pp.get("targetRegions")
        if regions is None:
            regions = [{"name": loc}]
        if not isinstance(regions, list) or not regions:
            raise bad_param("targetRegions must be a non-empty list.", "publishingProfile.targetRegions")
        out, seen = [], set()
        for tr in regions:
            n = norm_loc((tr or {}).get("name"))
            if n not in REGION_DISPLAY:
                raise bad_param(f"The target region '{(tr or {}).get('name')}' is not a valid Azure region.",
                                "publishingProfile.targetRegions")
            if n in seen:
                raise bad_param(f"The target region '{n}' is listed more than once.", "publishingProfile.targetRegions")
            seen.add(n)
            rc = tr.get("regionalReplicaCount", replicas)
            if not isinstance(rc, int) or not 1 <= rc <= 100:
                raise bad_param(f"regionalReplicaCount for '{n}' must be between 1 and 100.",
                                "publishingProfile.targetRegions")
            tsat = tr.get("storageAccountType", sat)
            if tsat not in sat_ok:
                raise bad_param(f"The value '{tsat}' of parameter 'storageAccountType' is not allowed.",
                                "publishingProfile.targetRegions")
            out.append({"name": n, "regionalReplicaCount": rc, "storageAccountType": tsat,
                        "excludeFromLatest": bool(tr.get("excludeFromLatest", False))})
        if loc not in seen:
            raise bad_param(f"The list of target regions must include the gallery image version's location "
                            f"'{loc}'.", "publishingProfile.targetRegions")
        spec = {"targetRegions": out, "replicaCount": replicas, "storageAccountType": sat,
                "excludeFromLatest": bool(pp.get("excludeFromLatest", False))}
        if pp.get("endOfLifeDate") is not None:
            eol = pp["endOfLifeDate"]
            try:
                datetime.fromisoformat(str(eol).replace("Z", "+00:00"))
            except ValueError:
                raise bad_param(f"endOfLifeDate '{eol}' is not a valid date-time.", "publishingProfile.endOfLifeDate")
            spec["endOfLifeDate"] = eol
        if pp.get("replicationMode") is not None:
            spec["replicationMode"] = pp["replicationMode"]
        return spec

    def storage_spec(self, sp, loc: str, definition: Entry) -> dict:
        if not isinstance(sp, dict):
            raise bad_param("Required parameter 'storageProfile' is missing (null).", "storageProfile")
        src_id = (sp.get("source") or {}).get("id")
        osd = sp.get("osDiskImage") or {}
        osd_src = osd.get("source") or {}
        uri = osd_src.get("uri") or (sp.get("source") or {}).get("uri")
        if bool(src_id) == bool(uri) and not osd_src.get("id"):
            raise bad_param("Exactly one source must be given: storageProfile.source.id (a managed image) or "
                            "storageProfile.osDiskImage.source.uri with storageAccountId (a VHD).",
                            "storageProfile")
        caching = osd.get("hostCaching", "ReadOnly" if uri else "ReadWrite")
        if caching not in ("None", "ReadOnly", "ReadWrite"):
            raise bad_param(f"The value '{caching}' of parameter 'hostCaching' is not allowed.",
                            "storageProfile.osDiskImage.hostCaching")
        if src_id or osd_src.get("id"):
            sid = src_id or osd_src["id"]
            img = self.managed_image(sid)
            if img.location != loc:
                raise bad_param(f"The source image '{sid}' is in location '{img.location}'; it must be in the "
                                f"gallery image version's location '{loc}'.", "storageProfile.source.id")
            if img.spec["hyperVGeneration"] != definition.spec["hyperVGeneration"]:
                raise bad_param(f"The HyperVGeneration of the source image '{img.spec['hyperVGeneration']}' "
                                f"does not match the HyperVGeneration of the gallery image "
                                f"'{definition.spec['hyperVGeneration']}'.", "storageProfile.source.id")
            return {"source": {"id": img.id}, "osDiskImage": {"hostCaching": caching,
                                                              "sizeInGB": img.extra.get("sizeInGB", 0)}}
        acct_id = osd_src.get("storageAccountId") or (sp.get("source") or {}).get("storageAccountId")
        if not acct_id:
            raise bad_param("Required parameter 'storageProfile.osDiskImage.source.storageAccountId' is missing "
                            "(null); it is required with a VHD uri.", "storageProfile.osDiskImage.source")
        acct = self.storage_account(acct_id)
        blob_base = self.storage_endpoints(acct.name)["blob"]
        if not uri.lower().startswith(blob_base.lower()):
            raise bad_param(f"The VHD uri '{uri}' is not in storage account '{acct.name}' ({blob_base}).",
                            "storageProfile.osDiskImage.source.uri")
        size = self.check_vhd(uri, "storageProfile.osDiskImage.source.uri")
        return {"osDiskImage": {"hostCaching": caching, "sizeInGB": math.ceil((size - 512) / 2**30),
                                "source": {"uri": uri, "storageAccountId": acct.id}}}

    def managed_image(self, sid: str) -> Entry:
        m = re.match(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/images/([^/]+)$",
                     sid, re.I)
        if not m:
            raise bad_param(f"The source id '{sid}' is not a valid managed image id.", "storageProfile.source.id")
        img = self.res.get(sid.lower())
        if img is None or img.pending == "Deleting":
            raise ArmError(404, "NotFound", f"The Resource 'Microsoft.Compute/images/{m.group(3)}' under resource "
                           f"group '{m.group(2)}' was not found.", "storageProfile.source.id")
        if self.provisioning(img) != "Succeeded":
            raise ArmError(409, "OperationNotAllowed", f"The source image '{sid}' is in provisioning state "
                           f"'{self.provisioning(img)}'.", "storageProfile.source.id")
        return img

    def storage_account(self, acct_id: str) -> Entry:
        m = re.match(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Storage/"
                     r"storageAccounts/([^/]+)$", acct_id, re.I)
        if not m:
            raise bad_param(f"'{acct_id}' is not a valid storage account id.", "storageAccountId")
        acct = self.res.get(acct_id.lower())
        if acct is None or acct.pending == "Deleting":
            raise ArmError(404, "StorageAccountNotFound", f"The storage account '{m.group(3)}' (resource group "
                           f"'{m.group(2)}') was not found.", "storageAccountId")
        return acct

    def check_vhd(self, uri: str, target: str) -> int:
        """The checks Azure makes on a VHD page blob; returns its size. Reads the blob on the emulator."""
        base = urlsplit(uri)._replace(query="", fragment="").geturl()
        if not base.lower().startswith(self.blob_endpoint.lower() + "/"):
            raise bad_param(f"The blob '{base}' is not reachable from this fake (only {self.blob_endpoint} is).",
                            target)
        account = urlsplit(self.blob_endpoint).path.strip("/").split("/")[0] or AZURITE_ACCOUNT
        try:
            st, hd, _ = blob_request("HEAD", base, account, self.account_key)
        except OSError as ex:
            raise bad_param(f"The blob '{base}' could not be read: blob endpoint unreachable ({ex}).", target)
        if st == 404:
            raise bad_param(f"The blob '{base}' does not exist (BlobNotFound).", target)
        if st != 200:
            raise bad_param(f"The blob '{base}' could not be read: the blob service answered {st} "
                            f"{hd.get('x-ms-error-code', '')}.", target)
        btype = hd.get("x-ms-blob-type", "")
        if btype != "PageBlob":
            raise bad_param(f"The blob '{base}' is a {btype or 'non-page blob'}; a VHD source must be a page "
                            "blob.", target)
        size = int(hd.get("content-length", "0"))
        if size < MIB + 512 or (size - 512) % MIB:
            raise bad_param(f"Disk with blob {base} has unsupported virtual size of {size - 512} bytes. The size "
                            "must be a whole number (in MBs).", target)
        try:
            st, _, footer = blob_request("GET", base, account, self.account_key,
                                         {"x-ms-range": f"bytes={size - 512}-{size - 1}"})
        except OSError as ex:
            raise bad_param(f"The blob '{base}' could not be read: {ex}.", target)
        if st not in (200, 206) or len(footer) != 512 or footer[:8] != b"conectix":
            raise bad_param(f"The specified cookie value in VHD footer indicates that disk with blob {base} is not "
                            "a supported VHD. Disk is expected to have cookie value 'conectix'.", target)
        if int.from_bytes(footer[60:64], "big") != 2:
            raise bad_param(f"The VHD {base} is not a fixed VHD (disk type "
                            f"{int.from_bytes(footer[60:64], 'big')}); only fixed VHDs are supported.", target)
        return size

    def r_galleryImageVersion(self, method, caps, q, doc, path) -> Reply:
        sub, rg, g, d, v = caps
        rge = self.need_rg(sub, rg)
        gkey = self.gallery_key(rge, g)
        dkey = f"{gkey}/images/{d}".lower()
        key = f"{dkey}/versions/{v}".lower()
        old = self.res.get(key)
        api = q["api-version"]
        if method == "GET":
            self.need_parent(gkey, g)
            self.need_parent(dkey, d)
        if (done := self.read_or_delete(method, q, sub, rg, key, old, "Microsoft.Compute/galleries/images/versions",
                                        f"{g}/{d}/{v}")) is not None:
            return done
        self.need_parent(gkey, g)
        definition = self.need_parent(dkey, d)
        m = VERSION_NAME_RE.match(v)
        if not m or any(int(p) > INT32_MAX for p in m.groups()):
            raise bad_param(f"The gallery image version name '{v}' is invalid. The version name must follow "
                            "Major(int32).Minor(int32).Patch(int32) format, e.g. 1.0.0, 2018.12.1.",
                            "galleryImageVersionName")
        doc = doc or {}
        if method == "PATCH":
            if old is None:
                raise self.not_found("Microsoft.Compute/galleries/images/versions", f"{g}/{d}/{v}", rg)
            props = doc.get("properties") or {}
            diff = self.storage_diff(old.spec["storageProfile"], props["storageProfile"]) \
                if isinstance(props.get("storageProfile"), dict) else None
            if diff:
                raise change_not_allowed(f"galleryImageVersion.properties.storageProfile.{diff}")
            pp = {**self.public_pp(old.spec["publishingProfile"]), **(props.get("publishingProfile") or {})}
            doc = {"location": old.location, "tags": doc.get("tags", old.tags),
                   "properties": {**{k: v2 for k, v2 in old.spec.items() if k != "storageProfile"},
                                  **{k: v2 for k, v2 in props.items() if k != "storageProfile"},
                                  "publishingProfile": pp}}
        loc = self.check_location(doc, "Microsoft.Compute/galleries/images/versions")
        if loc != definition.location:
            raise bad_param(f"The gallery image version location '{loc}' must be the location of the gallery "
                            f"'{definition.location}'.", "location")
        props = doc.get("properties") or {}
        pspec = self.publishing_spec(props.get("publishingProfile"), loc)
        extra = {k: props[k] for k in ("safetyProfile", "securityProfile") if props.get(k) is not None}
        if old is not None:
            self.same_location(old, loc, rg)
            if method == "PUT":
                # Compare what was asked with what exists before touching the blob again.
                sp_new = props.get("storageProfile")
                if not isinstance(sp_new, dict):
                    raise bad_param("Required parameter 'storageProfile' is missing (null).", "storageProfile")
                diff = self.storage_diff(old.spec["storageProfile"], sp_new)
                if diff:
                    raise change_not_allowed(f"galleryImageVersion.properties.storageProfile.{diff}")
            spec = {"publishingProfile": pspec, "storageProfile": old.spec["storageProfile"], **extra}
            if spec == old.spec and self.tags(doc) == old.tags and old.pending != "Deleting" \
                    and not old.failed:
                return self.idempotent(sub, old, key, api, q)
            self.busy(old)
            old.spec, old.tags = spec, self.tags(doc)
            op = self.start_op(old, "put", "Updating", method, key)
            return self.lro_reply(200, sub, old, op, api, self.render(old, q), q)
        sspec = self.storage_spec(props.get("storageProfile"), loc, definition)
        e = Entry("galleryImageVersion", f"{definition.id}/versions/{v}", v, loc,
                  {"publishingProfile": pspec, "storageProfile": sspec, **extra}, self.tags(doc),
                  {"hyperVGeneration": definition.spec["hyperVGeneration"]})
        self.res[key] = e
        op = self.start_op(e, "put", "Creating", method, key)
        return self.lro_reply(201, sub, e, op, api, self.render(e, q), q)

    @staticmethod
    def public_pp(pp: dict) -> dict:
        return json.loads(json.dumps(pp))

    @staticmethod
    def storage_diff(old: dict, new: dict) -> str | None:
        """The first storageProfile property a PUT would change, as a dotted path (case-insensitive ids)."""
        o_src = (old.get("source") or {}).get("id") or ""
        n_src = (new.get("source") or {}).get("id") or ((new.get("osDiskImage") or {}).get("source") or {}).get("id") or ""
        if o_src.lower() != n_src.lower():
            return "source.id"
        o_osd, n_osd = old.get("osDiskImage") or {}, new.get("osDiskImage") or {}
        o_s, n_s = o_osd.get("source") or {}, n_osd.get("source") or {}
        for f in ("uri", "storageAccountId"):
            if (o_s.get(f) or "").lower() != (n_s.get(f) or "").lower():
                return f"osDiskImage.source.{f}"
        if "hostCaching" in n_osd and n_osd["hostCaching"] != o_osd.get("hostCaching"):
            return "osDiskImage.hostCaching"
        return None

    # --- managed images ------------------------------------------------------------------

    def r_image(self, method, caps, q, doc, path) -> Reply:
        sub, rg, name = caps
        rge = self.need_rg(sub, rg)
        key = f"{rge.id}/providers/microsoft.compute/images/{name}".lower()
        old = self.res.get(key)
        api = q["api-version"]
        if (done := self.read_or_delete(method, q, sub, rg, key, old, "Microsoft.Compute/images", name,
                                        writes=("PUT",))) is not None:
            return done
        if not IMAGE_NAME_RE.match(name):
            raise bad_param(f"The image name '{name}' is invalid.", "imageName")
        doc = doc or {}
        loc = self.check_location(doc, "Microsoft.Compute/images")
        props = doc.get("properties") or {}
        osd = (props.get("storageProfile") or {}).get("osDisk")
        if not isinstance(osd, dict):
            raise bad_param("Required parameter 'storageProfile.osDisk' is missing (null).", "storageProfile.osDisk")
        spec_osd = {}
        for f, allowed in (("osType", ("Linux", "Windows")), ("osState", ("Generalized", "Specialized"))):
            val = next((a for a in allowed if a.lower() == str(osd.get(f, "")).lower()), None)
            if val is None:
                raise bad_param(f"The value '{osd.get(f)}' of parameter 'osDisk.{f}' is not allowed. Allowed "
                                f"values are {', '.join(allowed)}.", f"storageProfile.osDisk.{f}")
            spec_osd[f] = val
        caching = osd.get("caching", "ReadWrite")
        if caching not in ("None", "ReadOnly", "ReadWrite"):
            raise bad_param(f"The value '{caching}' of parameter 'caching' is not allowed.", "storageProfile.osDisk")
        spec_osd["caching"] = caching
        spec_osd["storageAccountType"] = osd.get("storageAccountType", "Standard_LRS")
        blob = osd.get("blobUri")
        if not blob:
            raise bad_param("Required parameter 'osDisk.blobUri' is missing (null) (snapshots and managed disks "
                            "are not supported by this fake).", "storageProfile.osDisk.blobUri")
        spec_osd["blobUri"] = blob
        hvg = next((a for a in ("V1", "V2") if a.lower() == str(props.get("hyperVGeneration", "V1")).lower()), None)
        if hvg is None:
            raise bad_param(f"The value '{props.get('hyperVGeneration')}' of parameter 'hyperVGeneration' is not "
                            "allowed. Allowed values are V1, V2.", "hyperVGeneration")
        spec = {"storageProfile": {"osDisk": spec_osd, "dataDisks": [],
                                   "zoneResilient": bool((props.get("storageProfile") or {}).get("zoneResilient"))},
                "hyperVGeneration": hvg}
        if old is not None:
            self.same_location(old, loc, rg)
            for f in ("osType", "osState", "blobUri"):
                a, b = old.spec["storageProfile"]["osDisk"][f], spec_osd[f]
                if (a.lower() if f == "blobUri" else a) != (b.lower() if f == "blobUri" else b):
                    raise change_not_allowed(f"osDisk.{f}")
            if old.spec["hyperVGeneration"] != hvg:
                raise change_not_allowed("hyperVGeneration")
            spec["storageProfile"]["osDisk"]["diskSizeGB"] = old.spec["storageProfile"]["osDisk"].get("diskSizeGB")
            if spec == old.spec and self.tags(doc) == old.tags and old.pending != "Deleting" \
                    and not old.failed:
                return self.idempotent(sub, old, key, api, q)
            self.busy(old)
            old.spec, old.tags = spec, self.tags(doc)
            op = self.start_op(old, "put", "Updating", method, key)
            return self.lro_reply(200, sub, old, op, api, self.render(old, q), q)
        known = [self.storage_endpoints(e.name)["blob"].lower() for e in self.res.values()
                 if e.kind == "storageAccount"] + [self.blob_endpoint.lower() + "/"]
        if not any(blob.lower().startswith(k) for k in known):
            raise bad_param(f"The blob uri '{blob}' is not in a known storage account.", "storageProfile.osDisk.blobUri")
        size = self.check_vhd(blob, "storageProfile.osDisk.blobUri")
        spec_osd["diskSizeGB"] = math.ceil((size - 512) / 2**30)
        e = Entry("image", f"{rge.id}/providers/Microsoft.Compute/images/{name}", name, loc, spec, self.tags(doc),
                  {"sizeInGB": spec_osd["diskSizeGB"]})
        self.res[key] = e
        op = self.start_op(e, "put", "Creating", method, key)
        return self.lro_reply(201, sub, e, op, api, self.render(e, q), q)

    # --- community gallery ------------------------------------------------------------------

    def r_communityGalleryImageVersion(self, method, caps, q, doc, path) -> Reply:
        sub, loc, public, d, v = caps
        loc = norm_loc(loc)
        if method != "GET":
            raise ArmError(405, "MethodNotAllowed", f"The requested method '{method}' is not allowed.")
        nf = ArmError(404, "ResourceNotFound", f"The community gallery image version '{public}/{d}/{v}' was not "
                      f"found in location '{loc}'.")
        gal = None
        for e in self.res.values():
            info = ((e.spec.get("sharingProfile") or {}).get("communityGalleryInfo") or {}) \
                if e.kind == "gallery" else {}
            if public.lower() in [n.lower() for n in info.get("publicNames", [])]:
                gal = e if info.get("communityGalleryEnabled") and e.pending != "Deleting" else None
                break
        if gal is None:
            raise nf
        ver = self.res.get(f"{gal.id}/images/{d}/versions/{v}".lower())
        if ver is None or self.provisioning(ver) not in ("Succeeded", "Updating") or \
                loc not in [tr["name"] for tr in ver.spec["publishingProfile"]["targetRegions"]]:
            raise nf
        definition = self.res[f"{gal.id}/images/{d}".lower()]
        pp = ver.spec["publishingProfile"]
        props = {"publishedDate": now_iso(ver.created), "excludeFromLatest": pp["excludeFromLatest"],
                 "storageProfile": {"osDiskImage": {"diskSizeGB": ver.spec["storageProfile"]["osDiskImage"]
                                                    .get("sizeInGB", 0),
                                                    "hostCaching": ver.spec["storageProfile"]["osDiskImage"]
                                                    .get("hostCaching")}}}
        if "endOfLifeDate" in pp:
            props["endOfLifeDate"] = pp["endOfLifeDate"]
        return Reply(200, {"name": ver.name, "location": loc,
                           "type": "Microsoft.Compute/locations/communityGalleries/images/versions",
                           "identifier": {"uniqueId": f"/CommunityGalleries/{public}/Images/{definition.name}/"
                                                      f"Versions/{ver.name}"},
                           "properties": props})

    # --- test control ----------------------------------------------------------------------

    def snapshot(self) -> dict:
        out: dict = {k: {} for k in TYPE_NAMES}
        for e in self.res.values():
            r = self.render(e, {"$expand": "ReplicationStatus"})
            if e.kind == "galleryImageVersion":
                r["fake"] = {"hyperVGeneration": e.extra.get("hyperVGeneration")}
            out[e.kind][e.id] = r
        out["operations"] = {o.id: {"resource": self.res[o.key].id if o.key in self.res else o.key,
                                    "kind": o.kind, "status": self.op_status(o)} for o in self.ops.values()}
        out["tokens"] = len(self.tokens)
        return out

    def persist(self) -> None:
        if not self.state_dir:
            return
        tmp = os.path.join(self.state_dir, "state.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.snapshot(), f, indent=1)
        os.replace(tmp, os.path.join(self.state_dir, "state.json"))

    def control(self, method, path, query, body) -> Reply:
        try:
            if path in ("/_fake/faults", "/_fake/reset"):
                return super().control(method, path, query, body)
            doc = json.loads(body or b"{}") if method in ("POST", "PUT") else {}
            return self.control_doc(method, path, dict(parse_qsl(query)), doc)
        except (ValueError, TypeError, KeyError, re.error) as e:  # bad JSON too (a ValueError)
            return Reply(400, {"error": {"code": "BadControlRequest", "message": f"{type(e).__name__}: {e}"}})

    def control_doc(self, method, path, q, doc) -> Reply:
        if path == "/_fake/health":
            return Reply(200, {"ok": True, "blob_endpoint": self.blob_endpoint})
        if path == "/_fake/config":
            with self.lock:
                if method == "POST":
                    unknown = set(doc) - set(self.config)
                    if unknown:
                        raise ValueError(f"unknown config keys {sorted(unknown)}")
                    for f in doc.get("lro_fail", []):
                        re.compile(f.get("match", ""))
                    self.config.update(doc)
                return Reply(200, self.config)
        if path == "/_fake/certificates" and method == "POST":
            from cryptography import x509
            from cryptography.hazmat.primitives.serialization import Encoding
            cert = x509.load_pem_x509_certificate(doc["pem"].encode())
            der = cert.public_bytes(Encoding.DER)
            with self.lock:
                self.clients.setdefault(doc["client_id"].lower(), secrets.token_urlsafe(24))
                self.certs.setdefault(doc["client_id"].lower(), []).append(
                    (b64url(hashlib.sha1(der).digest()), b64url(hashlib.sha256(der).digest()), cert.public_key(),
                     doc["pem"]))
            return Reply(200, {"client_id": doc["client_id"], "x5t": b64url(hashlib.sha1(der).digest())})
        if path == "/_fake/federated" and method == "POST":
            rec = {"client_id": doc["client_id"], "issuer": doc["issuer"], "subject": doc["subject"],
                   "audiences": list(doc.get("audiences") or [FEDERATED_AUDIENCE])}
            with self.lock:
                self.clients.setdefault(doc["client_id"].lower(), secrets.token_urlsafe(24))
                self.federated.append(rec)
            return Reply(200, rec)
        if path == "/_fake/state":
            with self.lock:
                self.settle()
                return Reply(200, self.snapshot())
        if path == "/_fake/stats":
            with self.lock:
                return Reply(200, {"requests": dict(self.requests), "faults": dict(self.faults),
                                   "faults_by_rule": self.rules.by_rule(), "statuses": dict(self.statuses)})
        return Reply(404, {"error": {"code": "NotFound", "message": f"unknown control endpoint {method} {path}"}})


class Handler(FakeHandler):
    server_version = "fake-arm"
    extra_headers = [("Cache-Control", "no-cache")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=48200)
    ap.add_argument("--state-dir", default="")
    ap.add_argument("--blob-endpoint", default=os.environ.get("CLOUD_HELPER_AZURITE_URL",
                                                              "http://127.0.0.1:10000/devstoreaccount1"))
    ap.add_argument("--account-key", default="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
                                             "K1SZFPTOtr/KBHBeksoGMGw==")
    ap.add_argument("--tenant", default=DEFAULT_TENANT)
    ap.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    ap.add_argument("--client-secret", default=DEFAULT_SECRET)
    ap.add_argument("--lro-seconds", type=float, default=0.3)
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args()
    server = listen(args.host, args.port, Handler, app=FakeArm(args), verbose=args.verbose)
    serve([server], f"fake ARM listening on http://{args.host}:{args.port}")


if __name__ == "__main__":
    sys.exit(main())
