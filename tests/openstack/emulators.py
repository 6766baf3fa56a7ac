#!/usr/bin/env python3
"""Starts and stops the real OpenStack services the tests run against.

    python3 tests/openstack/emulators.py start  --dir DIR [--port-base 48120]
    python3 tests/openstack/emulators.py status --dir DIR
    python3 tests/openstack/emulators.py stop   --dir DIR

Debian's Keystone and Glance (tests/openstack/setup.sh installs them), run by
/usr/bin/python3 on 127.0.0.1 with sqlite databases and a file store under
DIR, no systemd, no message queue:
  base+0  Keystone v3 (keystone-wsgi-public), fernet tokens; user admin in
          project admin (role admin), an application credential of it, and a
          project "partner" (image members)          CLOUD_HELPER_OS_AUTH_URL
  base+1  glance-api, catalog region RegionOne (keystonemiddleware checks
          every token against the Keystone above)
  base+2  glance-api, catalog region RegionTwo (its own database and store)
  base+3  tests/aws/fault_proxy.py in front of RegionOne's Glance, in the
          catalog as region RegionFault                CLOUD_HELPER_OS_FAULT_URL
  base+4  (unused: a web-download source would go here, but Debian's Glance
          refuses loopback sources whatever import_filtering_opts say)

  base+5  glance-api, catalog region RegionQuota, enforcing Keystone unified
          limits (use_keystone_limits; oslo.limit reads the image service's
          registered limits for RegionQuota, generous defaults): a test sets
          a project limit on the project "quota" (or "quota-direct", one
          project per test) through Keystone's /v3/limits to make Glance
          refuse an image, and lifts it again without a restart (Glance asks
          Keystone on every check).

The catalog has public and internal image endpoints per region. `start`
makes the databases (keystone-manage db_sync, fernet_setup,
credential_setup, bootstrap; glance-manage db_sync) once per port base into
DIR/cache and copies them for every start (fresh state, quick restarts),
writes DIR/env (KEY=VALUE lines), DIR/NAME.pid and DIR/NAME.log, and waits
until every server answers; a server that exits or stays silent fails the
start with the tail of its log. `stop` ends exactly the processes its pid
files name (each in its own session) and is safe to repeat. Exit status: 0
done, 1 failed, 3 (status) not all running.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
AWS_DIR = os.path.join(os.path.dirname(HERE), "aws")
HOST = "127.0.0.1"
DEFAULT_BASE = 48120
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's: the OpenStack modules live there
ADMIN_PASSWORD = "cloud-helper-admin-password"
APP_CRED_NAME = "cloud-helper-tests"
APP_CRED_SECRET = "cloud-helper-app-cred-secret"
# (region, port offset); RegionQuota is the one Glance with unified limits
# on: enforcing them costs Glance five Keystone requests per check, which
# the other regions' tests need not pay.
REGIONS = [("RegionOne", 1), ("RegionTwo", 2), ("RegionQuota", 5)]
QUOTA_REGION = "RegionQuota"
FAULT_REGION = "RegionFault"
# Bumped whenever what build_cache makes changes: older caches are remade.
CACHE_VERSION = 4
# Glance's four unified-limit resources (glance/quota/keystone.py) and the
# registered defaults: far above what the tests use.
REGISTERED_LIMITS = {"image_size_total": 100000, "image_stage_total": 100000, "image_count_total": 10000,
                     "image_count_uploading": 1000}


def url(port: int) -> str:
    return f"http://{HOST}:{port}"


def keystone_conf(d: str, data: str) -> str:
    return f"""[DEFAULT]
debug = false
use_stderr = true
[database]
connection = sqlite:///{data}/keystone.db
[fernet_tokens]
key_repository = {data}/fernet-keys
[fernet_receipts]
key_repository = {data}/fernet-receipts
[credential]
key_repository = {data}/credential-keys
[identity]
# bcrypt's cheapest cost: every token request hashes the password.
password_hash_rounds = 4
[token]
provider = fernet
expiration = 7200
[catalog]
driver = sql
"""


def glance_conf(d: str, data: str, region: str, port: int, keystone_port: int, endpoint_id: str = "") -> str:
    # Unified limits only once Keystone knows the endpoint (not for db_sync).
    limits = f"""use_keystone_limits = true
