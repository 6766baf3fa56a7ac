#!/usr/bin/env bash
# Grows the reader fuzz corpora with libFuzzer (clang, ASan, UBSan).
#   scripts/fuzz.sh [SECONDS_PER_FORMAT [FORMAT...]]   (default 60; qcow2 vhd vmdk probe)
# Seeds are tiny images (qemu-img for qcow2, tests/fuzz/make_seeds.py for VHD
# and VMDK, whose qemu-made minimum is 2 MiB / 128 KiB). Each format is fuzzed
# in turn, one process (the machine is shared), then its corpus is rebuilt by
# a minimising merge of the old corpus, the seeds and the new finds into
# tests/fuzz/corpus/FORMAT/, which the FuzzCorpus test replays.
# A crash, hang (-timeout) or big allocation (-malloc_limit_mb) leaves its
# reproducer in build-fuzz/crashes/ and makes the script exit non-zero;
# replay one with: CH_FUZZ_FORMAT=vhd build-fuzz/probe_fuzz FILE
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
secs=${1:-60}
shift || true
formats=("$@")
((${#formats[@]})) || formats=(qcow2 vhd vmdk probe)

# Per-input limits. max_len bounds the corpus size (a few KiB images suffice:
# the seeds use small grains and blocks); a reader that allocates more than
# malloc_limit_mb for such an input has an unbounded allocation.
max_len=16384
limits=(-max_len=$max_len -timeout=5 -rss_limit_mb=1024 -malloc_limit_mb=256)

for tool in clang++ qemu-img python3 cmake; do
  command -v "$tool" >/dev/null || { echo "fuzz: $tool is missing (apt-get install clang qemu-utils python3 cmake)" >&2; exit 2; }
done
build="$top/build-fuzz"
CC=clang CXX=clang++ cmake -S "$top" -B "$build" -DCLOUD_HELPER_FUZZ=ON -DCLOUD_HELPER_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# One binary serves every format (CH_FUZZ_FORMAT): the four CMake targets
# each compile every core source with sanitizers.
cmake --build "$build" -j"$(nproc)" --target probe_fuzz >/dev/null
fuzzer="$build/probe_fuzz"

seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
truncate -s 1M "$seeds/src.raw"
seq 1 800 | dd of="$seeds/src.raw" bs=1 seek=70000 conv=notrunc status=none
mkdir -p "$seeds/qcow2"
mk() { qemu-img convert -q -f raw -O "$@"; }
mk qcow2 -o cluster_size=512 "$seeds/src.raw" "$seeds/qcow2/plain.qcow2"
mk qcow2 -c -o cluster_size=512 "$seeds/src.raw" "$seeds/qcow2/compressed.qcow2"
mk qcow2 -o cluster_size=512,compat=0.10 "$seeds/src.raw" "$seeds/qcow2/v2.qcow2"
python3 "$top/tests/fuzz/make_seeds.py" "$seeds"
mkdir -p "$seeds/probe"
cp "$seeds"/qcow2/* "$seeds"/vhd/* "$seeds"/vmdk/* "$seeds/probe/"

mkdir -p "$build/crashes"
status=0
for fmt in "${formats[@]}"; do
  corpus="$top/tests/fuzz/corpus/$fmt"
  mkdir -p "$corpus"
  work=$(mktemp -d) fresh=$(mktemp -d)
  log="$build/fuzz-$fmt.log"
  echo "fuzz: $fmt for ${secs}s (log: $log)" >&2
  if ! (cd "$build" && CH_FUZZ_FORMAT=$fmt "$fuzzer" "$work" "$corpus" "$seeds/$fmt" \
          -max_total_time="$secs" "${limits[@]}" -artifact_prefix="$build/crashes/$fmt-" \
          -print_final_stats=1 >"$log" 2>&1); then
    status=1
    grep -E '^(==[0-9]+==ERROR|SUMMARY)|artifact_prefix|Test unit written' "$log" >&2 || tail -20 "$log" >&2
  fi
  grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$log" >&2 || true
  # Minimise: keep only inputs that add coverage, old corpus first.
  if CH_FUZZ_FORMAT=$fmt "$fuzzer" -merge=1 "${limits[@]}" "$fresh" "$corpus" "$seeds/$fmt" "$work" \
       >"$build/merge-$fmt.log" 2>&1; then
    rm -rf "$corpus" && mv "$fresh" "$corpus" && chmod 755 "$corpus"
  else
    echo "fuzz: merge for $fmt failed (see $build/merge-$fmt.log); corpus left as it was" >&2
    status=1
    rm -rf "$fresh"
  fi
  rm -rf "$work"
  echo "fuzz: $fmt corpus: $(ls "$corpus" | wc -l) files, $(du -sh "$corpus" | cut -f1)" >&2
done
exit $status
