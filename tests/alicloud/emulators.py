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

import os
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import emulator_common as ec  # noqa: E402

FAKE = os.path.join(HERE, "fake_alicloud.py")


def components(base: int, d: str) -> list[ec.Component]:
    return [ec.Component("fake_alicloud", base, [sys.executable, FAKE, "--host", ec.HOST, "--oss-port", str(base),
                                                 "--ecs-port", str(base + 1), "--state-dir", os.path.join(d, "state")],
                         also=[base + 1], marks=[FAKE, str(base)], timeout=20)]


def env_lines(base: int, d: str) -> str:
    return (f"CLOUD_HELPER_ALICLOUD_OSS_ENDPOINT={ec.url(base)}\n"
            f"CLOUD_HELPER_ALICLOUD_ECS_ENDPOINT={ec.url(base + 1)}\n")


CLOUD = ec.Cloud(title="alicloud emulators", description="fake Alibaba Cloud for the tests (see tests/alicloud/README.md)",
                 default_base=47300, cmake_var="CLOUD_HELPER_ALICLOUD_PORT_BASE", components=components,
                 env=env_lines, base_help="first of two consecutive ports")

if __name__ == "__main__":
    sys.exit(ec.main(CLOUD))
