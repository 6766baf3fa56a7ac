#!/usr/bin/env python3
"""Starts and stops the AWS emulators the tests run against.

    python3 tests/aws/emulators.py start  --dir DIR [--port-base 47000]
    python3 tests/aws/emulators.py status --dir DIR
    python3 tests/aws/emulators.py stop   --dir DIR

All on 127.0.0.1, ports from --port-base (default 47000):
  base+0  gap proxy (gap_proxy.py) in front of base+1   CLOUD_HELPER_AWS_ENDPOINT
  base+1  moto_server, no auth                          CLOUD_HELPER_MOTO_URL
  base+2  fault proxy (fault_proxy.py) in front of base+0  CLOUD_HELPER_AWS_FAULT_ENDPOINT
  base+3  moto_server checking SigV4 signatures and IAM  CLOUD_HELPER_AWS_AUTH_ENDPOINT
          policies; an IAM user with an allow-all policy is made during moto's
          no-auth allowance and its keys saved to DIR/auth_keys.json
          (CLOUD_HELPER_AWS_AUTH_KEYS)

`start` writes DIR/env (KEY=VALUE lines, for `set -a; . DIR/env`), DIR/NAME.pid
and DIR/NAME.log, waits until every server answers, and warms moto's EC2, S3
and EBS backends so the first test does not pay their import time. A busy
port fails the start with a message naming it. `stop` ends exactly the
processes its pid files name (each was started in its own session) and is
safe to repeat. Exit status: 0 done, 1 failed, 3 (status) not all running.
"""

from __future__ import annotations

import argparse
import concurrent.futures
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
# moto's EC2 otherwise loads ~1,200 public AMIs and their snapshots per
# region: slow, and noise in every DescribeSnapshots.
MOTO_ENV = {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}
# CreateUser, PutUserPolicy, CreateAccessKey: then every request is checked.
AUTH_SETUP_ACTIONS = 3
AUTH_USER = "cloud-helper-test"


def components(base: int) -> list[dict]:
    py = sys.executable
    moto = [py, "-m", "moto.server", "-H", HOST]
    return [
        {"name": "moto", "port": base + 1, "cmd": moto + ["-p", str(base + 1)], "env": MOTO_ENV,
         "ready": "/moto-api/"},
        {"name": "moto_auth", "port": base + 3, "cmd": moto + ["-p", str(base + 3)],
         "env": dict(MOTO_ENV, INITIAL_NO_AUTH_ACTION_COUNT=str(AUTH_SETUP_ACTIONS)), "ready": "/moto-api/"},
        {"name": "gap_proxy", "port": base, "env": {}, "ready": "/_gap/health",
         "cmd": [py, os.path.join(HERE, "gap_proxy.py"), "--host", HOST, "--port", str(base),
                 "--upstream", f"http://{HOST}:{base + 1}"]},
        {"name": "fault_proxy", "port": base + 2, "env": {}, "ready": "/_fault/health",
         "cmd": [py, os.path.join(HERE, "fault_proxy.py"), "--host", HOST, "--port", str(base + 2),
                 "--upstream", f"http://{HOST}:{base}"]},
    ]


def url(port: int) -> str:
    return f"http://{HOST}:{port}"


def env_lines(base: int, d: str) -> str:
    return (f"CLOUD_HELPER_AWS_ENDPOINT={url(base)}\n"
            f"CLOUD_HELPER_MOTO_URL={url(base + 1)}\n"
            f"CLOUD_HELPER_AWS_FAULT_ENDPOINT={url(base + 2)}\n"
            f"CLOUD_HELPER_AWS_AUTH_ENDPOINT={url(base + 3)}\n"
            f"CLOUD_HELPER_AWS_AUTH_KEYS={os.path.join(d, 'auth_keys.json')}\n")


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