[oslo_limit]
endpoint_id = {endpoint_id}
auth_url = {url(keystone_port)}
auth_type = password
username = admin
password = {ADMIN_PASSWORD}
user_domain_name = Default
# System scope: a project-scoped token lists only its own project's limits.
system_scope = all
""" if endpoint_id else ""
    return f"""[DEFAULT]
bind_host = {HOST}
bind_port = {port}
workers = 0
debug = false
use_stderr = true
node_staging_uri = file://{d}/staging-{region}
enabled_import_methods = [glance-direct,web-download]
{limits}[database]
connection = sqlite:///{data}/glance-{region}.db
[glance_store]
stores = file
default_store = file
filesystem_store_datadir = {d}/images-{region}
[paste_deploy]
flavor = keystone
config_file = /etc/glance/glance-api-paste.ini
[keystone_authtoken]
www_authenticate_uri = {url(keystone_port)}
auth_url = {url(keystone_port)}
auth_type = password
interface = public
region_name = RegionOne
username = admin
password = {ADMIN_PASSWORD}
project_name = admin
user_domain_name = Default
project_domain_name = Default
[oslo_concurrency]
lock_path = {d}/lock
[oslo_policy]
enforce_new_defaults = false
"""


def components(base: int, d: str) -> list[dict]:
    out = [{"name": "keystone", "port": base, "ready": "/v3",
            "cmd": [SYSTEM_PYTHON, "/usr/bin/keystone-wsgi-public", "--host", HOST, "--port", str(base), "--",
                    "--config-file", os.path.join(d, "keystone.conf")]}]
    for region, off in REGIONS:
        out.append({"name": "glance-" + region, "port": base + off, "ready": "/versions",
                    "cmd": [SYSTEM_PYTHON, "/usr/bin/glance-api", "--config-file",
                            os.path.join(d, f"glance-{region}.conf")]})
    out.append({"name": "fault_proxy", "port": base + 3, "ready": "/_fault/health",
                "cmd": [sys.executable, os.path.join(AWS_DIR, "fault_proxy.py"), "--host", HOST, "--port",
                        str(base + 3), "--upstream", url(base + 1)]})
    return out


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
            return r.status in (200, 300)
    except urllib.error.HTTPError as e:
        return e.code == 300  # Glance's /versions answers 300 Multiple Choices
    except (OSError, urllib.error.URLError, http.client.HTTPException):
        return False


def read_pid(d: str, name: str) -> int | None:
    try:
        with open(os.path.join(d, name + ".pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def ours(pid: int, d: str, port: int) -> bool:
    """The pid is alive and still the process we started (pids get reused)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read()
    except OSError:
        return False
    return str(port).encode() in argv or d.encode() in argv


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
    base = configured_base(d) or DEFAULT_BASE
    running = []
    for c in components(base, d):
        pid = read_pid(d, c["name"])
        if pid is not None and ours(pid, d, c["port"]):
            try:
                os.killpg(pid, signal.SIGTERM)
                running.append((c, pid))
            except ProcessLookupError:
                pass
    deadline = time.time() + 5
    while any(ours(pid, d, c["port"]) for c, pid in running) and time.time() < deadline:
        time.sleep(0.02)
    for c, pid in running:
        if ours(pid, d, c["port"]):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for c in components(base, d):
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
        print("openstack services: stopped " + (names or "nothing (none running)"))
    return 0


def wait_ready(d: str, c: dict, log_name: str = "", timeout: float = 60) -> None:
    deadline = time.time() + timeout
    log_name = log_name or c["name"]
    while not answers(c):
        if c["proc"].poll() is not None:
            raise RuntimeError(f"{c['name']} exited with status {c['proc'].returncode}:\n" + log_tail(d, log_name))
        if time.time() > deadline:
            raise RuntimeError(f"{c['name']} did not answer on {url(c['port'])}{c['ready']} "
                               f"within {timeout:.0f} s:\n" + log_tail(d, log_name))
        time.sleep(0.05)


