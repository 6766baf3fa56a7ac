#!/usr/bin/env bash
# Grows the reader fuzz corpora with libFuzzer (clang, ASan, UBSan).
#   scripts/fuzz.sh [SECONDS_PER_FORMAT]   (default 60)
# Seeds are tiny images made by qemu-img; new interesting inputs are merged
# (minimised) into tests/fuzz/corpus/FORMAT/, which the CTest suite replays.
# A crash leaves its reproducer in build-fuzz/ and exits non-zero.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
secs=${1:-60}
"$top/scripts/setup.sh" >/dev/null
command -v clang++ >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq clang >/dev/null; }
CC=clang CXX=clang++ cmake -S "$top" -B "$top/build-fuzz" -DCLOUD_HELPER_FUZZ=ON -DCLOUD_HELPER_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build-fuzz" -j"$(nproc)" --target qcow2_fuzz vhd_fuzz vmdk_fuzz probe_fuzz >/dev/null

seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
head -c 3000 /dev/urandom > "$seeds/data"
truncate -s 1M "$seeds/src.raw"
dd if="$seeds/data" of="$seeds/src.raw" bs=1 seek=70000 conv=notrunc status=none
mk() { qemu-img convert -q -f raw -O "$@"; }
mkdir -p "$seeds/qcow2" "$seeds/vhd" "$seeds/vmdk"
mk qcow2 -o cluster_size=512 "$seeds/src.raw" "$seeds/qcow2/plain.qcow2"
mk qcow2 -c -o cluster_size=512 "$seeds/src.raw" "$seeds/qcow2/compressed.qcow2"
mk qcow2 -o cluster_size=512,compat=0.10 "$seeds/src.raw" "$seeds/qcow2/v2.qcow2"
mk vpc -o subformat=dynamic "$seeds/src.raw" "$seeds/vhd/dynamic.vhd"
mk vpc -o subformat=fixed,force_size "$seeds/src.raw" "$seeds/vhd/fixed.vhd"
mk vmdk -o subformat=streamOptimized "$seeds/src.raw" "$seeds/vmdk/stream.vmdk"
mk vmdk -o subformat=monolithicSparse "$seeds/src.raw" "$seeds/vmdk/sparse.vmdk"

status=0
for fmt in qcow2 vhd vmdk probe; do
  corpus="$top/tests/fuzz/corpus/$fmt"
  mkdir -p "$corpus"
  seeddir="$seeds/$fmt"; [ "$fmt" = probe ] && seeddir="$seeds/qcow2"
  work=$(mktemp -d)
  echo "fuzz: $fmt for ${secs}s" >&2
  (cd "$top/build-fuzz" && ./"${fmt}_fuzz" "$work" "$corpus" "$seeddir" -max_total_time="$secs" \
      -max_len=262144 -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 2>&1 | tail -5) || status=1
  "$top/build-fuzz/${fmt}_fuzz" -merge=1 "$corpus" "$work" >/dev/null 2>&1 || true
  rm -rf "$work"
done
du -sh "$top/tests/fuzz/corpus"/* >&2
exit $status