def answers(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(url(port) + path, timeout=1) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
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


def stop(d: str, quiet: bool = False) -> int:
    base = configured_base(d) or 47000
    running = []
    for c in components(base):
        pid = read_pid(d, c["name"])
        if pid is not None and ours(pid, c["port"]):
            try:
                os.killpg(pid, signal.SIGTERM)  # its own session: moto's children too
                running.append((c, pid))
            except ProcessLookupError:
                pass
    deadline = time.time() + 3
    while any(ours(pid, c["port"]) for c, pid in running) and time.time() < deadline:
        time.sleep(0.02)
    for c, pid in running:
        if ours(pid, c["port"]):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for c in components(base):
        for f in (c["name"] + ".pid",):
            try:
                os.unlink(os.path.join(d, f))
            except FileNotFoundError:
                pass
    try:
        os.unlink(os.path.join(d, "env"))
    except FileNotFoundError:
        pass
    if not quiet:
        names = ", ".join(f"{c['name']} (pid {pid})" for c, pid in running)
        print("emulators: stopped " + (names or "nothing (none running)"))
    return 0


def make_auth_user(port: int) -> dict:
    import boto3
    iam = boto3.client("iam", endpoint_url=url(port), region_name="us-east-1",
                       aws_access_key_id="setup", aws_secret_access_key="setup")
    iam.create_user(UserName=AUTH_USER)
    iam.put_user_policy(UserName=AUTH_USER, PolicyName="allow-all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName=AUTH_USER)["AccessKey"]
    return {"user": AUTH_USER, "access_key_id": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"], "endpoint": url(port), "region": "us-east-1"}


def warm_up(port: int, d: str) -> None:
    """First use of a moto service imports it (~1.5 s for EC2)."""
    import boto3
    import botocore.config
    from botocore.exceptions import ClientError
    # One attempt: moto answers the unknown snapshot with a 500, which botocore would retry.
    kw = dict(endpoint_url=url(port), region_name="us-east-1", aws_access_key_id="test",
              aws_secret_access_key="test", config=botocore.config.Config(retries={"max_attempts": 1}))
    calls = [lambda: boto3.client("ec2", **kw).describe_images(Owners=["self"]),
             lambda: boto3.client("s3", **kw).list_buckets(),
             lambda: boto3.client("ebs", **kw).list_snapshot_blocks(SnapshotId="snap-00000000000000000")]
    with open(os.path.join(d, "moto.log"), "a") as log:
        log.write("emulators.py: warming up EC2, S3, EBS; a KeyError for snap-00000000000000000 is expected\n")
    for call in calls:
        try:
            call()
        except ClientError:
            pass


def hermetic_aws_env() -> None:
    """No user AWS config may leak into boto3 here or in the servers (a
    missing AWS_PROFILE alone makes every client fail)."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_EBS", "AWS_ENDPOINT_URL_IAM"):
        os.environ.pop(var, None)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ in the source tree


def start(d: str, base: int) -> int:
    t0 = time.time()
    hermetic_aws_env()
    os.makedirs(d, exist_ok=True)
    d = os.path.abspath(d)
    if any(read_pid(d, c["name"]) for c in components(configured_base(d) or base)):
        print(f"emulators: stopping leftovers of an earlier start in {d}")
        stop(d, quiet=True)
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
    except ImportError as e:
        print(f"emulators: {sys.executable} cannot import {e.name}: install moto[server] and boto3 for it",
              file=sys.stderr)
        return 1
    comps = components(base)
    busy = [c for c in comps if port_busy(c["port"])]
    if busy:
        ports = ", ".join(f"{HOST}:{c['port']} ({c['name']})" for c in busy)
        print(f"emulators: port(s) {ports} busy: stop what holds them (`python3 {os.path.abspath(__file__)} "
              f"stop --dir DIR` for an earlier start, or see `ss -ltnp`) or use other ports "
              f"(--port-base N; CMake -DCLOUD_HELPER_AWS_PORT_BASE=N)", file=sys.stderr)
        return 1
    with open(os.path.join(d, "ports.json"), "w") as f:
        json.dump({"base": base}, f)
    for c in comps:
        log = open(os.path.join(d, c["name"] + ".log"), "w")
        p = subprocess.Popen(c["cmd"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             env=dict(os.environ, **c["env"]), start_new_session=True, cwd=d)
        log.close()
        with open(os.path.join(d, c["name"] + ".pid"), "w") as f:
            f.write(f"{p.pid}\n")
        c["proc"] = p

    def wait_ready(c: dict, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while not answers(c["port"], c["ready"]):
            if c["proc"].poll() is not None:
                raise RuntimeError(f"{c['name']} exited with status {c['proc'].returncode}:\n"
                                   + log_tail(d, c["name"]))
            if time.time() > deadline:
                raise RuntimeError(f"{c['name']} did not answer on {url(c['port'])}{c['ready']} "
                                   f"within {timeout:.0f} s:\n" + log_tail(d, c["name"]))
            time.sleep(0.05)

    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for fut in [pool.submit(wait_ready, c) for c in comps]:
                fut.result()
            t_ready = time.time() - t0
            warm = pool.submit(warm_up, base + 1, d)
            keys = pool.submit(make_auth_user, base + 3).result()
            warm.result()
    except Exception as e:
        print(f"emulators: start failed: {e}", file=sys.stderr)
        stop(d, quiet=True)
        return 1
    keys_path = os.path.join(d, "auth_keys.json")
    with open(keys_path, "w") as f:
        json.dump(keys, f, indent=1)
    with open(os.path.join(d, "env"), "w") as f:
        f.write(env_lines(base, d))
    print(f"emulators: up in {time.time() - t0:.1f} s (servers answered after {t_ready:.1f} s; "
          f"logs, pids, env in {d}):")
    print("".join("  " + line + "\n" for line in env_lines(base, d).splitlines()), end="")
    return 0


def status(d: str) -> int:
    base = configured_base(d)
    if base is None:
        print(f"emulators: not started in {d}")
        return 3
    up = True
    for c in components(base):
        pid = read_pid(d, c["name"])
        alive = pid is not None and ours(pid, c["port"])
        ok = alive and answers(c["port"], c["ready"])
        up &= ok
        print(f"  {c['name']:<12} {url(c['port'])}  pid {pid or '-'}  {'up' if ok else 'DOWN'}")
    return 0 if up else 3


def main() -> int:
    ap = argparse.ArgumentParser(description="AWS emulators for the tests (see tests/aws/README.md)")
    ap.add_argument("action", choices=["start", "stop", "status"])
    ap.add_argument("--dir", required=True, help="state directory: pid files, logs, env, auth_keys.json")
    ap.add_argument("--port-base", type=int, default=47000, help="first of four consecutive ports")
    args = ap.parse_args()
    d = os.path.abspath(args.dir)
    if args.action == "start":
        return start(d, args.port_base)
    if args.action == "stop":
        return stop(d) if os.path.isdir(d) else print(f"emulators: stopped nothing ({d} does not exist)") or 0
    return status(d)


if __name__ == "__main__":
    sys.exit(main())
