#!/usr/bin/env python3
"""Starts and stops the Azure emulators the tests run against.

    python3 tests/azure/emulators.py start  --dir DIR [--port-base 47100]
    python3 tests/azure/emulators.py status --dir DIR
    python3 tests/azure/emulators.py stop   --dir DIR

All on 127.0.0.1, ports from --port-base (default 47100):
  base+0  Azurite blob service (tests/azure/node_modules, `npm install
          --prefix tests/azure`), account devstoreaccount1 with the
          well-known key; it checks SharedKey signatures   CLOUD_HELPER_AZURITE_URL
  base+1  the fake Resource Manager (fake_arm.py), when that file exists
                                                           CLOUD_HELPER_AZURE_ARM_ENDPOINT
  base+2  fault proxy (tests/aws/fault_proxy.py) in front of Azurite
                                                           CLOUD_HELPER_AZURITE_FAULT_URL,
                                                           CLOUD_HELPER_AZURE_FAULT_ENDPOINT

`start` writes DIR/env (KEY=VALUE lines, for `set -a; . DIR/env`), DIR/NAME.pid
and DIR/NAME.log (Azurite keeps its data in DIR/azurite, the fake ARM in
DIR/arm) and waits until every server answers. A busy port fails the start
with a message naming it. `stop` ends exactly the processes its pid files
name (each was started in its own session) and is safe to repeat. Exit
status: 0 done, 1 failed, 3 (status) not all running.
"""

from __future__ import annotations

import os
import shutil
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
AWS_DIR = os.path.join(os.path.dirname(HERE), "aws")
sys.path.insert(0, os.path.dirname(HERE))
import emulator_common as ec  # noqa: E402

HOST = ec.HOST
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development account key (public, in its README).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURITE = os.path.join(HERE, "node_modules", ".bin", "azurite-blob")
FAKE_ARM = os.path.join(HERE, "fake_arm.py")
url = ec.url


def components(base: int, d: str) -> list[ec.Component]:
    py = sys.executable
    out = [
        # Azurite answers "/" with 400 (no account); any HTTP answer means up.
        ec.Component("azurite", base, [AZURITE, "--blobHost", HOST, "--blobPort", str(base), "--location",
                                       os.path.join(d, "azurite"), "--skipApiVersionCheck", "--loose", "--silent"]
                     # Azurite's debug log shows each string-to-sign it computed: for auth bugs.
                     + (["--debug", os.path.join(d, "azurite-debug.log")] if os.environ.get("AZURITE_DEBUG") else []),
                     ready=f"/{ACCOUNT}?comp=list", ready_status=None),
        ec.Component("fault_proxy", base + 2, [py, os.path.join(AWS_DIR, "fault_proxy.py"), "--host", HOST, "--port",
                                               str(base + 2), "--upstream", url(base)], ready="/_fault/health"),
    ]
    if os.path.exists(FAKE_ARM):
        out.append(ec.Component("fake_arm", base + 1, [py, FAKE_ARM, "--host", HOST, "--port", str(base + 1),
                                                       "--state-dir", os.path.join(d, "arm"), "--blob-endpoint",
                                                       f"{url(base)}/{ACCOUNT}", "--account-key", ACCOUNT_KEY]))
    return out


def env_lines(base: int, d: str) -> str:
    lines = (f"CLOUD_HELPER_AZURITE_URL={url(base)}/{ACCOUNT}\n"
             f"CLOUD_HELPER_AZURITE_FAULT_URL={url(base + 2)}/{ACCOUNT}\n"
             f"CLOUD_HELPER_AZURE_FAULT_ENDPOINT={url(base + 2)}\n"
             f"CLOUD_HELPER_AZURE_NODE_DIR={HERE}\n")
    if os.path.exists(FAKE_ARM):
        lines += f"CLOUD_HELPER_AZURE_ARM_ENDPOINT={url(base + 1)}\n"
    return lines


def check() -> str | None:
    if not os.access(AZURITE, os.X_OK):
        return (f"{AZURITE} is missing: run scripts/setup.sh, or "
                f"`npm install --prefix {HERE} --no-audit --no-fund` (needs Node.js and npm)")
    if shutil.which("node") is None:
        return "node is not on PATH (Azurite needs Node.js)"
    return None


def prepare(d: str, base: int) -> None:
    # A fresh Azurite store each start: tests assume nothing left over.
    shutil.rmtree(os.path.join(d, "azurite"), ignore_errors=True)
    os.makedirs(os.path.join(d, "azurite"), exist_ok=True)
    os.makedirs(os.path.join(d, "arm"), exist_ok=True)


CLOUD = ec.Cloud(title="azure emulators", description="Azure emulators for the tests (see tests/azure/README.md)",
                 default_base=47100, cmake_var="CLOUD_HELPER_AZURE_PORT_BASE", components=components,
                 env=env_lines, check=check, prepare=prepare,
                 dir_help="state directory: pid files, logs, env, Azurite's data",
                 base_help="first of three consecutive ports")

if __name__ == "__main__":
    sys.exit(ec.main(CLOUD))
