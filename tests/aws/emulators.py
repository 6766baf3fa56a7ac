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

import concurrent.futures
import json
import os
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import emulator_common as ec  # noqa: E402

# moto's EC2 otherwise loads ~1,200 public AMIs and their snapshots per
# region: slow, and noise in every DescribeSnapshots.
MOTO_ENV = {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}
# CreateUser, PutUserPolicy, CreateAccessKey: then every request is checked.
AUTH_SETUP_ACTIONS = 3
AUTH_USER = "cloud-helper-test"
url = ec.url


def components(base: int, d: str) -> list[ec.Component]:
    py, host = sys.executable, ec.HOST
    moto = [py, "-m", "moto.server", "-H", host]
    return [
        ec.Component("moto", base + 1, moto + ["-p", str(base + 1)], ready="/moto-api/", env=MOTO_ENV),
        ec.Component("moto_auth", base + 3, moto + ["-p", str(base + 3)], ready="/moto-api/",
                     env=dict(MOTO_ENV, INITIAL_NO_AUTH_ACTION_COUNT=str(AUTH_SETUP_ACTIONS))),
        ec.Component("gap_proxy", base, [py, os.path.join(HERE, "gap_proxy.py"), "--host", host, "--port", str(base),
                                         "--upstream", url(base + 1)], ready="/_gap/health"),
        ec.Component("fault_proxy", base + 2, [py, os.path.join(HERE, "fault_proxy.py"), "--host", host, "--port",
                                               str(base + 2), "--upstream", url(base)], ready="/_fault/health"),
    ]


def env_lines(base: int, d: str) -> str:
    return (f"CLOUD_HELPER_AWS_ENDPOINT={url(base)}\n"
            f"CLOUD_HELPER_MOTO_URL={url(base + 1)}\n"
            f"CLOUD_HELPER_AWS_FAULT_ENDPOINT={url(base + 2)}\n"
            f"CLOUD_HELPER_AWS_AUTH_ENDPOINT={url(base + 3)}\n"
            f"CLOUD_HELPER_AWS_AUTH_KEYS={os.path.join(d, 'auth_keys.json')}\n")


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


def check() -> str | None:
    hermetic_aws_env()
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
    except ImportError as e:
        return f"{sys.executable} cannot import {e.name}: install moto[server] and boto3 for it"
    return None


def after_ready(d: str, base: int) -> None:
    """Warms moto up and makes the IAM user of the checking moto, at once."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        warm = pool.submit(warm_up, base + 1, d)
        keys = pool.submit(make_auth_user, base + 3).result()
        warm.result()
    with open(os.path.join(d, "auth_keys.json"), "w") as f:
        json.dump(keys, f, indent=1)


CLOUD = ec.Cloud(title="emulators", description="AWS emulators for the tests (see tests/aws/README.md)",
                 default_base=47000, cmake_var="CLOUD_HELPER_AWS_PORT_BASE", components=components,
                 env=env_lines, check=check, after_ready=after_ready,
                 dir_help="state directory: pid files, logs, env, auth_keys.json",
                 base_help="first of four consecutive ports")

if __name__ == "__main__":
    sys.exit(ec.main(CLOUD))
