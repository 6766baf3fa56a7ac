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

import argparse
import http.client
import concurrent.futures
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
AWS_DIR = os.path.join(os.path.dirname(HERE), "aws")
HOST = "127.0.0.1"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development account key (public, in its README).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURITE = os.path.join(HERE, "node_modules", ".bin", "azurite-blob")
FAKE_ARM = os.path.join(HERE, "fake_arm.py")
DEFAULT_BASE = 47100


def components(base: int, d: str) -> list[dict]:
    py = sys.executable
    out = [
        # Azurite answers "/" with 400 (no account); any HTTP answer means up.
        {"name": "azurite", "port": base, "ready": f"/{ACCOUNT}?comp=list", "any_status": True,
         "cmd": [AZURITE, "--blobHost", HOST, "--blobPort", str(base), "--location", os.path.join(d, "azurite"),
                 "--skipApiVersionCheck", "--loose", "--silent"]
         # Azurite's debug log shows each string-to-sign it computed: for auth bugs.
         + (["--debug", os.path.join(d, "azurite-debug.log")] if os.environ.get("AZURITE_DEBUG") else [])},
        {"name": "fault_proxy", "port": base + 2, "ready": "/_fault/health",
         "cmd": [py, os.path.join(AWS_DIR, "fault_proxy.py"), "--host", HOST, "--port", str(base + 2),
                 "--upstream", f"http://{HOST}:{base}"]},
    ]
    if os.path.exists(FAKE_ARM):
        out.append({"name": "fake_arm", "port": base + 1, "ready": "/_fake/health",
                    "cmd": [py, FAKE_ARM, "--host", HOST, "--port", str(base + 1),
                            "--state-dir", os.path.join(d, "arm"),
                            "--blob-endpoint", f"http://{HOST}:{base}/{ACCOUNT}", "--account-key", ACCOUNT_KEY]})
    return out


def url(port: int) -> str:
    return f"http://{HOST}:{port}"


def env_lines(base: int, d: str) -> str:
    lines = (f"CLOUD_HELPER_AZURITE_URL={url(base)}/{ACCOUNT}\n"
             f"CLOUD_HELPER_AZURITE_FAULT_URL={url(base + 2)}/{ACCOUNT}\n"
             f"CLOUD_HELPER_AZURE_FAULT_ENDPOINT={url(base + 2)}\n"
             f"CLOUD_HELPER_AZURE_NODE_DIR={HERE}\n")
    if os.path.exists(FAKE_ARM):
        lines += f"CLOUD_HELPER_AZURE_ARM_ENDPOINT={url(base + 1)}\n"
    return lines


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


def answers(c: dict) -> bool:
    try:
        with urllib.request.urlopen(url(c["port"]) + c["ready"], timeout=1) as r:
            return r.status == 200 or c.get("any_status", False)
    except urllib.error.HTTPError:
        return c.get("any_status", False)
    except (OSError, urllib.error.URLError, http.client.HTTPException):
        # HTTPException: a half-started server answering garbage (seen once
        # as BadStatusLine); wait for a real answer.
        return False


def read_pid(d: str, name: str) -> int | None:
    try:
        with open(os.path.join(d, name + ".pid")) as f:
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
    return str(port).encode() in argv


