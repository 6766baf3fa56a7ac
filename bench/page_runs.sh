#!/usr/bin/env bash
# The request/bytes trade-off of a sparse page-blob upload (bench/page_runs.cc)
# for the bench VHD: how many Put Page requests sending at most 1.005x or
# 1.01x the non-zero 512-byte pages needs at the least. Writes
# bench/page-runs-results.md.
# Usage: bench/page_runs.sh [IMAGE]   (default bench/work/azure/disk-full.vhd)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
img=${1:-$here/work/azure/disk-full.vhd}
[[ -f $img ]] || { echo "page_runs.sh: $img missing (bash bench/azure.sh makes it)" >&2; exit 2; }
mkdir -p "$here/work"
g++ -O2 -std=c++20 -o "$here/work/page_runs" "$here/page_runs.cc"
{
  echo "# Put Page requests vs bytes sent (bench/page_runs.sh)"
  echo
  echo "Image: $(basename "$img"), $(stat -c %s "$img") bytes."
  "$here/work/page_runs" "$img"
} >"$here/page-runs-results.md"
cat "$here/page-runs-results.md"
