#!/usr/bin/env python3
"""Starts and stops the fake OCI service the tests run against.

    python3 tests/oci/emulators.py start  --dir DIR [--port-base 48320]
    python3 tests/oci/emulators.py status --dir DIR
    python3 tests/oci/emulators.py stop   --dir DIR

`start` makes the test API keys with the openssl CLI once per DIR (a 2048-bit RSA
key, the same key encrypted with a pass phrase, and a second key the fake does not
know), writes an OCI config file DIR/config (profiles DEFAULT, ENCRYPTED, WRONGKEY;
tenancy, user, fingerprint = MD5 of the public key's DER, as OCI computes it, region
us-ashburn-1), starts tests/oci/fake_oci.py on 127.0.0.1:BASE with Debian's
/usr/bin/python3 (it needs python3-cryptography) and the public key registered, and
writes DIR/env:

  CLOUD_HELPER_OCI_ENDPOINT=http://127.0.0.1:BASE   (both services)
  CLOUD_HELPER_OCI_CONFIG=DIR/config

DIR also holds fake_oci.pid, fake_oci.log and ports.json (tests/emulator_common.py).
`stop` ends exactly the process its pid file names and is safe to repeat.
Exit status: 0 done, 1 failed, 3 (status) not running.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import emulator_common as ec  # noqa: E402

FAKE = os.path.join(HERE, "fake_oci.py")
TENANCY = "ocid1.tenancy.oc1..aaaaaaaafaketenancy"
USER = "ocid1.user.oc1..aaaaaaaafakeuser"
PASS_PHRASE = "fake-oci-pass-phrase"
PYTHON = "/usr/bin/python3"


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def fingerprint(public_pem: str) -> str:
    """OCI's key fingerprint: MD5 of the public key's DER (the PEM's base64 body), hex pairs."""
    with open(public_pem) as f:
        der = base64.b64decode("".join(line for line in f.read().splitlines() if not line.startswith("-----")))
    digest = hashlib.md5(der).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def components(base: int, d: str) -> list[ec.Component]:
    public = os.path.join(d, "oci_api_key_public.pem")
    # Before prepare() made the key, only the ports count (start checks them).
    key_id = f"{TENANCY}/{USER}/{fingerprint(public) if os.path.exists(public) else '-'}"
    return [ec.Component("fake_oci", base, [PYTHON, FAKE, "--host", ec.HOST, "--port", str(base),
                                            "--key", f"{key_id}={public}"],
                         marks=[FAKE, str(base)])]


def env_lines(base: int, d: str) -> str:
    return f"CLOUD_HELPER_OCI_ENDPOINT={ec.url(base)}\nCLOUD_HELPER_OCI_CONFIG={os.path.join(d, 'config')}\n"


def check() -> str | None:
    if shutil.which("openssl") is None:
        return "the openssl CLI is missing: run scripts/setup.sh (apt-get install openssl)"
    try:
        subprocess.run([PYTHON, "-c", "import cryptography"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return f"{PYTHON} cannot import cryptography: run scripts/setup.sh (apt-get install python3-cryptography)"
    return None


def prepare(d: str, base: int) -> None:
    """The key files (kept across starts) and the config file."""
    key, encrypted = os.path.join(d, "oci_api_key.pem"), os.path.join(d, "oci_api_key_encrypted.pem")
    public, wrong = os.path.join(d, "oci_api_key_public.pem"), os.path.join(d, "wrong_key.pem")
    try:
        if not os.path.exists(key):
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
            openssl("pkey", "-in", key, "-pubout", "-out", public)
            openssl("pkey", "-in", key, "-aes256", "-passout", "pass:" + PASS_PHRASE, "-out", encrypted)
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", wrong)
    except (OSError, subprocess.CalledProcessError) as e:
        raise RuntimeError(f"making the test keys with openssl failed: {e}") from e
    with open(os.path.join(d, "config"), "w") as f:
        f.write(f"[DEFAULT]\nuser={USER}\nfingerprint={fingerprint(public)}\nkey_file={key}\ntenancy={TENANCY}\n"
                f"region=us-ashburn-1\n\n"
                f"[ENCRYPTED]\nkey_file={encrypted}\npass_phrase={PASS_PHRASE}\n\n"
                f"[WRONGKEY]\nkey_file={wrong}\n")


CLOUD = ec.Cloud(title="oci emulators", description="fake OCI for the tests (see tests/oci/README.md)",
                 default_base=48320, cmake_var="CLOUD_HELPER_OCI_PORT_BASE", components=components,
                 env=env_lines, check=check, prepare=prepare,
                 dir_help="state directory: pid file, log, keys, config, env", base_help="the fake's port")

if __name__ == "__main__":
    sys.exit(ec.main(CLOUD))
