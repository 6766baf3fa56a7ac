"""Process management shared by the tests' emulator scripts (tests/<cloud>/emulators.py).
Stdlib only. Each script describes its servers and calls main():

    sys.dont_write_bytecode = True       # before the import: no __pycache__ in the source tree
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import emulator_common as ec

    def components(base: int, d: str) -> list[ec.Component]:
        return [ec.Component("fake_x", base, [sys.executable, FAKE, "--port", str(base)])]

    CLOUD = ec.Cloud(title="x emulators", description="fake X for the tests (see tests/x/README.md)",
                     default_base=48000, cmake_var="CLOUD_HELPER_X_PORT_BASE", components=components,
                     env=lambda base, d: f"CLOUD_HELPER_X_ENDPOINT={ec.url(base)}\\n")
    sys.exit(ec.main(CLOUD))

CLI (the same for every cloud): `emulators.py start|status|stop --dir DIR [--port-base N]`.
Exit status: 0 done, 1 failed, 3 (status) not all running.

start(cloud, dir, base):
  stops what an earlier start in DIR left running; cloud.check() (prerequisites: a message
  fails the start); every component's ports must be free (else a message naming them and
  cloud.cmake_var); cloud.prepare(d, base) (keys, fresh data directories); calls
  cloud.components again (so argv may use what prepare made) and writes DIR/ports.json
  ({"base", "components"}: what stop and status need, so they work even when the
  component list changes); starts every component in its own session (cwd DIR, log
  DIR/NAME.log, pid DIR/NAME.pid, environment + Component.env); waits until each answers
  (a component that exits or stays silent fails the start with the tail of its log, and
  everything started is stopped); cloud.after_ready(d, base) (warm-ups, accounts); writes
  DIR/env (cloud.env(base, d): KEY=VALUE lines, for `set -a; . DIR/env`) and prints it.
stop(cloud, dir): ends exactly the processes its pid files name and that still are
  the ones started (Component.marks found in /proc/PID/cmdline: pids get reused): SIGTERM
  to the session, SIGKILL after 5 s; returns once they are gone (gone(): no longer in /proc
  or a zombie, so their ports are free for the next start); removes the pid files and
  DIR/env; safe to repeat.
status(cloud, dir): one line per component, up when its process is ours and it answers.

Hooks raise an exception (RuntimeError with a readable message, OSError,
subprocess.CalledProcessError) to fail the start; launch() and wait_ready() are
public for scripts that run a server of their own during prepare().
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Callable

HOST = "127.0.0.1"


def url(port: int) -> str:
    return f"http://{HOST}:{port}"


@dataclass
class Component:
    name: str                      # DIR/NAME.pid, DIR/NAME.log
    port: int
    argv: list[str] = field(default_factory=list)
    ready: str = "/_fake/health"   # GET path that answers once the server is up
    # Statuses of `ready` that mean up; None: any HTTP answer (Azurite answers 400).
    ready_status: list[int] | None = field(default_factory=lambda: [200])
    also: list[int] = field(default_factory=list)   # more ports it listens on (and must answer on)
    env: dict = field(default_factory=dict)         # added to the environment
    # argv elements /proc/PID/cmdline must all hold for the pid to still be ours (default: the
    # port; a server configured by file names that file instead).
    marks: list[str] = field(default_factory=list)
    timeout: float = 30.0          # seconds to answer after the start

    def ports(self) -> list[int]:
        return [self.port, *self.also]

    def ident(self) -> list[str]:
        return self.marks or [str(self.port)]


@dataclass
class Cloud:
    title: str                     # message prefix: "gcp emulators"
    description: str               # argparse description
    default_base: int
    cmake_var: str                 # named in the busy-port message
    components: Callable[[int, str], list[Component]]   # (base, DIR)
    env: Callable[[int, str], str]                       # (base, DIR) -> DIR/env text
    check: Callable[[], str | None] = lambda: None       # a message when a prerequisite is missing
    prepare: Callable[[str, int], None] = lambda d, base: None      # before the servers start
    after_ready: Callable[[str, int], None] = lambda d, base: None  # once every server answers
    dir_help: str = "state directory: pid files, logs, env"
    base_help: str = "first of the consecutive ports"


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


def answers(c: Component) -> bool:
    def one(port: int) -> bool:
        try:
            with urllib.request.urlopen(url(port) + c.ready, timeout=1) as r:
                return c.ready_status is None or r.status in c.ready_status
        except urllib.error.HTTPError as e:
            return c.ready_status is None or e.code in c.ready_status
        except (OSError, urllib.error.URLError, http.client.HTTPException):
            # HTTPException: a half-started server answering garbage (seen once as
            # BadStatusLine); wait for a real answer.
            return False
    return all(one(p) for p in c.ports())


def read_pid(d: str, name: str) -> int | None:
    try:
        with open(os.path.join(d, name + ".pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def ours(pid: int, c: Component) -> bool:
    """The pid is alive and still the process we started (pids get reused)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return all(m.encode() in argv for m in c.ident())


