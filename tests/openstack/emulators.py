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
  base+4  a static HTTP server (Python's http.server) of DIR/web: the
          web-download source. Every Glance's [import_filtering_opts] allows
          host 127.0.0.1 and ports 80, 443 and base+4 (an allowed host is
          fetched from even when it is loopback: glance/common/utils.py
          resolve_pinned_address); any other port is refused.
                             CLOUD_HELPER_OS_WEB_DIR, CLOUD_HELPER_OS_WEB_URL
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
DIR/cache-vN-BASE and copies them for every start (fresh state, quick
restarts; DIR/web, the image stores and staging areas are emptied too),
then runs the servers through tests/emulator_common.py: DIR/env (KEY=VALUE
lines), DIR/NAME.pid, DIR/NAME.log, a wait until every server answers (a
server that exits or stays silent fails the start with the tail of its
log); `stop` ends exactly the processes its pid files name (each in its own
session) and is safe to repeat. Exit status: 0 done, 1 failed, 3 (status)
not all running.
"""

from __future__ import annotations

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

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
AWS_DIR = os.path.join(os.path.dirname(HERE), "aws")
sys.path.insert(0, os.path.dirname(HERE))
import emulator_common as ec  # noqa: E402

HOST = ec.HOST
url = ec.url
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
WEB_OFFSET = 4
# Bumped whenever what build_cache makes changes: older caches are remade.
CACHE_VERSION = 4
# Glance's four unified-limit resources (glance/quota/keystone.py) and the
# registered defaults: far above what the tests use.
REGISTERED_LIMITS = {"image_size_total": 100000, "image_stage_total": 100000, "image_count_total": 10000,
                     "image_count_uploading": 1000}
BINARIES = ("/usr/bin/glance-api", "/usr/bin/glance-manage", "/usr/bin/keystone-manage",
            "/usr/bin/keystone-wsgi-public", SYSTEM_PYTHON)


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
[import_filtering_opts]
# web-download from the static server at base+4: a host listed here is
# fetched from even when it is loopback (resolve_pinned_address), and
# the port must be listed too (default 80, 443). Both are ListOpts with
# bounds=True: without the brackets reading them raises a ValueError,
# which validate_uri takes for "does not pass filtering".
allowed_hosts = [{HOST}]
allowed_ports = [80,443,{keystone_port + WEB_OFFSET}]
"""


def keystone_component(port: int, conf: str) -> ec.Component:
    return ec.Component("keystone", port, [SYSTEM_PYTHON, "/usr/bin/keystone-wsgi-public", "--host", HOST, "--port",
                                           str(port), "--", "--config-file", conf],
                        ready="/v3", ready_status=[200, 300], marks=[conf, str(port)], timeout=60)


def components(base: int, d: str) -> list[ec.Component]:
    out = [keystone_component(base, os.path.join(d, "keystone.conf"))]
    for region, off in REGIONS:
        conf = os.path.join(d, f"glance-{region}.conf")
        # Glance's /versions answers 300 Multiple Choices.
        out.append(ec.Component("glance-" + region, base + off, [SYSTEM_PYTHON, "/usr/bin/glance-api",
                                                                 "--config-file", conf],
                                ready="/versions", ready_status=[200, 300], marks=[conf], timeout=60))
    proxy = os.path.join(AWS_DIR, "fault_proxy.py")
    out.append(ec.Component("fault_proxy", base + 3, [sys.executable, proxy, "--host", HOST, "--port", str(base + 3),
                                                      "--upstream", url(base + 1)],
                            ready="/_fault/health", marks=[proxy, str(base + 3)]))
    web, port = os.path.join(d, "web"), base + WEB_OFFSET
    out.append(ec.Component("web", port, [sys.executable, "-m", "http.server", str(port), "--bind", HOST,
                                          "--directory", web], ready="/", marks=[web, str(port)]))
    return out


def run(cmd: list[str], log: str) -> None:
    with open(log, "a") as f:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        with open(log, errors="replace") as f:
            tail = "".join(f.readlines()[-10:])
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed with status {r.returncode}:\n{tail}")


def sqlite_pragma(d: str, pragma: str) -> None:
    for db in os.listdir(d):
        if db.endswith(".db"):
            c = sqlite3.connect(os.path.join(d, db))
            c.execute("PRAGMA " + pragma)
            c.close()


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
    sqlite_pragma(tmp, "journal_mode=WAL")
    # The catalog, projects and credential go in through Keystone's API, once.
    # On a free port of its own: nothing else is bound yet, and the URLs it
    # stores are the base port's anyway.
    free = socket.socket()
    free.bind((HOST, 0))
    c = keystone_component(free.getsockname()[1], conf)
    free.close()
    p = ec.launch(c, d, "setup-keystone")
    try:
        ec.wait_ready(c, p, d, "setup-keystone")
        ids = configure_keystone(c.port, base)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
        p.wait()
    sqlite_pragma(tmp, "wal_checkpoint(TRUNCATE)")
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


def ids_of(d: str) -> dict:
    with open(os.path.join(d, "data", "ids.json")) as f:
        return json.load(f)


def env_lines(base: int, d: str) -> str:
    ids = ids_of(d)
    return (f"CLOUD_HELPER_OS_AUTH_URL={url(base)}/v3\n"
            f"CLOUD_HELPER_OS_PASSWORD={ADMIN_PASSWORD}\n"
            f"CLOUD_HELPER_OS_APP_CRED_ID={ids.get('app_cred_id', '')}\n"
            f"CLOUD_HELPER_OS_APP_CRED_SECRET={APP_CRED_SECRET}\n"
            f"CLOUD_HELPER_OS_PARTNER_PROJECT={ids.get('partner', '')}\n"
            f"CLOUD_HELPER_OS_ADMIN_PROJECT={ids.get('admin_project', '')}\n"
            f"CLOUD_HELPER_OS_FAULT_URL={url(base + 3)}\n"
            f"CLOUD_HELPER_OS_QUOTA_PROJECT={ids.get('quota_project', '')}\n"
            f"CLOUD_HELPER_OS_IMAGE_SERVICE={ids.get('image_service', '')}\n"
            f"CLOUD_HELPER_OS_QUOTA_DIRECT_PROJECT={ids.get('quota_direct_project', '')}\n"
            f"CLOUD_HELPER_OS_WEB_DIR={os.path.join(d, 'web')}\n"
            f"CLOUD_HELPER_OS_WEB_URL={url(base + WEB_OFFSET)}\n")


def check() -> str | None:
    missing = [p for p in BINARIES if not os.access(p, os.X_OK)]
    return (f"{', '.join(missing)} missing: run tests/openstack/setup.sh (installs glance-api, keystone and "
            "python3-keystonemiddleware from Debian)") if missing else None


def prepare(d: str, base: int) -> None:
    """The databases (from the cache, made first when missing), fresh stores
    and the configuration files."""
    cache = os.path.join(d, f"cache-v{CACHE_VERSION}-{base}")
    for name in os.listdir(d):  # caches of older versions or other ports
        if name.startswith("cache-") and os.path.join(d, name) != cache and not name.endswith(".tmp"):
            shutil.rmtree(os.path.join(d, name), ignore_errors=True)
    if not os.path.exists(os.path.join(cache, "keystone.db")):
        build_cache(d, cache, base)
    data = os.path.join(d, "data")
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(cache, data)
    for name in os.listdir(d):
        if name.startswith(("images-", "staging-")) or name == "web":
            shutil.rmtree(os.path.join(d, name), ignore_errors=True)
    for sub in ["lock", "web"] + [f"{kind}-{r}" for r, _ in REGIONS for kind in ("images", "staging")]:
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    ids = ids_of(d)
    with open(os.path.join(d, "keystone.conf"), "w") as f:
        f.write(keystone_conf(d, data))
    for region, off in REGIONS:
        with open(os.path.join(d, f"glance-{region}.conf"), "w") as f:
            f.write(glance_conf(d, data, region, base + off, base,
                                ids["endpoints"][region] if region == QUOTA_REGION else ""))


CLOUD = ec.Cloud(title="openstack services",
                 description="Keystone and Glance for the tests (see tests/openstack/README.md)",
                 default_base=DEFAULT_BASE, cmake_var="CLOUD_HELPER_OPENSTACK_PORT_BASE", components=components,
                 env=env_lines, check=check, prepare=prepare,
                 dir_help="state directory: pid files, logs, env, databases, image stores",
                 base_help="first of six consecutive ports")

if __name__ == "__main__":
    sys.exit(ec.main(CLOUD))