def run(cmd: list[str], log: str) -> None:
    with open(log, "a") as f:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        with open(log, errors="replace") as f:
            tail = "".join(f.readlines()[-10:])
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed with status {r.returncode}:\n{tail}")


def build_cache(d: str, cache: str, base: int) -> None:
    """Databases and keys, made once per port base (the bootstrap writes the
    identity endpoint's URL into Keystone's database)."""
    tmp = cache + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    conf = os.path.join(tmp, "keystone.conf")
    with open(conf, "w") as f:
        f.write(keystone_conf(d, tmp))
    log = os.path.join(d, "setup.log")
    ks = ["/usr/bin/keystone-manage", "--config-file", conf]
    me = [f"--keystone-user={os.getuid()}", f"--keystone-group={os.getgid()}"]

    def keystone_db() -> None:
        run(ks + ["db_sync"], log)
        run(ks + ["bootstrap", "--bootstrap-password", ADMIN_PASSWORD, "--bootstrap-region-id", "RegionOne",
                  "--bootstrap-admin-url", url(base) + "/v3", "--bootstrap-public-url", url(base) + "/v3",
                  "--bootstrap-internal-url", url(base) + "/v3"], log)

    def glance_db(region: str) -> None:
        gconf = os.path.join(tmp, f"glance-{region}.conf")
        with open(gconf, "w") as f:
            f.write(glance_conf(d, tmp, region, base + 1, base))
        run(["/usr/bin/glance-manage", "--config-file", gconf, "db_sync"], log)

    jobs = [keystone_db, lambda: run(ks + ["fernet_setup"] + me, log),
            lambda: run(ks + ["credential_setup"] + me, log)]
    jobs += [lambda r=r: glance_db(r) for r, _ in REGIONS]
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        for fut in [pool.submit(j) for j in jobs]:
            fut.result()
    # Keystone under sqlite's default rollback journal fails a second write
    # in a row with "database is locked" (a read transaction of another of
    # its connections stays open); WAL lets the commit through.
    for db in os.listdir(tmp):
        if db.endswith(".db"):
            c = sqlite3.connect(os.path.join(tmp, db))
            c.execute("PRAGMA journal_mode=WAL")
            c.close()
    # The catalog, projects and credential go in through Keystone's API, once.
    # On a free port of its own: nothing else is bound yet, and the URLs it
    # stores are the base port's anyway.
    c = components(base, tmp)[0]
    free = socket.socket()
    free.bind((HOST, 0))
    c["port"] = free.getsockname()[1]
    free.close()
    c["cmd"][c["cmd"].index(str(base))] = str(c["port"])
    with open(os.path.join(d, "setup-keystone.log"), "w") as log_f:
        p = subprocess.Popen(c["cmd"], stdin=subprocess.DEVNULL, stdout=log_f, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        c["proc"] = p
        wait_ready(d, c, "setup-keystone")
        ids = configure_keystone(c["port"], base)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
        p.wait()
    for db in os.listdir(tmp):
        if db.endswith(".db"):
            c = sqlite3.connect(os.path.join(tmp, db))
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            c.close()
    with open(os.path.join(tmp, "ids.json"), "w") as f:
        json.dump(ids, f)
    shutil.rmtree(cache, ignore_errors=True)
    os.rename(tmp, cache)


def api(method: str, port: int, path: str, token: str | None, body: dict | None = None) -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["X-Auth-Token"] = token
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = conn.getresponse()
    text = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    conn.close()
    if r.status >= 300:
        raise RuntimeError(f"Keystone {method} {path}: HTTP {r.status}: {text[:300]!r}")
    return r.status, (json.loads(text) if text else {}), hdrs


def configure_keystone(port: int, base: int) -> dict:
    """Regions, the image service and its endpoints, the partner project and
    an application credential, through Keystone's own API."""
    auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    _, doc, hdrs = api("POST", port, "/v3/auth/tokens", None, auth)
    token = hdrs["x-subject-token"]
    user_id = doc["token"]["user"]["id"]
    admin_project = doc["token"]["project"]["id"]
    _, svc, _ = api("POST", port, "/v3/services", token, {"service": {"type": "image", "name": "glance"}})
    sid = svc["service"]["id"]
    endpoints = {}
    for region, off in REGIONS + [(FAULT_REGION, 3)]:
        if region != "RegionOne":
            api("POST", port, "/v3/regions", token, {"region": {"id": region}})
        for interface in ("public", "internal"):
            _, ep, _ = api("POST", port, "/v3/endpoints", token, {"endpoint": {
                "service_id": sid, "interface": interface, "region_id": region, "url": url(base + off)}})
            if interface == "public":
                endpoints[region] = ep["endpoint"]["id"]
    api("POST", port, "/v3/registered_limits", token, {"registered_limits": [
        {"service_id": sid, "region_id": region, "resource_name": name, "default_limit": limit}
        for name, limit in REGISTERED_LIMITS.items() for region in [QUOTA_REGION]]})
    _, roles, _ = api("GET", port, "/v3/roles?name=admin", token)
    quota = {}
    for name in ("quota", "quota-direct"):
        _, p, _ = api("POST", port, "/v3/projects", token, {"project": {"name": name, "domain_id": "default"}})
        quota[name] = p["project"]["id"]
        api("PUT", port, f"/v3/projects/{quota[name]}/users/{user_id}/roles/{roles['roles'][0]['id']}", token)
    _, proj, _ = api("POST", port, "/v3/projects", token, {"project": {"name": "partner", "domain_id": "default"}})
    _, cred, _ = api("POST", port, f"/v3/users/{user_id}/application_credentials", token, {
        "application_credential": {"name": APP_CRED_NAME, "secret": APP_CRED_SECRET}})
    return {"partner": proj["project"]["id"], "app_cred_id": cred["application_credential"]["id"],
            "admin_project": admin_project, "user_id": user_id, "endpoints": endpoints, "image_service": sid,
            "quota_project": quota["quota"], "quota_direct_project": quota["quota-direct"]}


def env_lines(base: int, ids: dict) -> str:
    return (f"CLOUD_HELPER_OS_AUTH_URL={url(base)}/v3\n"
            f"CLOUD_HELPER_OS_PASSWORD={ADMIN_PASSWORD}\n"
            f"CLOUD_HELPER_OS_APP_CRED_ID={ids.get('app_cred_id', '')}\n"
            f"CLOUD_HELPER_OS_APP_CRED_SECRET={APP_CRED_SECRET}\n"
            f"CLOUD_HELPER_OS_PARTNER_PROJECT={ids.get('partner', '')}\n"
            f"CLOUD_HELPER_OS_ADMIN_PROJECT={ids.get('admin_project', '')}\n"
            f"CLOUD_HELPER_OS_FAULT_URL={url(base + 3)}\n"
            f"CLOUD_HELPER_OS_QUOTA_PROJECT={ids.get('quota_project', '')}\n"
            f"CLOUD_HELPER_OS_IMAGE_SERVICE={ids.get('image_service', '')}\n"
            f"CLOUD_HELPER_OS_QUOTA_DIRECT_PROJECT={ids.get('quota_direct_project', '')}\n")


def start(d: str, base: int) -> int:
    t0 = time.time()
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    os.makedirs(d, exist_ok=True)
    d = os.path.abspath(d)
    if any(read_pid(d, c["name"]) for c in components(configured_base(d) or base, d)):
        print(f"openstack services: stopping leftovers of an earlier start in {d}")
        stop(d, quiet=True)
    missing = [p for p in ("/usr/bin/glance-api", "/usr/bin/glance-manage", "/usr/bin/keystone-manage",
                           "/usr/bin/keystone-wsgi-public", SYSTEM_PYTHON) if not os.access(p, os.X_OK)]
    if missing:
        print(f"openstack services: {', '.join(missing)} missing: run tests/openstack/setup.sh (installs "
              "glance-api, keystone and python3-keystonemiddleware from Debian)", file=sys.stderr)
        return 1
    comps = components(base, d)
    busy = [c for c in comps if port_busy(c["port"])]
    if busy:
        ports = ", ".join(f"{HOST}:{c['port']} ({c['name']})" for c in busy)
        print(f"openstack services: port(s) {ports} busy: stop what holds them (`python3 {os.path.abspath(__file__)} "
              f"stop --dir DIR`, or see `ss -ltnp`) or use other ports (--port-base N; CMake "
              f"-DCLOUD_HELPER_OPENSTACK_PORT_BASE=N)", file=sys.stderr)
        return 1
    with open(os.path.join(d, "ports.json"), "w") as f:
        json.dump({"base": base}, f)
    cache = os.path.join(d, f"cache-v{CACHE_VERSION}-{base}")
    for name in os.listdir(d):  # caches of older versions or other ports
        if name.startswith("cache-") and os.path.join(d, name) != cache and not name.endswith(".tmp"):
            shutil.rmtree(os.path.join(d, name), ignore_errors=True)
    data = os.path.join(d, "data")
    try:
        if not os.path.exists(os.path.join(cache, "keystone.db")):
            build_cache(d, cache, base)
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(cache, data)
        for name in os.listdir(d):
            if name.startswith(("images-", "staging-")):
                shutil.rmtree(os.path.join(d, name), ignore_errors=True)
        os.makedirs(os.path.join(d, "lock"), exist_ok=True)
        with open(os.path.join(data, "ids.json")) as f:
            ids = json.load(f)
        with open(os.path.join(d, "keystone.conf"), "w") as f:
            f.write(keystone_conf(d, data))
        for region, off in REGIONS:
            os.makedirs(os.path.join(d, "images-" + region), exist_ok=True)
            os.makedirs(os.path.join(d, "staging-" + region), exist_ok=True)
            with open(os.path.join(d, f"glance-{region}.conf"), "w") as f:
                f.write(glance_conf(d, data, region, base + off, base,
                                    ids["endpoints"][region] if region == QUOTA_REGION else ""))
    except (OSError, RuntimeError, ValueError) as e:
        print(f"openstack services: start failed while making the databases: {e}", file=sys.stderr)
        return 1
    for c in comps:
        log = open(os.path.join(d, c["name"] + ".log"), "w")
        p = subprocess.Popen(c["cmd"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True, cwd=d)
        log.close()
        with open(os.path.join(d, c["name"] + ".pid"), "w") as f:
            f.write(f"{p.pid}\n")
        c["proc"] = p

    try:
        with concurrent.futures.ThreadPoolExecutor(len(comps)) as pool:
            futs = [pool.submit(wait_ready, d, c) for c in comps]
            for fut in futs:
                fut.result()
    except Exception as e:  # noqa: BLE001 - any failure stops what was started
        print(f"openstack services: start failed: {e}", file=sys.stderr)
        stop(d, quiet=True)
        return 1
    with open(os.path.join(d, "env"), "w") as f:
        f.write(env_lines(base, ids))
    print(f"openstack services: up in {time.time() - t0:.1f} s (logs, pids, env in {d}):")
    print("".join("  " + line + "\n" for line in env_lines(base, ids).splitlines()), end="")
    return 0


def status(d: str) -> int:
    base = configured_base(d)
    if base is None:
        print(f"openstack services: not started in {d}")
        return 3
    up = True
    for c in components(base, d):
        pid = read_pid(d, c["name"])
        ok = pid is not None and ours(pid, d, c["port"]) and answers(c)
        up &= ok
        print(f"  {c['name']:<16} {url(c['port'])}  pid {pid or '-'}  {'up' if ok else 'DOWN'}")
    return 0 if up else 3


def main() -> int:
    ap = argparse.ArgumentParser(description="Keystone and Glance for the tests (see tests/openstack/README.md)")
    ap.add_argument("action", choices=["start", "stop", "status"])
    ap.add_argument("--dir", required=True, help="state directory: pid files, logs, env, databases, image stores")
    ap.add_argument("--port-base", type=int, default=DEFAULT_BASE, help="first of six consecutive ports")
    args = ap.parse_args()
    d = os.path.abspath(args.dir)
    if args.action == "start":
        return start(d, args.port_base)
    if args.action == "stop":
        return stop(d) if os.path.isdir(d) else print(f"openstack services: stopped nothing ({d} does not exist)") or 0
    return status(d)


if __name__ == "__main__":
    sys.exit(main())
