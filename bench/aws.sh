#!/usr/bin/env bash
# AWS benchmarks of issue 3, against the test harness's emulators on loopback
# (tests/aws/emulators.py, ports 47400-47403 or BENCH_AWS_PORT_BASE.., started
# and stopped here):
# uploads go to plain moto (47401) for both tools; import and publish go
# through the gap proxy (47400), which adds what moto lacks (image block
# public access, deprecation). Ratios:
#
#   task     ours                                 peer / reference              target
#   upload   cloud_helper upload (1 GiB file)     aws s3 cp (same file, moto)   time <= 0.7x
#   ebs      cloud_helper import (ebs-direct) of  —                             only non-zero blocks sent,
#            bench/work/disk-full.raw (6 GiB ext4)                                    peak RSS <= 256 MiB
#   publish  publish to 16 regions                publish to 1 region (a copy)  time <= 2x
#
# Usage: bench/aws.sh [--runs N] [--quick] [--only upload|ebs|publish]
#   (--quick: 256 MiB upload, 1 run; --only: that task alone, the others "-")
# Writes bench/aws-results.md. Needs build/cloud_helper, awscli and moto.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bin=${CLOUD_HELPER:-$repo/build/cloud_helper}
work=$here/work/aws
runs=3
upload_mib=1024
quick=0
only=""
while (($#)); do
  case $1 in
    --runs) runs=$2; shift ;;
    --quick) quick=1; runs=1; upload_mib=256 ;;
    --only) only=$2; shift ;;
    *) echo "aws.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$work"
base=${BENCH_AWS_PORT_BASE:-47400}
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export CLOUD_HELPER_POLL_SCALE=0.01
python3 "$repo/tests/aws/emulators.py" start --dir "$work/emulators" --port-base $base >/dev/null || exit 1
trap 'python3 "$repo/tests/aws/emulators.py" stop --dir "$work/emulators" --port-base $base >/dev/null 2>&1' EXIT
export AWS_ENDPOINT_URL=http://127.0.0.1:$((base + 1))
aws s3 mb s3://bench >/dev/null

# wall seconds and peak RSS (KiB) of a command: "SECONDS KIB"
measure() {
  /usr/bin/time -f '%e %M' -o "$work/time.txt" "$@" >"$work/cmd.log" 2>&1 || {
    echo "aws.sh: failed: $*" >&2; tail -5 "$work/cmd.log" >&2; return 1; }
  cat "$work/time.txt"
}
# CPU seconds the emulators (moto and the gap proxy) have used so far: the
# server side of every task here is Python under one GIL, so this is the
# floor of each run's time whatever the client does.
server_cpu() {
  local p t=0 hz
  hz=$(getconf CLK_TCK)
  for p in $(cat "$work/emulators/moto.pid" "$work/emulators/gap_proxy.pid"); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  python3 -c "print(f'{$t / $hz:.2f}')"
}
# difference of two server_cpu readings
cpu_diff() { python3 -c "print(f'{$2 - $1:.2f}')"; }
# median of the runs (the lower middle one for an even count)
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

want() { [[ -z $only || $only == "$1" ]]; }
o=- p=- r=0 up_ratio=- b16=- b1=- pub_ratio=-

