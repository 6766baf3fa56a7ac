#!/usr/bin/env python3
"""Exercises tests/azure/fake_arm.py over HTTP; exit 0 when everything behaved, 1 otherwise.

    python3 tests/azure/fake_arm_selftest.py --endpoint http://127.0.0.1:48200 \\
        [--blob-endpoint http://127.0.0.1:48210/devstoreaccount1 --account-key KEY]

Without --endpoint it starts fake_arm.py itself on --port (default 48201) and stops it after.
The blob endpoint must be the one the fake was started with (default: $CLOUD_HELPER_AZURITE_URL,
else http://127.0.0.1:48210/devstoreaccount1). When no Azurite answers there, the cases that need
page blobs (VHD-sourced versions, managed images, community publishing) are skipped with a
message; everything else still has to pass.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_arm  # noqa: E402  (for its Shared Key signer)

AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SUB = "11111111-2222-3333-4444-555555555555"
API_RG, API_CG, API_IMG, API_ST = "2021-04-01", "2023-07-03", "2023-09-01", "2023-01-01"
MIB = 1024 * 1024

failures: list[str] = []


def check(cond: bool, what: str, detail: object = "") -> bool:
    if cond:
        print(f"  ok   {what}")
    else:
        failures.append(what)
        print(f"  FAIL {what} {str(detail)[:600]}")
    return cond


class Client:
    def __init__(self, endpoint: str):
        self.ep = endpoint.rstrip("/")
        self.token: str | None = None

    def raw(self, method: str, url: str, body: bytes | None = None, headers: dict | None = None):
        if not url.startswith("http"):
            url = self.ep + url
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                data = r.read()
                return r.status, {k.lower(): v for k, v in r.headers.items()}, data
        except urllib.error.HTTPError as e:
            data = e.read()
            return e.code, {k.lower(): v for k, v in e.headers.items()}, data

    def call(self, method: str, path: str, doc=None, api: str | None = API_CG, token: str | None = "default",
             extra_query: str = ""):
        url = path if path.startswith("http") else self.ep + path
        if api and "api-version=" not in url:
            url += ("&" if "?" in url else "?") + f"api-version={api}"
        url += extra_query
        headers = {}
        tok = self.token if token == "default" else token
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        body = None
        if doc is not None:
            body = json.dumps(doc).encode()
            headers["Content-Type"] = "application/json"
        st, hd, data = self.raw(method, url, body, headers)
        try:
            parsed = json.loads(data) if data.strip() else None
        except ValueError:
            parsed = data
        return st, hd, parsed

    def get_token(self, tenant: str, form: dict):
        body = "&".join(f"{k}={urllib.request.quote(str(v), safe='')}" for k, v in form.items()).encode()
        st, hd, data = self.raw("POST", f"/{tenant}/oauth2/v2.0/token", body,
                                {"Content-Type": "application/x-www-form-urlencoded"})
        return st, json.loads(data or b"{}")

    def control(self, method: str, path: str, doc=None):
        st, _, data = self.raw(method, path, json.dumps(doc).encode() if doc is not None else None,
                               {"Content-Type": "application/json"})
        return st, json.loads(data or b"null")

    def wait_op(self, url: str, limit: float = 10.0) -> dict:
        """Polls an Azure-AsyncOperation URL until it leaves InProgress; returns the last body."""
        deadline, seen_progress, body = time.time() + limit, False, {}
        while time.time() < deadline:
            st, _, body = self.call("GET", url, api=None)
            if st != 200:
                return {"status": f"HTTP {st}", "body": body}
            if body.get("status") != "InProgress":
                body["_saw_in_progress"] = seen_progress
                return body
            seen_progress = True
            time.sleep(0.1)
        return {"status": "timeout"}


def rg_path(rg: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{rg}"


def gallery_path(rg: str, g: str) -> str:
    return f"{rg_path(rg)}/providers/Microsoft.Compute/galleries/{g}"


def definition_doc(sku: str, **over) -> dict:
    props = {"identifier": {"publisher": "cloudhelper", "offer": "selftest", "sku": sku}, "osType": "Linux",
             "osState": "Generalized", "hyperVGeneration": "V2", "architecture": "x64",
             "features": [{"name": "SecurityType", "value": "TrustedLaunchSupported"},
                          {"name": "DiskControllerTypes", "value": "SCSI, NVMe"}]}
    props.update(over)
    return {"location": "eastus", "properties": props}


# --- blobs on Azurite ------------------------------------------------------------

def vhd_footer(size: int) -> bytes:
    f = bytearray(512)
    f[0:8] = b"conectix"
    f[8:12] = (2).to_bytes(4, "big")
    f[12:16] = (0x00010000).to_bytes(4, "big")
    f[16:24] = b"\xff" * 8
    f[24:28] = int(time.time() - 946684800).to_bytes(4, "big")
    f[28:32] = b"chlp"
    f[32:36] = (0x00010000).to_bytes(4, "big")
    f[36:40] = b"Wi2k"
    f[40:48] = size.to_bytes(8, "big")
    f[48:56] = size.to_bytes(8, "big")
    f[56:60] = bytes([0x00, 0x40, 0x04, 0x11])
    f[60:64] = (2).to_bytes(4, "big")
    f[68:84] = uuid.uuid4().bytes
    f[64:68] = (~sum(f) & 0xFFFFFFFF).to_bytes(4, "big")
    return bytes(f)


class Blobs:
    def __init__(self, endpoint: str, key: str):
        self.ep = endpoint.rstrip("/")
        self.account = self.ep.rsplit("/", 1)[1]
        self.key = key

    def req(self, method, path, headers=None, body=b""):
        return fake_arm.blob_request(method, f"{self.ep}/{path}", self.account, self.key, headers, body)

    def available(self) -> bool:
        try:
            st, _, _ = self.req("GET", "?comp=list")
            return st == 200
        except OSError:
            return False

    def page_blob(self, path: str, disk_bytes: int, footer: bytes | None) -> str:
        size = disk_bytes + 512
        st, _, data = self.req("PUT", path, {"x-ms-blob-type": "PageBlob", "x-ms-blob-content-length": str(size)})
        assert st == 201, (st, data)
        if footer is not None:
            st, _, data = self.req("PUT", path + "?comp=page", {"x-ms-page-write": "update",
                                                               "x-ms-range": f"bytes={size - 512}-{size - 1}"}, footer)
            assert st == 201, (st, data)
        return f"{self.ep}/{path}"


# --- JWTs ------------------------------------------------------------------------------

def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_cert():
    import datetime as dt
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-arm-selftest")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    return key, cert.public_bytes(serialization.Encoding.PEM).decode(), b64url(hashlib.sha1(der).digest())


def sign_jwt(key, header: dict, claims: dict, alg: str = "RS256") -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    header = {"alg": alg, "typ": "JWT", **header}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}".encode()
    pad = padding.PKCS1v15() if alg == "RS256" else padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                                salt_length=32)
    return signing_input.decode() + "." + b64url(key.sign(signing_input, pad, hashes.SHA256()))


# --- the test --------------------------------------------------------------------------

def run(args) -> None:
    c = Client(args.endpoint)
    t = args.tenant
    arm_scope = "https://management.azure.com/.default"

    print("health / Entra")
    st, _ = c.control("GET", "/_fake/health")
    check(st == 200, "GET /_fake/health is 200")
    c.control("POST", "/_fake/config", {"lro_seconds": 0.3, "page_size": 2, "token_seconds": 3599, "lro_fail": []})
    st, doc = c.get_token(t, {"grant_type": "client_credentials", "client_id": args.client_id,
                              "client_secret": "wrong", "scope": arm_scope})
    check(st == 401 and doc.get("error") == "invalid_client" and
          doc.get("error_description", "").startswith("AADSTS7000215"), "wrong secret: 401 invalid_client AADSTS7000215",
          doc)
    st, doc = c.get_token(t, {"grant_type": "client_credentials", "client_id": args.client_id,
                              "client_secret": args.client_secret, "scope": "https://management.azure.com/user_impersonation"})
    check(st == 400 and doc.get("error") == "invalid_scope", "scope without /.default: 400 invalid_scope", doc)
    st, doc = c.get_token("99999999-0000-0000-0000-000000000000", {
        "grant_type": "client_credentials", "client_id": args.client_id, "client_secret": args.client_secret,
        "scope": arm_scope})
    check(st == 400 and "AADSTS90002" in doc.get("error_description", ""), "unknown tenant: 400 AADSTS90002", doc)
    st, doc = c.get_token(t, {"grant_type": "client_credentials", "client_id": args.client_id,
                              "client_secret": args.client_secret, "scope": "https://storage.azure.com/.default"})
    storage_token = doc.get("access_token")
    st, doc = c.get_token(t, {"grant_type": "client_credentials", "client_id": args.client_id,
                              "client_secret": args.client_secret, "scope": arm_scope})
    check(st == 200 and doc.get("token_type") == "Bearer" and doc.get("expires_in") == 3599 and doc.get("access_token"),
          "client secret: 200 Bearer token", doc)
    c.token = doc.get("access_token")

    print("ARM authentication and api-version")
    st, hd, doc = c.call("GET", f"/subscriptions/{SUB}/locations", api="2022-12-01", token=None)
    check(st == 401 and doc["error"]["code"] == "AuthenticationFailed" and "www-authenticate" in hd,
          "no token: 401 AuthenticationFailed + WWW-Authenticate", (st, doc))
    check("x-ms-request-id" in hd and "x-ms-correlation-request-id" in hd, "request-id headers on an error")
    st, hd, doc = c.call("GET", f"/subscriptions/{SUB}/locations", api="2022-12-01", token="not-a-token")
    check(st == 401 and doc["error"]["code"] == "InvalidAuthenticationToken", "bogus token: InvalidAuthenticationToken",
          doc)
    st, hd, doc = c.call("GET", f"/subscriptions/{SUB}/locations", api="2022-12-01", token=storage_token)
    check(st == 401 and doc["error"]["code"] == "InvalidAuthenticationTokenAudience",
          "storage-scoped token: InvalidAuthenticationTokenAudience", doc)
    st, hd, doc = c.call("GET", f"/subscriptions/{SUB}/locations", api=None)
    check(st == 400 and doc["error"]["code"] == "MissingApiVersionParameter", "no api-version: 400", doc)
    st, hd, doc = c.call("GET", "/subscriptions/not-a-guid/locations", api="2022-12-01")
    check(st == 400 and doc["error"]["code"] == "InvalidSubscriptionId", "malformed subscription: 400", doc)
    st, hd, doc = c.call("GET", f"/subscriptions/{SUB}/locations", api="2022-12-01")
    names = {v["name"]: v["metadata"]["regionType"] for v in (doc or {}).get("value", [])}
    check(st == 200 and names.get("eastus") == "Physical" and "Logical" in names.values() and
          all(v.get("displayName") and v.get("regionalDisplayName") for v in doc["value"]),
          "locations: physical + logical regions", doc)
    check("x-ms-request-id" in hd, "request-id header on success")

    print("resource groups")
    rg = "ch-selftest-" + uuid.uuid4().hex[:6]
    st, _, doc = c.call("PUT", rg_path(rg), {"location": "eastus", "tags": {"owner": "selftest"}}, api=API_RG)
    check(st == 201 and doc["properties"]["provisioningState"] == "Succeeded" and doc["name"] == rg,
          "PUT resource group: 201", doc)
    st, _, doc = c.call("PUT", rg_path(rg).replace("resourceGroups", "resourcegroups"), {"location": "East US"},
                        api=API_RG)
    check(st == 200, "PUT again (other casing, display-name location): 200", (st, doc))
    st, _, doc = c.call("PUT", rg_path(rg), {"location": "westeurope"}, api=API_RG)
    check(st == 409 and doc["error"]["code"] == "InvalidResourceGroupLocation", "location change: 409", doc)
    st, _, doc = c.call("GET", rg_path(rg.upper()).replace("resourceGroups", "RESOURCEGROUPS"), api=API_RG)
    check(st == 200 and doc["name"] == rg, "GET is case-insensitive", (st, doc))

    print("galleries")
    st, _, doc = c.call("PUT", gallery_path("no-such-rg", "g1"), {"location": "eastus"})
    check(st == 404 and doc["error"]["code"] == "ResourceGroupNotFound", "gallery in missing RG: 404", doc)
    st, _, doc = c.call("PUT", gallery_path(rg, "bad-name"), {"location": "eastus"})
    check(st == 400, "gallery name with a dash: 400", doc)
    gal = "chselftest"
    gdoc = {"location": "eastus", "properties": {"description": "selftest", "sharingProfile": {
        "permissions": "Community", "communityGalleryInfo": {
            "publisherUri": "https://example.org", "publisherContact": "ops@example.org",
            "eula": "https://example.org/eula", "publicNamePrefix": "chself"}}}}
    st, hd, doc = c.call("PUT", gallery_path(rg, gal), gdoc)
    check(st == 201 and doc["properties"]["provisioningState"] == "Creating" and "azure-asyncoperation" in hd,
          "PUT gallery: 201 Creating + Azure-AsyncOperation", (st, hd, doc))
    op = c.wait_op(hd.get("azure-asyncoperation", c.ep))
    check(op.get("status") == "Succeeded" and op.get("_saw_in_progress"), "gallery LRO: InProgress then Succeeded", op)
    st, _, doc = c.call("GET", gallery_path(rg, gal))
    info = doc["properties"]["sharingProfile"]["communityGalleryInfo"]
    public_name = info["publicNames"][0]
    check(st == 200 and doc["properties"]["provisioningState"] == "Succeeded" and public_name.startswith("chself-")
          and info["communityGalleryEnabled"] is False, "gallery GET: Succeeded, publicNames, not yet enabled", doc)
    st, hd, doc = c.call("PUT", gallery_path(rg, gal), gdoc)
    check(st == 200, "identical re-PUT of the gallery: 200", (st, doc))

    print("image definitions")
    st, _, doc = c.call("PUT", f"{gallery_path(rg, 'nogallery')}/images/def1", definition_doc("s1"))
    check(st == 404 and doc["error"]["code"] == "ParentResourceNotFound", "definition without gallery: 404", doc)
    st, _, doc = c.call("PUT", f"{gallery_path(rg, gal)}/images/bad", definition_doc("s9", architecture="Arm64",
                                                                                    hyperVGeneration="V1"))
    check(st == 400, "Arm64 with V1: 400", doc)
    bad = definition_doc("s9")
    del bad["properties"]["identifier"]["offer"]
    st, _, doc = c.call("PUT", f"{gallery_path(rg, gal)}/images/bad", bad)
    check(st == 400 and doc["error"]["code"] == "InvalidParameter", "identifier.offer missing: 400", doc)
    st, _, doc = c.call("PUT", f"{gallery_path(rg, gal)}/images/bad", definition_doc("s9", osType="Solaris"))
    check(st == 400, "osType Solaris: 400", doc)
    dpath = f"{gallery_path(rg, gal)}/images/def-gen2"
    st, hd, doc = c.call("PUT", dpath, definition_doc("gen2"))
    check(st == 201 and "azure-asyncoperation" in hd, "PUT definition: 201", (st, doc))
    c.wait_op(hd["azure-asyncoperation"])
    st, _, doc = c.call("PUT", f"{gallery_path(rg, gal)}/images/def-dup", definition_doc("gen2"))
    check(st == 409, "duplicate identifier in gallery: 409", doc)
    st, _, doc = c.call("PUT", dpath, definition_doc("gen2", osType="Windows"))
    check(st == 409 and doc["error"]["code"] == "PropertyChangeNotAllowed" and "osType" in doc["error"]["message"],
          "changing osType: 409 PropertyChangeNotAllowed", doc)
    st, _, doc = c.call("PUT", dpath, definition_doc("gen2-other"))
    check(st == 409 and doc["error"]["code"] == "PropertyChangeNotAllowed", "changing identifier: 409", doc)
    st, hd, doc = c.call("PUT", dpath, definition_doc("gen2", description="new text"))
    check(st == 200 and doc["properties"]["provisioningState"] == "Updating", "changing description: 200 Updating",
          (st, doc))
    c.wait_op(hd.get("azure-asyncoperation", c.ep))
    for i in range(3):
        st, hd, _ = c.call("PUT", f"{gallery_path(rg, gal)}/images/page{i}", definition_doc(f"page{i}"))
        c.wait_op(hd.get("azure-asyncoperation", c.ep))
    names, url, pages = [], f"{gallery_path(rg, gal)}/images", 0
    while url and pages < 10:
        st, _, doc = c.call("GET", url, api=None if "api-version" in url else API_CG)
        names += [v["name"] for v in doc.get("value", [])]
        url, pages = doc.get("nextLink"), pages + 1
    check(sorted(names) == sorted(["def-gen2", "page0", "page1", "page2"]) and pages == 2,
          "definition list pages via nextLink", (names, pages))
    st, hd, doc = c.call("DELETE", f"{gallery_path(rg, gal)}/images/page2")
    check(st == 202 and "location" in hd and "azure-asyncoperation" in hd, "DELETE definition: 202", (st, hd))
    st, _, doc = c.call("GET", f"{gallery_path(rg, gal)}/images/page2")
    check(st == 200 and doc["properties"]["provisioningState"] == "Deleting", "deleting definition shows Deleting",
          doc)
    c.wait_op(hd["azure-asyncoperation"])
    st, _, doc = c.call("GET", f"{gallery_path(rg, gal)}/images/page2")
    check(st == 404, "deleted definition: 404", (st, doc))

    print("LRO failure injection")
    c.control("POST", "/_fake/config", {"lro_fail": [{"match": "images/doomed$", "code": "InternalExecutionError",
                                                      "times": 1}]})
    st, hd, doc = c.call("PUT", f"{gallery_path(rg, gal)}/images/doomed", definition_doc("doomed"))
    op = c.wait_op(hd.get("azure-asyncoperation", c.ep))
    check(op.get("status") == "Failed" and op.get("error", {}).get("code") == "InternalExecutionError",
          "injected LRO failure: operation Failed with error", op)
    st, _, doc = c.call("GET", f"{gallery_path(rg, gal)}/images/doomed")
    check(doc["properties"]["provisioningState"] == "Failed", "failed resource shows provisioningState Failed", doc)
    st, hd, doc = c.call("PUT", f"{gallery_path(rg, gal)}/images/doomed", definition_doc("doomed"))
    op = c.wait_op(hd.get("azure-asyncoperation", c.ep))
    check(st == 200 and op.get("status") == "Succeeded", "identical re-PUT of a Failed resource retries it", (st, op))
    c.call("DELETE", f"{gallery_path(rg, gal)}/images/doomed")

    print("image versions (no blob needed)")
    for bad_name in ("1.0", "1.0.0-r1", "1.0.2147483648", "v1.0.0"):
        st, _, doc = c.call("PUT", f"{dpath}/versions/{bad_name}", {"location": "eastus", "properties": {
            "storageProfile": {"source": {"id": "/x"}}}})
        check(st == 400 and doc["error"]["code"] == "InvalidParameter", f"version name {bad_name!r}: 400", doc)
    st, _, doc = c.call("PUT", f"{gallery_path(rg, gal)}/images/nodef/versions/1.0.0",
                        {"location": "eastus", "properties": {"storageProfile": {}}})
    check(st == 404 and doc["error"]["code"] == "ParentResourceNotFound", "version without definition: 404", doc)
    missing_img = f"{rg_path(rg)}/providers/Microsoft.Compute/images/nope"
    st, _, doc = c.call("PUT", f"{dpath}/versions/9.9.9", {"location": "eastus", "properties": {
        "storageProfile": {"source": {"id": missing_img}}}})
    check(st == 404, "version from a missing managed image: 404", doc)

    blobs = Blobs(args.blob_endpoint, args.account_key)
    if blobs.available():
        blob_cases(c, blobs, rg, gal, dpath, public_name)
    else:
        print(f"  SKIP blob-dependent cases: no Azurite answers at {args.blob_endpoint}")

    st, _, doc = c.call("DELETE", gallery_path(rg, gal))
    check(st == 409 and doc["error"]["code"] == "CannotDeleteResource", "DELETE gallery with definitions: 409", doc)

    print("faults")
    st, _ = c.control("POST", "/_fake/faults?rule=selftest", {
        "match": f"(?i)^GET /subscriptions/{SUB}/resourcegroups/{rg}$",
        "sequence": ["throttle", "status500", "drop", "drop_after", "status503"]})
    check(st == 200, "POST /_fake/faults")
    st, hd, doc = c.call("GET", rg_path(rg), api=API_RG)
    check(st == 429 and hd.get("retry-after") == "1" and doc["error"]["code"] == "TooManyRequests",
          "throttle: 429 TooManyRequests + Retry-After", (st, hd, doc))
    st, hd, doc = c.call("GET", rg_path(rg), api=API_RG)
    check(st == 500 and doc["error"]["code"] == "InternalServerError", "status500", (st, doc))
    for kind in ("drop", "drop_after"):
        try:
            st, _, _ = c.call("GET", rg_path(rg), api=API_RG)
            check(False, f"{kind}: connection closed without answer", st)
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            check(True, f"{kind}: connection closed without answer ({type(e).__name__})")
    st, _, _ = c.call("GET", rg_path(rg), api=API_RG)
    check(st == 503, "status503", st)
    st, _, _ = c.call("GET", rg_path(rg), api=API_RG)
    check(st == 200, "after the sequence: 200", st)
    st, stats = c.control("GET", "/_fake/stats")
    check(stats["faults_by_rule"].get("selftest") == {"throttle": 1, "status500": 1, "drop": 1, "drop_after": 1,
                                                      "status503": 1} and stats["requests"].get("GET resourceGroup"),
          "stats count faults and requests by route", stats)
    c.control("DELETE", "/_fake/faults?rule=selftest")

    print("client assertion (certificate) and federated credentials")
    key, pem, x5t = make_cert()
    cert_client = str(uuid.uuid4())
    st, doc = c.control("POST", "/_fake/certificates", {"client_id": cert_client, "pem": pem})
    check(st == 200 and doc.get("x5t") == x5t, "register certificate", doc)
    token_url = f"{c.ep}/{t}/oauth2/v2.0/token"
    now = int(time.time())
    claims = {"aud": token_url, "iss": cert_client, "sub": cert_client, "jti": str(uuid.uuid4()), "nbf": now,
              "exp": now + 600}

    def assertion_token(assertion: str, client: str = cert_client):
        return c.get_token(t, {"grant_type": "client_credentials", "client_id": client, "scope": arm_scope,
                               "client_assertion_type": fake_arm.JWT_BEARER, "client_assertion": assertion})
    st, doc = assertion_token(sign_jwt(key, {"x5t": x5t}, claims))
    check(st == 200 and doc.get("access_token"), "RS256 assertion: token", doc)
    st2, _, _ = c.call("GET", f"/subscriptions/{SUB}/locations", api="2022-12-01", token=doc.get("access_token"))
    check(st2 == 200, "assertion token works on ARM", st2)
    st, doc = assertion_token(sign_jwt(key, {"x5t#S256": "ignored", "x5t": x5t}, claims, alg="PS256"))
    check(st == 200, "PS256 assertion: token", doc)
    other_key, _, _ = make_cert()
    st, doc = assertion_token(sign_jwt(other_key, {"x5t": x5t}, claims))
    check(st == 401 and "AADSTS700027" in doc.get("error_description", ""), "wrong signing key: 401 AADSTS700027", doc)
    st, doc = assertion_token(sign_jwt(key, {"x5t": x5t}, {**claims, "aud": "https://elsewhere/token"}))
    check(st == 401, "wrong aud: 401", doc)
    st, doc = assertion_token(sign_jwt(key, {"x5t": x5t}, {**claims, "exp": now - 1000, "nbf": now - 2000}))
    check(st == 401 and "AADSTS700024" in doc.get("error_description", ""), "expired assertion: 401", doc)
    st, doc = assertion_token(sign_jwt(key, {"x5t": x5t}, {**claims, "sub": "someone-else"}))
    check(st == 401, "sub != client id: 401", doc)
    fed_client = str(uuid.uuid4())
    c.control("POST", "/_fake/federated", {"client_id": fed_client, "issuer": "https://token.actions.example",
                                           "subject": "repo:x/y:ref:refs/heads/main"})
    fed = {"iss": "https://token.actions.example", "sub": "repo:x/y:ref:refs/heads/main",
           "aud": "api://AzureADTokenExchange", "exp": now + 600, "iat": now}
    st, doc = assertion_token(sign_jwt(other_key, {}, fed), fed_client)
    check(st == 200 and doc.get("access_token"), "federated assertion: token", doc)
    st, doc = assertion_token(sign_jwt(other_key, {}, {**fed, "sub": "repo:x/y:pull_request"}), fed_client)
    check(st in (400, 401) and "AADSTS70021" in doc.get("error_description", ""), "federated wrong subject: AADSTS70021",
          doc)

    print("token expiry")
    c.control("POST", "/_fake/config", {"token_seconds": 1})
    st, doc = c.get_token(t, {"grant_type": "client_credentials", "client_id": args.client_id,
                              "client_secret": args.client_secret, "scope": arm_scope})
    c.control("POST", "/_fake/config", {"token_seconds": 3599})
    time.sleep(1.3)
    st, _, doc = c.call("GET", f"/subscriptions/{SUB}/locations", api="2022-12-01", token=doc["access_token"])
    check(st == 401 and doc["error"]["code"] == "ExpiredAuthenticationToken", "expired token: 401", doc)

    print("state and resource-group delete")
    st, state = c.control("GET", "/_fake/state")
    ids = [i.lower() for kind in ("resourceGroup", "gallery", "galleryImage", "galleryImageVersion", "image",
                                  "storageAccount") for i in state.get(kind, {})]
    check(st == 200 and len(ids) == len(set(ids)) and any(i.endswith("/images/def-gen2") for i in ids),
          "GET /_fake/state: resources, no duplicates", ids)
    st, hd, _ = c.call("DELETE", rg_path(rg), api=API_RG)
    check(st == 202 and "location" in hd, "DELETE resource group: 202 + Location", (st, hd))
    deadline, st = time.time() + 10, 202
    while st == 202 and time.time() < deadline:
        time.sleep(0.1)
        st, _, _ = c.call("GET", hd["location"], api=None)
    check(st == 200, "RG delete poll: 202 then 200", st)
    st, _, doc = c.call("GET", rg_path(rg), api=API_RG)
    check(st == 404 and doc["error"]["code"] == "ResourceGroupNotFound", "deleted RG: 404", doc)
    st, state = c.control("GET", "/_fake/state")
    check(not any(rg.lower() in i.lower() for kind in ("gallery", "galleryImage", "galleryImageVersion")
                  for i in state.get(kind, {})), "RG delete removed its resources", state)


def blob_cases(c: Client, blobs: Blobs, rg: str, gal: str, dpath: str, public_name: str) -> None:
    print("storage account")
    st, hd, doc = c.call("PUT", f"{rg_path(rg)}/providers/Microsoft.Storage/storageAccounts/Bad_Name",
                         {"location": "eastus", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}, api=API_ST)
    check(st == 400 and doc["error"]["code"] == "AccountNameInvalid", "storage name Bad_Name: 400", doc)
    acct_path = f"{rg_path(rg)}/providers/Microsoft.Storage/storageAccounts/{blobs.account}"
    st, hd, doc = c.call("PUT", acct_path, {"location": "eastus", "sku": {"name": "Standard_LRS"},
                                            "kind": "StorageV2"}, api=API_ST)
    check(st == 202 and "location" in hd and hd.get("retry-after") == "1", "PUT storage account: 202 + Location", (st, hd))
    polls = []
    for _ in range(50):
        pst, _, pdoc = c.call("GET", hd["location"], api=None)
        polls.append(pst)
        if pst != 202:
            break
        time.sleep(0.1)
    check(polls[0] == 202 and polls[-1] == 200 and pdoc["properties"]["primaryEndpoints"]["blob"] ==
          blobs.ep + "/", "storage poll: 202 then 200 with the emulator blob endpoint", (polls, pdoc))
    acct_id = pdoc["id"]

    print("blobs")
    st, _, data = blobs.req("PUT", "vhds?restype=container")
    check(st in (201, 409), "container", (st, data))
    good = blobs.page_blob("vhds/good.vhd", 2 * MIB, vhd_footer(2 * MIB))
    odd = blobs.page_blob("vhds/odd.vhd", 2 * MIB + 512, vhd_footer(2 * MIB + 512))
    nofooter = blobs.page_blob("vhds/raw.vhd", 2 * MIB, None)
    blobs.req("PUT", "vhds/block.vhd", {"x-ms-blob-type": "BlockBlob"}, b"x" * 1024)

    def vdoc(uri, **pp):
        return {"location": "eastus", "properties": {
            "publishingProfile": {"targetRegions": [{"name": "East US", "regionalReplicaCount": 1},
                                                    {"name": "westeurope"}], **pp},
            "storageProfile": {"osDiskImage": {"hostCaching": "ReadOnly",
                                               "source": {"uri": uri, "storageAccountId": acct_id}}}}}
    for what, uri, word in (("missing blob", f"{blobs.ep}/vhds/none.vhd", "does not exist"),
                            ("block blob", f"{blobs.ep}/vhds/block.vhd", "page blob"),
                            ("size not whole MiB", odd, "whole number"),
                            ("no VHD footer", nofooter, "conectix")):
        st, _, doc = c.call("PUT", f"{dpath}/versions/0.0.1", vdoc(uri))
        check(st == 400 and doc["error"]["code"] == "InvalidParameter" and word in doc["error"]["message"],
              f"version from {what}: 400", doc)
    st, _, doc = c.call("PUT", f"{dpath}/versions/0.0.2", {**vdoc(good), "properties": {
        **vdoc(good)["properties"], "publishingProfile": {"targetRegions": [{"name": "westeurope"}]}}})
    check(st == 400 and "target regions" in doc["error"]["message"], "targetRegions without own location: 400", doc)
    st, _, doc = c.call("PUT", f"{dpath}/versions/0.0.3", {**vdoc(good), "location": "westeurope"})
    check(st == 400, "version location != gallery location: 400", doc)

    print("version from VHD")
    vpath = f"{dpath}/versions/1.0.0"
    st, hd, doc = c.call("PUT", vpath, vdoc(good, endOfLifeDate="2030-01-01T00:00:00Z"))
    check(st == 201 and doc["properties"]["provisioningState"] == "Creating", "PUT version: 201 Creating", (st, doc))
    op_url = hd.get("azure-asyncoperation", c.ep)
    st2, _, doc2 = c.call("PUT", vpath, vdoc(good, endOfLifeDate="2030-01-01T00:00:00Z"))
    check(st2 == 200, "identical re-PUT while Creating: 200", (st2, doc2))
    op = c.wait_op(op_url)
    check(op.get("status") == "Succeeded" and op.get("_saw_in_progress"), "version LRO", op)
    st, _, doc = c.call("GET", vpath, extra_query="&$expand=ReplicationStatus")
    rs = doc["properties"].get("replicationStatus", {})
    check(st == 200 and doc["properties"]["provisioningState"] == "Succeeded" and rs.get("aggregatedState") ==
          "Completed" and len(rs.get("summary", [])) == 2, "version GET with replicationStatus", doc)
    check({r["name"] for r in doc["properties"]["publishingProfile"]["targetRegions"]} == {"East US", "West Europe"},
          "targetRegions come back as display names", doc)
    st, _, doc = c.call("PUT", vpath, vdoc(odd))
    check(st == 409 and doc["error"]["code"] == "PropertyChangeNotAllowed", "changing the source uri: 409", doc)
    st, hd, doc = c.call("PATCH", vpath, {"properties": {"publishingProfile": {"excludeFromLatest": True}}})
    check(st == 200 and doc["properties"]["publishingProfile"]["excludeFromLatest"] is True,
          "PATCH excludeFromLatest: 200", (st, doc))
    c.wait_op(hd.get("azure-asyncoperation", c.ep))
    st, _, doc = c.call("PATCH", vpath, {"properties": {"storageProfile": {"osDiskImage": {"source": {
        "uri": odd, "storageAccountId": acct_id}}}}})
    check(st == 409 and doc["error"]["code"] == "PropertyChangeNotAllowed", "PATCH storageProfile: 409", doc)

    print("managed image and version from it")
    ipath = f"{rg_path(rg)}/providers/Microsoft.Compute/images/img-gen2"
    st, hd, doc = c.call("PUT", ipath, {"location": "eastus", "properties": {
        "hyperVGeneration": "V2", "storageProfile": {"osDisk": {"osType": "Linux", "osState": "Generalized",
                                                                "blobUri": good, "caching": "ReadWrite"}}}},
                         api=API_IMG)
    check(st == 201 and "azure-asyncoperation" in hd, "PUT managed image: 201", (st, doc))
    c.wait_op(hd.get("azure-asyncoperation", c.ep))
    st, _, doc = c.call("GET", ipath, api=API_IMG)
    image_id = doc.get("id")
    check(st == 200 and doc["properties"]["provisioningState"] == "Succeeded", "managed image Succeeded", doc)
    st, hd, doc = c.call("PUT", f"{dpath}/versions/2.0.0", {"location": "eastus", "properties": {
        "publishingProfile": {"targetRegions": [{"name": "eastus"}]}, "storageProfile": {"source": {"id": image_id}}}})
    check(st == 201, "version from managed image: 201", doc)
    c.wait_op(hd.get("azure-asyncoperation", c.ep))
    st, hd, doc = c.call("PUT", f"{dpath}/versions/3.0.0", vdoc(good))
    c.wait_op(hd.get("azure-asyncoperation", c.ep))
    names, url = [], f"{dpath}/versions"
    while url:
        st, _, doc = c.call("GET", url, api=None if "api-version" in url else API_CG)
        names += [v["name"] for v in doc.get("value", [])]
        url = doc.get("nextLink")
    check(sorted(names) == ["1.0.0", "2.0.0", "3.0.0"], "version list over pages", names)

    print("community sharing")
    cpath = (f"/subscriptions/{SUB}/providers/Microsoft.Compute/locations/eastus/communityGalleries/{public_name}"
             f"/images/def-gen2/versions/1.0.0")
    st, _, doc = c.call("GET", cpath)
    check(st == 404, "community GET before EnableCommunity: 404", (st, doc))
    st, hd, doc = c.call("POST", f"{gallery_path(rg, gal)}/share", {"operationType": "EnableCommunity"})
    check(st == 202 and "location" in hd, "share EnableCommunity: 202 + Location", (st, hd, doc))
    deadline, pst = time.time() + 10, 202
    while pst == 202 and time.time() < deadline:
        time.sleep(0.1)
        pst, _, pdoc = c.call("GET", hd["location"], api=None)
    check(pst == 200 and pdoc.get("operationType") == "EnableCommunity", "share poll: 200", (pst, pdoc))
    st, _, doc = c.call("GET", cpath)
    check(st == 200 and doc["identifier"]["uniqueId"] ==
          f"/CommunityGalleries/{public_name}/Images/def-gen2/Versions/1.0.0" and
          doc["properties"].get("endOfLifeDate") == "2030-01-01T00:00:00Z" and
          doc["properties"].get("excludeFromLatest") is True, "community version GET", doc)
    st, _, doc = c.call("GET", cpath.replace("/locations/eastus/", "/locations/japaneast/"))
    check(st == 404, "community GET outside target regions: 404", (st, doc))
    st, _, doc = c.call("DELETE", dpath)
    check(st == 409 and doc["error"]["code"] == "CannotDeleteResource" and "versions/1.0.0" in doc["error"]["message"],
          "DELETE definition with versions: 409 CannotDeleteResource", doc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoint", help="a running fake_arm.py; without it one is started on --port")
    ap.add_argument("--port", type=int, default=48201)
    azurite = os.environ.get("CLOUD_HELPER_AZURITE_URL", "http://127.0.0.1:48210")
    if not azurite.rstrip("/").endswith("/devstoreaccount1"):
        azurite = azurite.rstrip("/") + "/devstoreaccount1"
    ap.add_argument("--blob-endpoint", default=azurite)
    ap.add_argument("--account-key", default=AZURITE_KEY)
    ap.add_argument("--tenant", default=fake_arm.DEFAULT_TENANT)
    ap.add_argument("--client-id", default=fake_arm.DEFAULT_CLIENT_ID)
    ap.add_argument("--client-secret", default=fake_arm.DEFAULT_SECRET)
    args = ap.parse_args()
    proc = None
    if not args.endpoint:
        args.endpoint = f"http://127.0.0.1:{args.port}"
        proc = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_arm.py"),
                                 "--port", str(args.port), "--blob-endpoint", args.blob_endpoint,
                                 "--account-key", args.account_key, "--tenant", args.tenant,
                                 "--client-id", args.client_id, "--client-secret", args.client_secret])
        for _ in range(100):
            try:
                urllib.request.urlopen(args.endpoint + "/_fake/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
    try:
        run(args)
    except Exception as e:  # a crash is a failure with its cause, not a traceback to dig through
        import traceback
        traceback.print_exc()
        failures.append(f"crashed: {type(e).__name__}: {e}")
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"\n{len(failures)} failure(s)" + ("".join(f"\n  - {f}" for f in failures) if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
