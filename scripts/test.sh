#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs the whole suite
# (unit, format conformance against qemu-img, CLI) through CTest.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/scripts/setup.sh"
cd "$top/build"
ctest --output-on-failure -j"$(nproc)" --timeout 600
