#!/usr/bin/env python3
"""Starts and stops the fake Alibaba Cloud (OSS + ECS) the tests run against.

    python3 tests/alicloud/emulators.py start  --dir DIR [--port-base 47300]
    python3 tests/alicloud/emulators.py status --dir DIR
    python3 tests/alicloud/emulators.py stop   --dir DIR

One process, tests/alicloud/fake_alicloud.py, on 127.0.0.1:
  base+0  OSS   CLOUD_HELPER_ALICLOUD_OSS_ENDPOINT
  base+1  ECS   CLOUD_HELPER_ALICLOUD_ECS_ENDPOINT

`start` writes DIR/env (KEY=VALUE lines), DIR/fake_alicloud.pid and .log, and
waits until both ports answer; a busy port fails the start naming it. `stop`
ends exactly the process its pid file names (started in its own session) and
is safe to repeat. Exit status: 0 done, 1 failed, 3 (status) not running.
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

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"
DEFAULT_BASE = 47300
NAME = "fake_alicloud"


def env_lines(base: int) -> str:
    return (f"CLOUD_HELPER_ALICLOUD_OSS_ENDPOINT=http://{HOST}:{base}\n"
            f"CLOUD_HELPER_ALICLOUD_ECS_ENDPOINT=http://{HOST}:{base + 1}\n")


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
        with urllib.request.urlopen(f"http://{HOST}:{port}/_fake/health", timeout=1) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def read_pid(d: str) -> int | None:
    try:
        with open(os.path.join(d, NAME + ".pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def configured_base(d: str) -> int | None:
    try:
        with open(os.path.join(d, "ports.json")) as f:
            return int(json.load(f)["base"])
    except (OSError, ValueError, KeyError):
        return None


def ours(pid: int, port: int) -> bool:
    """The pid is alive and still the process we started (pids get reused)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return str(port).encode() in argv and any(NAME.encode() in a for a in argv)


def stop(d: str, quiet: bool = False) -> int:
    base = configured_base(d) or DEFAULT_BASE
    pid = read_pid(d)
    stopped = False
    if pid is not None and ours(pid, base):
        try:
            os.killpg(pid, signal.SIGTERM)
            stopped = True
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
    for f in (NAME + ".pid", "env"):
        try:
            os.unlink(os.path.join(d, f))
        except FileNotFoundError:
            pass
    if not quiet:
        print(f"alicloud emulators: stopped {f'{NAME} (pid {pid})' if stopped else 'nothing (none running)'}")
    return 0


def start(d: str, base: int) -> int:
    t0 = time.time()
    os.makedirs(d, exist_ok=True)
    if read_pid(d):
        stop(d, quiet=True)
    busy = [p for p in (base, base + 1) if port_busy(p)]
    if busy:
        print(f"alicloud emulators: port(s) {', '.join(f'{HOST}:{p}' for p in busy)} busy: stop what holds them "
              f"(`python3 {os.path.abspath(__file__)} stop --dir DIR`, or see `ss -ltnp`) or use other ports "
              f"(--port-base N; CMake -DCLOUD_HELPER_ALICLOUD_PORT_BASE=N)", file=sys.stderr)
        return 1
    with open(os.path.join(d, "ports.json"), "w") as f:
        json.dump({"base": base}, f)
    log = open(os.path.join(d, NAME + ".log"), "w")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_alicloud.py"), "--host", HOST,
                          "--oss-port", str(base), "--ecs-port", str(base + 1), "--state-dir",
                          os.path.join(d, "state")], stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True, cwd=d, env=env)
    log.close()
    with open(os.path.join(d, NAME + ".pid"), "w") as f:
        f.write(f"{p.pid}\n")
    deadline = time.time() + 20
    while not (answers(base) and answers(base + 1)):
        if p.poll() is not None or time.time() > deadline:
            with open(os.path.join(d, NAME + ".log"), errors="replace") as f:
                tail = "".join(f.readlines()[-15:])
            print(f"alicloud emulators: start failed ({'exited ' + str(p.returncode) if p.poll() is not None else 'no answer within 20 s'}):\n{tail}",
                  file=sys.stderr)
            stop(d, quiet=True)
            return 1
        time.sleep(0.05)
    with open(os.path.join(d, "env"), "w") as f:
        f.write(env_lines(base))
    print(f"alicloud emulators: up in {time.time() - t0:.1f} s (logs, pid, env in {d}):")
    print("".join("  " + line + "\n" for line in env_lines(base).splitlines()), end="")
    return 0


def status(d: str) -> int:
    base = configured_base(d)
    pid = read_pid(d)
    up = base is not None and pid is not None and ours(pid, base) and answers(base) and answers(base + 1)
    print(f"  {NAME}  pid {pid or '-'}  {'up' if up else 'DOWN'}")
    return 0 if up else 3


def main() -> int:
    ap = argparse.ArgumentParser(description="fake Alibaba Cloud for the tests (see tests/alicloud/README.md)")
    ap.add_argument("action", choices=["start", "stop", "status"])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port-base", type=int, default=DEFAULT_BASE)
    args = ap.parse_args()
    d = os.path.abspath(args.dir)
    if args.action == "start":
        return start(d, args.port_base)
    if args.action == "stop":
        return stop(d) if os.path.isdir(d) else 0
    return status(d)


if __name__ == "__main__":
    sys.exit(main())
