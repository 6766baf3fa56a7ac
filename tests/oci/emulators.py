#!/usr/bin/env python3
"""Starts and stops the fake OCI service the tests run against.

    python3 tests/oci/emulators.py start  --dir DIR [--port-base 48320]
    python3 tests/oci/emulators.py status --dir DIR
    python3 tests/oci/emulators.py stop   --dir DIR

`start` makes the test API keys with the openssl CLI (a 2048-bit RSA key, the
same key encrypted with a pass phrase, and a second key the fake does not
know), writes an OCI config file DIR/config (profiles DEFAULT, ENCRYPTED,
WRONGKEY; tenancy, user, fingerprint = MD5 of the public key's DER, as OCI
computes it, region us-ashburn-1), starts tests/oci/fake_oci.py on
127.0.0.1:BASE with Debian's /usr/bin/python3 (it needs python3-cryptography)
and the public key registered, and writes DIR/env:

  CLOUD_HELPER_OCI_ENDPOINT=http://127.0.0.1:BASE   (both services)
  CLOUD_HELPER_OCI_CONFIG=DIR/config

`stop` ends exactly the process its pid file names and is safe to repeat.
Exit status: 0 done, 1 failed, 3 (status) not running.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"
DEFAULT_BASE = 48320
TENANCY = "ocid1.tenancy.oc1..aaaaaaaafaketenancy"
USER = "ocid1.user.oc1..aaaaaaaafakeuser"
PASS_PHRASE = "fake-oci-pass-phrase"
PYTHON = "/usr/bin/python3"


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], input=stdin, check=True, capture_output=True).stdout


def make_keys(d: str) -> str:
    """The key files and config; returns the fingerprint of the known key."""
    key = os.path.join(d, "oci_api_key.pem")
    if not os.path.exists(key):
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
        openssl("pkey", "-in", key, "-pubout", "-out", os.path.join(d, "oci_api_key_public.pem"))
        openssl("pkey", "-in", key, "-aes256", "-passout", "pass:" + PASS_PHRASE,
                "-out", os.path.join(d, "oci_api_key_encrypted.pem"))
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                "-out", os.path.join(d, "wrong_key.pem"))
    der = openssl("pkey", "-in", key, "-pubout", "-outform", "DER")
    import hashlib
    digest = hashlib.md5(der).hexdigest()
    fingerprint = ":".join(digest[i:i + 2] for i in range(0, 32, 2))
    with open(os.path.join(d, "config"), "w") as f:
        f.write(f"[DEFAULT]\nuser={USER}\nfingerprint={fingerprint}\nkey_file={key}\ntenancy={TENANCY}\n"
                f"region=us-ashburn-1\n\n"
                f"[ENCRYPTED]\nkey_file={os.path.join(d, 'oci_api_key_encrypted.pem')}\npass_phrase={PASS_PHRASE}\n\n"
                f"[WRONGKEY]\nkey_file={os.path.join(d, 'wrong_key.pem')}\n")
    return fingerprint


def url(port: int) -> str:
    return f"http://{HOST}:{port}"


def env_lines(base: int, d: str) -> str:
    return f"CLOUD_HELPER_OCI_ENDPOINT={url(base)}\nCLOUD_HELPER_OCI_CONFIG={os.path.join(d, 'config')}\n"


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


def read_state(d: str) -> tuple[int | None, int | None]:
    try:
        with open(os.path.join(d, "fake_oci.json")) as f:
            doc = json.load(f)
        return int(doc["pid"]), int(doc["port"])
    except (OSError, ValueError, KeyError):
        return None, None


def ours(pid: int, port: int) -> bool:
    """The pid is alive and still the process we started (pids get reused)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return str(port).encode() in argv and any(a.endswith(b"fake_oci.py") for a in argv)


def stop(d: str, quiet: bool = False) -> int:
    pid, port = read_state(d)
    stopped = False
    if pid is not None and ours(pid, port):
        try:
            os.killpg(pid, signal.SIGTERM)
            stopped = True
        except ProcessLookupError:
            pass
        deadline = time.time() + 5
        while ours(pid, port) and time.time() < deadline:
            time.sleep(0.02)
        if ours(pid, port):
            os.killpg(pid, signal.SIGKILL)
    for name in ("fake_oci.json", "env"):
        try:
            os.unlink(os.path.join(d, name))
        except FileNotFoundError:
            pass
    if not quiet:
        print("oci emulators: stopped " + (f"fake_oci (pid {pid})" if stopped else "nothing (none running)"))
    return 0


def start(d: str, base: int) -> int:
    t0 = time.time()
    os.makedirs(d, exist_ok=True)
    if read_state(d)[0] is not None:
        stop(d, quiet=True)
    try:
        subprocess.run([PYTHON, "-c", "import cryptography"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        print(f"oci emulators: {PYTHON} cannot import cryptography: run scripts/setup.sh "
              "(apt-get install python3-cryptography)", file=sys.stderr)
        return 1
    if port_busy(base):
        print(f"oci emulators: port {HOST}:{base} busy: stop what holds it (`python3 {os.path.abspath(__file__)} "
              f"stop --dir DIR`) or use another (--port-base N; CMake -DCLOUD_HELPER_OCI_PORT_BASE=N)", file=sys.stderr)
        return 1
    try:
        fingerprint = make_keys(d)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"oci emulators: making the test keys with openssl failed: {e}", file=sys.stderr)
        return 1
    key_id = f"{TENANCY}/{USER}/{fingerprint}"
    log = open(os.path.join(d, "fake_oci.log"), "w")
    p = subprocess.Popen([PYTHON, os.path.join(HERE, "fake_oci.py"), "--host", HOST, "--port", str(base),
                          "--key", f"{key_id}={os.path.join(d, 'oci_api_key_public.pem')}"],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                         cwd=d, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    log.close()
    with open(os.path.join(d, "fake_oci.json"), "w") as f:
        json.dump({"pid": p.pid, "port": base}, f)
    deadline = time.time() + 30
    while not answers(base):
        if p.poll() is not None or time.time() > deadline:
            with open(os.path.join(d, "fake_oci.log"), errors="replace") as f:
                tail = "".join(f.readlines()[-15:])
            print(f"oci emulators: fake_oci did not start:\n{tail}", file=sys.stderr)
            stop(d, quiet=True)
            return 1
        time.sleep(0.05)
    with open(os.path.join(d, "env"), "w") as f:
        f.write(env_lines(base, d))
    print(f"oci emulators: up in {time.time() - t0:.1f} s (log, pid, keys, config, env in {d}):")
    print("".join("  " + line + "\n" for line in env_lines(base, d).splitlines()), end="")
    return 0


def status(d: str) -> int:
    pid, port = read_state(d)
    ok = pid is not None and ours(pid, port) and answers(port)
    print(f"  fake_oci  {url(port) if port else '-'}  pid {pid or '-'}  {'up' if ok else 'DOWN'}")
    return 0 if ok else 3


def main() -> int:
    ap = argparse.ArgumentParser(description="fake OCI for the tests (see tests/oci/README.md)")
    ap.add_argument("action", choices=["start", "stop", "status"])
    ap.add_argument("--dir", required=True, help="state directory: pid, log, keys, config, env")
    ap.add_argument("--port-base", type=int, default=DEFAULT_BASE)
    args = ap.parse_args()
    d = os.path.abspath(args.dir)
    if args.action == "start":
        return start(d, args.port_base)
    if args.action == "stop":
        return stop(d) if os.path.isdir(d) else print(f"oci emulators: stopped nothing ({d} does not exist)") or 0
    return status(d)


if __name__ == "__main__":
    sys.exit(main())