def log_tail(d: str, name: str, lines: int = 15) -> str:
    try:
        with open(os.path.join(d, name + ".log"), errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def configured_base(d: str) -> int | None:
    try:
        with open(os.path.join(d, "ports.json")) as f:
            return int(json.load(f)["base"])
    except (OSError, ValueError, KeyError):
        return None


def all_names(base: int, d: str) -> list[dict]:
    """Every component a start may have made, fake_arm included even if its file went away."""
    comps = components(base, d)
    if not any(c["name"] == "fake_arm" for c in comps):
        comps.append({"name": "fake_arm", "port": base + 1})
    return comps


def stop(d: str, quiet: bool = False) -> int:
    base = configured_base(d) or DEFAULT_BASE
    running = []
    for c in all_names(base, d):
        pid = read_pid(d, c["name"])
        if pid is not None and ours(pid, c["port"]):
            try:
                os.killpg(pid, signal.SIGTERM)  # its own session: node's children too
                running.append((c, pid))
            except ProcessLookupError:
                pass
    deadline = time.time() + 5
    while any(ours(pid, c["port"]) for c, pid in running) and time.time() < deadline:
        time.sleep(0.02)
    for c, pid in running:
        if ours(pid, c["port"]):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for c in all_names(base, d):
        try:
            os.unlink(os.path.join(d, c["name"] + ".pid"))
        except FileNotFoundError:
            pass
    try:
        os.unlink(os.path.join(d, "env"))
    except FileNotFoundError:
        pass
    if not quiet:
        names = ", ".join(f"{c['name']} (pid {pid})" for c, pid in running)
        print("azure emulators: stopped " + (names or "nothing (none running)"))
    return 0


def start(d: str, base: int) -> int:
    t0 = time.time()
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ in the source tree
    os.makedirs(d, exist_ok=True)
    d = os.path.abspath(d)
    if any(read_pid(d, c["name"]) for c in all_names(configured_base(d) or base, d)):
        print(f"azure emulators: stopping leftovers of an earlier start in {d}")
        stop(d, quiet=True)
    if not os.access(AZURITE, os.X_OK):
        print(f"azure emulators: {AZURITE} is missing: run scripts/setup.sh, or "
              f"`npm install --prefix {HERE} --no-audit --no-fund` (needs Node.js and npm)", file=sys.stderr)
        return 1
    if shutil.which("node") is None:
        print("azure emulators: node is not on PATH (Azurite needs Node.js)", file=sys.stderr)
        return 1
    comps = components(base, d)
    busy = [c for c in comps if port_busy(c["port"])]
    if busy:
        ports = ", ".join(f"{HOST}:{c['port']} ({c['name']})" for c in busy)
        print(f"azure emulators: port(s) {ports} busy: stop what holds them (`python3 {os.path.abspath(__file__)} "
              f"stop --dir DIR` for an earlier start, or see `ss -ltnp`) or use other ports "
              f"(--port-base N; CMake -DCLOUD_HELPER_AZURE_PORT_BASE=N)", file=sys.stderr)
        return 1
    with open(os.path.join(d, "ports.json"), "w") as f:
        json.dump({"base": base}, f)
    # A fresh Azurite store each start: tests assume nothing left over.
    shutil.rmtree(os.path.join(d, "azurite"), ignore_errors=True)
    os.makedirs(os.path.join(d, "azurite"), exist_ok=True)
    os.makedirs(os.path.join(d, "arm"), exist_ok=True)
    for c in comps:
        log = open(os.path.join(d, c["name"] + ".log"), "w")
        p = subprocess.Popen(c["cmd"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True, cwd=d)
        log.close()
        with open(os.path.join(d, c["name"] + ".pid"), "w") as f:
            f.write(f"{p.pid}\n")
        c["proc"] = p

    def wait_ready(c: dict, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while not answers(c):
            if c["proc"].poll() is not None:
                raise RuntimeError(f"{c['name']} exited with status {c['proc'].returncode}:\n"
                                   + log_tail(d, c["name"]))
            if time.time() > deadline:
                raise RuntimeError(f"{c['name']} did not answer on {url(c['port'])}{c['ready']} "
                                   f"within {timeout:.0f} s:\n" + log_tail(d, c["name"]))
            time.sleep(0.05)

    try:
        with concurrent.futures.ThreadPoolExecutor(len(comps)) as pool:
            for fut in [pool.submit(wait_ready, c) for c in comps]:
                fut.result()
    except Exception as e:
        print(f"azure emulators: start failed: {e}", file=sys.stderr)
        stop(d, quiet=True)
        return 1
    with open(os.path.join(d, "env"), "w") as f:
        f.write(env_lines(base, d))
    note = "" if os.path.exists(FAKE_ARM) else " (no fake_arm.py: fake ARM not started)"
    print(f"azure emulators: up in {time.time() - t0:.1f} s (logs, pids, env in {d}){note}:")
    print("".join("  " + line + "\n" for line in env_lines(base, d).splitlines()), end="")
    return 0


def status(d: str) -> int:
    base = configured_base(d)
    if base is None:
        print(f"azure emulators: not started in {d}")
        return 3
    up = True
    for c in components(base, d):
        pid = read_pid(d, c["name"])
        alive = pid is not None and ours(pid, c["port"])
        ok = alive and answers(c)
        up &= ok
        print(f"  {c['name']:<12} {url(c['port'])}  pid {pid or '-'}  {'up' if ok else 'DOWN'}")
    return 0 if up else 3


def main() -> int:
    ap = argparse.ArgumentParser(description="Azure emulators for the tests (see tests/azure/README.md)")
    ap.add_argument("action", choices=["start", "stop", "status"])
    ap.add_argument("--dir", required=True, help="state directory: pid files, logs, env, Azurite's data")
    ap.add_argument("--port-base", type=int, default=DEFAULT_BASE, help="first of three consecutive ports")
    args = ap.parse_args()
    d = os.path.abspath(args.dir)
    if args.action == "start":
        return start(d, args.port_base)
    if args.action == "stop":
        return stop(d) if os.path.isdir(d) else print(f"azure emulators: stopped nothing ({d} does not exist)") or 0
    return status(d)


if __name__ == "__main__":
    sys.exit(main())
