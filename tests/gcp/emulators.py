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

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"
DEFAULT_BASE = 48020
PROJECT = "fake-project"
SA_EMAIL = f"cloud-helper-test@{PROJECT}.iam.gserviceaccount.com"
STS_AUDIENCE = ("//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/"
                "fake-pool/providers/fake-provider")


def url(port: int) -> str:
    return f"http://{HOST}:{port}"


def env_lines(base: int, d: str) -> str:
    return (f"CLOUD_HELPER_GCP_ENDPOINT={url(base)}\n"
            f"CLOUD_HELPER_GCP_SA_JSON={d}/sa.json\n"
            f"CLOUD_HELPER_GCP_USER_JSON={d}/user.json\n"
            f"CLOUD_HELPER_GCP_EXTERNAL_JSON={d}/external.json\n")


def port_busy(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((HOST, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(url(port) + "/_fake/health", timeout=1) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def read_pid(d: str) -> int | None:
    try:
        with open(os.path.join(d, "fake_gcp.pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def ours(pid: int, port: int) -> bool:
    """The pid is alive and still the process we started (pids get reused)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return b"fake_gcp.py" in b" ".join(argv) and str(port).encode() in argv


def configured_base(d: str) -> int | None:
    try:
        with open(os.path.join(d, "ports.json")) as f:
            return int(json.load(f)["base"])
    except (OSError, ValueError, KeyError):
        return None


def stop(d: str, quiet: bool = False) -> int:
    base = configured_base(d) or DEFAULT_BASE
    pid = read_pid(d)
    stopped = None
    if pid is not None and ours(pid, base):
        try:
            os.killpg(pid, signal.SIGTERM)
            stopped = pid
        except ProcessLookupError:
            pass
        deadline = time.time() + 5
        while ours(pid, base) and time.time() < deadline:
            time.sleep(0.02)
        if ours(pid, base):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for name in ("fake_gcp.pid", "env"):
        try:
            os.unlink(os.path.join(d, name))
        except FileNotFoundError:
            pass
    if not quiet:
        print("gcp emulators: stopped " + (f"fake_gcp (pid {stopped})" if stopped else "nothing (none running)"))
    return 0


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


def start(d: str, base: int) -> int:
    t0 = time.time()
    os.makedirs(d, exist_ok=True)
    d = os.path.abspath(d)
    if read_pid(d):
        stop(d, quiet=True)
    if port_busy(base):
        print(f"gcp emulators: port {HOST}:{base} (fake_gcp) busy: stop what holds it (`python3 "
              f"{os.path.abspath(__file__)} stop --dir DIR` for an earlier start, or see `ss -ltnp`) or use another "
              f"port (--port-base N; CMake -DCLOUD_HELPER_GCP_PORT_BASE=N)", file=sys.stderr)
        return 1
    with open(os.path.join(d, "ports.json"), "w") as f:
        json.dump({"base": base}, f)
    try:
        make_identities(d, base)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"gcp emulators: making the test key with openssl failed: {e}", file=sys.stderr)
        return 1
    state = os.path.join(d, "state")
    os.makedirs(state, exist_ok=True)
    try:
        os.unlink(os.path.join(state, "requests.log"))
    except FileNotFoundError:
        pass
    log = open(os.path.join(d, "fake_gcp.log"), "w")
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_gcp.py"), "--host", HOST, "--port", str(base),
                          "--state-dir", state, "--service-account", os.path.join(d, "sa.json"),
                          "--modulus-file", os.path.join(d, "sa.modulus")],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=d,
                         env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    log.close()
    with open(os.path.join(d, "fake_gcp.pid"), "w") as f:
        f.write(f"{p.pid}\n")
    deadline = time.time() + 30
    while not answers(base):
        if p.poll() is not None or time.time() > deadline:
            with open(os.path.join(d, "fake_gcp.log"), errors="replace") as f:
                tail = "".join(f.readlines()[-15:])
            print(f"gcp emulators: fake_gcp did not come up:\n{tail}", file=sys.stderr)
            stop(d, quiet=True)
            return 1
        time.sleep(0.05)
    with open(os.path.join(d, "env"), "w") as f:
        f.write(env_lines(base, d))
    print(f"gcp emulators: up in {time.time() - t0:.1f} s (logs, pid, env, test credentials in {d}):")
    print("".join("  " + line + "\n" for line in env_lines(base, d).splitlines()), end="")
    return 0


def status(d: str) -> int:
    base = configured_base(d)
    if base is None:
        print(f"gcp emulators: not started in {d}")
        return 3
    pid = read_pid(d)
    ok = pid is not None and ours(pid, base) and answers(base)
    print(f"  fake_gcp     {url(base)}  pid {pid or '-'}  {'up' if ok else 'DOWN'}")
    return 0 if ok else 3


def main() -> int:
    ap = argparse.ArgumentParser(description="fake Google Cloud for the tests (see tests/gcp/README.md)")
    ap.add_argument("action", choices=["start", "stop", "status"])
    ap.add_argument("--dir", required=True, help="state directory: pid file, log, env, test credentials")
    ap.add_argument("--port-base", type=int, default=DEFAULT_BASE, help="the fake's port")
    args = ap.parse_args()
    d = os.path.abspath(args.dir)
    if args.action == "start":
        return start(d, args.port_base)
    if args.action == "stop":
        return stop(d) if os.path.isdir(d) else print(f"gcp emulators: stopped nothing ({d} does not exist)") or 0
    return status(d)


if __name__ == "__main__":
    sys.exit(main())