def gone(pid: int) -> bool:
    """The process has ended and closed its files: no /proc entry, or a zombie. (/proc/PID/cmdline
    reads empty already while it exits, before its sockets are closed: `ours` turns false too early
    for a start that binds the same ports next.)"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def log_tail(d: str, name: str, lines: int = 15) -> str:
    try:
        with open(os.path.join(d, name + ".log"), errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def recorded(d: str) -> tuple[int | None, list[Component] | None]:
    """The base and components DIR/ports.json names (components None for a file of an
    older script, which wrote the base only)."""
    try:
        with open(os.path.join(d, "ports.json")) as f:
            doc = json.load(f)
        base = int(doc["base"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, None
    try:
        return base, [Component(**c) for c in doc["components"]]
    except (KeyError, TypeError):
        return base, None


def started(cloud: Cloud, d: str) -> tuple[int | None, list[Component]]:
    base, comps = recorded(d)
    return base, comps if comps is not None else cloud.components(base or cloud.default_base, d)


def unlink(*paths: str) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def stop(cloud: Cloud, d: str, quiet: bool = False) -> int:
    _, comps = started(cloud, d)
    running = []
    for c in comps:
        pid = read_pid(d, c.name)
        if pid is not None and ours(pid, c):
            try:
                os.killpg(pid, signal.SIGTERM)  # its own session: the server's children too
                running.append((c, pid))
            except ProcessLookupError:
                pass
    deadline = time.time() + 5
    while not all(gone(pid) for _, pid in running) and time.time() < deadline:
        time.sleep(0.02)
    killed = []
    for c, pid in running:
        if ours(pid, c):
            try:
                os.killpg(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
    deadline = time.time() + 5
    while not all(gone(pid) for pid in killed) and time.time() < deadline:
        time.sleep(0.02)
    unlink(*[os.path.join(d, c.name + ".pid") for c in comps], os.path.join(d, "env"))
    if not quiet:
        names = ", ".join(f"{c.name} (pid {pid})" for c, pid in running)
        print(f"{cloud.title}: stopped " + (names or "nothing (none running)"))
    return 0


def launch(c: Component, d: str, log_name: str = "") -> subprocess.Popen:
    """Starts c in its own session with cwd DIR and its output in DIR/<log_name or NAME>.log."""
    with open(os.path.join(d, (log_name or c.name) + ".log"), "w") as log:
        return subprocess.Popen(c.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ, **c.env), start_new_session=True, cwd=d)


def wait_ready(c: Component, p: subprocess.Popen, d: str, log_name: str = "") -> None:
    deadline = time.time() + c.timeout
    log_name = log_name or c.name
    while not answers(c):
        if p.poll() is not None:
            raise RuntimeError(f"{c.name} exited with status {p.returncode}:\n" + log_tail(d, log_name))
        if time.time() > deadline:
            raise RuntimeError(f"{c.name} did not answer on {url(c.port)}{c.ready} within {c.timeout:.0f} s:\n"
                               + log_tail(d, log_name))
        time.sleep(0.05)


def start(cloud: Cloud, d: str, base: int) -> int:
    t0 = time.time()
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # the servers: no __pycache__ in the source tree
    os.makedirs(d, exist_ok=True)
    d = os.path.abspath(d)
    _, earlier = started(cloud, d)
    if any(read_pid(d, c.name) for c in earlier):
        print(f"{cloud.title}: stopping leftovers of an earlier start in {d}")
        stop(cloud, d, quiet=True)
    problem = cloud.check()
    if problem:
        print(f"{cloud.title}: {problem}", file=sys.stderr)
        return 1
    comps = cloud.components(base, d)
    busy = [(c, p) for c in comps for p in c.ports() if port_busy(p)]
    if busy:
        ports = ", ".join(f"{HOST}:{p} ({c.name})" for c, p in busy)
        print(f"{cloud.title}: port(s) {ports} busy: stop what holds them (`python3 {os.path.abspath(sys.argv[0])} "
              f"stop --dir DIR` for an earlier start, or see `ss -ltnp`) or use other ports "
              f"(--port-base N; CMake -D{cloud.cmake_var}=N)", file=sys.stderr)
        return 1
    try:
        cloud.prepare(d, base)
    except (OSError, RuntimeError, ValueError, subprocess.CalledProcessError) as e:
        print(f"{cloud.title}: start failed while preparing: {e}", file=sys.stderr)
        return 1
    comps = cloud.components(base, d)  # again: argv may name what prepare() made
    with open(os.path.join(d, "ports.json"), "w") as f:
        json.dump({"base": base, "components": [asdict(c) for c in comps]}, f, indent=1)
    procs = []
    for c in comps:
        p = launch(c, d)
        with open(os.path.join(d, c.name + ".pid"), "w") as f:
            f.write(f"{p.pid}\n")
        procs.append((c, p))
    try:
        with concurrent.futures.ThreadPoolExecutor(len(procs)) as pool:
            for fut in [pool.submit(wait_ready, c, p, d) for c, p in procs]:
                fut.result()
        t_ready = time.time() - t0
        cloud.after_ready(d, base)
    except Exception as e:  # noqa: BLE001 - any failure stops what was started
        print(f"{cloud.title}: start failed: {e}", file=sys.stderr)
        stop(cloud, d, quiet=True)
        return 1
    env = cloud.env(base, d)
    with open(os.path.join(d, "env"), "w") as f:
        f.write(env)
    print(f"{cloud.title}: up in {time.time() - t0:.1f} s (servers answered after {t_ready:.1f} s; "
          f"logs, pids, env in {d}):")
    print("".join("  " + line + "\n" for line in env.splitlines()), end="")
    return 0


def status(cloud: Cloud, d: str) -> int:
    base, comps = recorded(d)
    if base is None:
        print(f"{cloud.title}: not started in {d}")
        return 3
    if comps is None:
        comps = cloud.components(base, d)
    up = True
    width = max([12] + [len(c.name) for c in comps])
    for c in comps:
        pid = read_pid(d, c.name)
        ok = pid is not None and ours(pid, c) and answers(c)
        up &= ok
        print(f"  {c.name:<{width}} {url(c.port)}  pid {pid or '-'}  {'up' if ok else 'DOWN'}")
    return 0 if up else 3


def main(cloud: Cloud) -> int:
    ap = argparse.ArgumentParser(description=cloud.description)
    ap.add_argument("action", choices=["start", "stop", "status"])
    ap.add_argument("--dir", required=True, help=cloud.dir_help)
    ap.add_argument("--port-base", type=int, default=cloud.default_base, help=cloud.base_help)
    args = ap.parse_args()
    d = os.path.abspath(args.dir)
    if args.action == "start":
        return start(cloud, d, args.port_base)
    if args.action == "stop":
        if not os.path.isdir(d):
            print(f"{cloud.title}: stopped nothing ({d} does not exist)")
            return 0
        return stop(cloud, d)
    return status(cloud, d)
