#!/usr/bin/env python3
"""Starts and stops the fake Google Cloud the tests run against.

    python3 tests/gcp/emulators.py start  --dir DIR [--port-base 48020]
    python3 tests/gcp/emulators.py status --dir DIR
    python3 tests/gcp/emulators.py stop   --dir DIR

On 127.0.0.1:
  base+0  fake_gcp.py: OAuth2, STS, IAM Credentials, metadata server, Cloud Storage JSON API,
          Compute images                                        CLOUD_HELPER_GCP_ENDPOINT

`start` makes the test identities in DIR (a fresh RSA key each start, with openssl):
  sa.key, sa.modulus     the service account's private key and its modulus (what the fake checks
                         JWT signatures with)
  sa.json                service_account credentials, token_uri = the fake   CLOUD_HELPER_GCP_SA_JSON
  user.json              authorized_user credentials (refresh token)         CLOUD_HELPER_GCP_USER_JSON
  external.json          external_account (workload identity federation): subject token from
                         DIR/subject_token, STS and impersonation at the fake
                                                                             CLOUD_HELPER_GCP_EXTERNAL_JSON
and writes DIR/env (KEY=VALUE lines), DIR/fake_gcp.pid and DIR/fake_gcp.log (DIR/state holds
requests.log), then waits until the fake answers. A busy port fails the start naming it. `stop`
ends exactly the process its pid file names (started in its own session) and is safe to repeat.
Exit status: 0 done, 1 failed, 3 (status) not running.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import emulator_common as ec  # noqa: E402

FAKE = os.path.join(HERE, "fake_gcp.py")
PROJECT = "fake-project"
SA_EMAIL = f"cloud-helper-test@{PROJECT}.iam.gserviceaccount.com"
STS_AUDIENCE = ("//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/"
                "fake-pool/providers/fake-provider")
url = ec.url


def components(base: int, d: str) -> list[ec.Component]:
    return [ec.Component("fake_gcp", base, [sys.executable, FAKE, "--host", ec.HOST, "--port", str(base),
                                            "--state-dir", os.path.join(d, "state"),
                                            "--service-account", os.path.join(d, "sa.json"),
                                            "--modulus-file", os.path.join(d, "sa.modulus")],
                         marks=[FAKE, str(base)])]


def env_lines(base: int, d: str) -> str:
    return (f"CLOUD_HELPER_GCP_ENDPOINT={url(base)}\n"
            f"CLOUD_HELPER_GCP_SA_JSON={d}/sa.json\n"
            f"CLOUD_HELPER_GCP_USER_JSON={d}/user.json\n"
            f"CLOUD_HELPER_GCP_EXTERNAL_JSON={d}/external.json\n")


def make_identities(d: str, base: int) -> None:
    key, modulus = os.path.join(d, "sa.key"), os.path.join(d, "sa.modulus")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with open(modulus, "w") as f:
        subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"], check=True, stdout=f,
                       stderr=subprocess.PIPE)
    with open(key) as f:
        pem = f.read()
    files = {
        "sa.json": {"type": "service_account", "project_id": PROJECT, "private_key_id": secrets.token_hex(20),
                    "private_key": pem, "client_email": SA_EMAIL, "client_id": "100000000000000000001",
                    "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": url(base) + "/token",
                    "universe_domain": "googleapis.com"},
        "user.json": {"type": "authorized_user", "client_id": "fake-client-id", "client_secret": "fake-client-secret",
                      "refresh_token": "fake-refresh-token", "quota_project_id": PROJECT,
                      "token_uri": url(base) + "/token"},
        "external.json": {"type": "external_account", "audience": STS_AUDIENCE,
                          "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                          "token_url": url(base) + "/v1/token",
                          "service_account_impersonation_url":
                              url(base) + f"/v1/projects/-/serviceAccounts/{SA_EMAIL}:generateAccessToken",
                          "credential_source": {"file": os.path.join(d, "subject_token")}},
    }
    for name, doc in files.items():
        path = os.path.join(d, name)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump(doc, f, indent=2)
    with open(os.path.join(d, "subject_token"), "w") as f:
        f.write("fake-oidc-subject-token\n")


def prepare(d: str, base: int) -> None:
    try:
        make_identities(d, base)
    except (OSError, subprocess.CalledProcessError) as e:
        raise RuntimeError(f"making the test key with openssl failed: {e}") from e
    state = os.path.join(d, "state")
    os.makedirs(state, exist_ok=True)
    ec.unlink(os.path.join(state, "requests.log"))


CLOUD = ec.Cloud(title="gcp emulators", description="fake Google Cloud for the tests (see tests/gcp/README.md)",
                 default_base=48020, cmake_var="CLOUD_HELPER_GCP_PORT_BASE", components=components,
                 env=env_lines, prepare=prepare, dir_help="state directory: pid file, log, env, test credentials",
                 base_help="the fake's port")

if __name__ == "__main__":
    sys.exit(ec.main(CLOUD))