# ---- upload
if want upload; then
file=$work/upload-$upload_mib.bin
[[ -f $file ]] || head -c $((upload_mib << 20)) /dev/urandom >"$file"
cat "$file" >/dev/null
cat >"$work/up.yaml" <<YAML
name: bench-upload
cloud: aws
arch: x86_64
image_file: $(basename "$file")
storage_url: s3://bench/ours/
YAML
ours_up=() peer_up=() rss_up=() ours_cpu=() peer_cpu=()
for ((i = 0; i < runs; i++)); do
  c0=$(server_cpu)
  read -r t m < <(measure "$bin" --no-progress --force upload "$work/up.yaml") || exit 1
  ours_up+=("$t"); rss_up+=("$m"); ours_cpu+=("$(cpu_diff "$c0" "$(server_cpu)")")
  aws s3 rm s3://bench/ours/ --recursive >/dev/null
  c0=$(server_cpu)
  read -r t m < <(measure aws s3 cp --only-show-errors "$file" s3://bench/peer/x.bin) || exit 1
  peer_up+=("$t"); peer_cpu+=("$(cpu_diff "$c0" "$(server_cpu)")")
  aws s3 rm s3://bench/peer/ --recursive >/dev/null
done
o=$(printf '%s\n' "${ours_up[@]}" | median); p=$(printf '%s\n' "${peer_up[@]}" | median)
r=$(printf '%s\n' "${rss_up[@]}" | sort -n | tail -1)
up_ratio=$(python3 -c "print(f'{$o/$p:.2f}')")
oc=$(printf '%s\n' "${ours_cpu[@]}" | median); pc=$(printf '%s\n' "${peer_cpu[@]}" | median)
fi

# ---- ebs-direct import of the bench image (through the gap proxy)
export AWS_ENDPOINT_URL=http://127.0.0.1:$base
img=$here/work/disk-full.raw
ebs_line="skipped: bench/work/disk-full.raw missing (bash bench/make_image.sh)"
if ((quick)); then img=$work/quick.raw; truncate -s 1G "$img"; dd if=/dev/urandom of="$img" bs=1M count=100 seek=300 conv=notrunc 2>/dev/null; fi
want ebs || { img=/nonexistent; ebs_line="- (--only $only)"; }
if [[ -f $img ]]; then
  cat >"$work/ebs.yaml" <<YAML
name: bench-ebs-$RANDOM
cloud: aws
arch: x86_64
firmware: uefi
image_file: $img
regions: [us-east-1]
YAML
  read -r t m < <(measure "$bin" --no-progress import "$work/ebs.yaml") || exit 1
  sent=$(grep -o '[0-9]* blocks sent, [0-9]* zero blocks skipped[^)]*)' "$work/cmd.log" | head -1)
  nonzero=$(python3 - "$img" <<'PY'
import sys
z = bytes(512 * 1024); n = 0
with open(sys.argv[1], 'rb') as f:
    while True:
        b = f.read(512 * 1024)
        if not b: break
        if b.rstrip(b'\0'): n += 1
print(n)
PY
)
  ebs_line="$t s, peak RSS $((m / 1024)) MiB, $sent; non-zero 512 KiB blocks in the image: $nonzero"
  ebs_rss=$((m / 1024))
fi

# ---- publish: 16 regions vs 1
regions16=(us-east-1 us-east-2 us-west-1 us-west-2 eu-west-1 eu-west-2 eu-west-3 eu-central-1
           eu-north-1 ap-south-1 ap-northeast-1 ap-northeast-2 ap-southeast-1 ap-southeast-2 ca-central-1 sa-east-1)
small=$work/small.raw
truncate -s 64M "$small"; dd if=/dev/urandom of="$small" bs=1M count=4 seek=8 conv=notrunc 2>/dev/null
# One region is one copy (eu-west-1), as each of the 16 is (but the home
# region's own); every image is imported into us-east-1 first.
pub() {  # N → seconds for publish to N regions (fresh image each time)
  local n=$1 y=$work/pub-$1-$RANDOM.yaml list
  list=$(IFS=,; echo "${regions16[*]:0:$n}")
  ((n == 1)) && list=eu-west-1
  printf 'name: bench-pub-%s\ncloud: aws\narch: x86_64\nfirmware: uefi\nimage_file: %s\nregion: us-east-1\nregions: [%s]\npublic: true\nend_of_life: 2027-06-01\n' \
    "$RANDOM$RANDOM" "$small" "$list" >"$y"
  "$bin" --no-progress import "$y" >/dev/null 2>&1 || return 1
  local c0; c0=$(server_cpu)
  read -r t m < <(measure "$bin" --no-progress publish "$y") || return 1
  echo "$t $(cpu_diff "$c0" "$(server_cpu)")"
}
p1=() p16=() c1=() c16=()
want publish || runs=0
for ((i = 0; i < runs; i++)); do
  read -r t c < <(pub 1); p1+=("$t"); c1+=("$c")
  read -r t c < <(pub 16); p16+=("$t"); c16+=("$c")
done
if want publish; then
  b1=$(printf '%s\n' "${p1[@]}" | median); b16=$(printf '%s\n' "${p16[@]}" | median)
  pub_ratio=$(python3 -c "print(f'{$b16/$b1:.2f}')")
  sc1=$(printf '%s\n' "${c1[@]}" | median); sc16=$(printf '%s\n' "${c16[@]}" | median)
fi

verdict() { [[ $1 == - ]] && echo - || python3 -c "print('pass' if $1 <= $2 else 'FAIL')"; }
out=$here/aws-results.md
((quick)) || [[ -n $only ]] && out=$work/aws-results-partial.md
{
  echo "# AWS benchmarks (bench/aws.sh, moto $(python3 -c 'import moto; print(moto.__version__)'), $(aws --version 2>&1 | cut -d' ' -f1))"
  echo
  echo "Machine: $(nproc) cores, $(python3 -c "import os; print(os.sysconf('SC_PAGE_SIZE')*os.sysconf('SC_PHYS_PAGES')>>30)") GiB; median of $runs; moto_server on loopback."
  echo
  echo "| task | ours | reference | ratio | target | |"
  echo "|---|---|---|---|---|---|"
  echo "| upload ${upload_mib} MiB | $o s (peak RSS $((r / 1024)) MiB) | aws s3 cp $p s | ${up_ratio}x | <= 0.7x | $(verdict "$up_ratio" 0.7) |"
  echo "| publish 16 regions | $b16 s | 1 region $b1 s | ${pub_ratio}x | <= 2x | $(verdict "$pub_ratio" 2) |"
  echo "| ebs-direct import | $ebs_line | | | RSS <= 256 MiB | $( [[ -n ${ebs_rss:-} ]] && verdict "$ebs_rss" 256 || echo -) |"
  echo
  echo "Emulator CPU (moto + gap proxy, CPU seconds used during the run, median; Python, one GIL each):"
  echo
  echo "| task | ours | reference |"
  echo "|---|---|---|"
  echo "| upload ${upload_mib} MiB | ${oc:--} s | aws s3 cp ${pc:--} s |"
  echo "| publish | 16 regions ${sc16:--} s | 1 region ${sc1:--} s |"
} >"$out"
cat "$out"
