#!/usr/bin/env bash
# The benchmarks behind every figure in the README. Each task times
# cloud_helper and the usual peer tool on the same input in the same run
# (page cache warmed first, best of N wall-clock runs), and checks the
# targets: speed as a ratio to the peer, output size where the format
# compresses, and our peak RSS for every conversion.
#
#   task      ours                                peer                                    target
#   qcow2     convert -O qcow2                    qemu-img convert -O qcow2               time <= 0.8x
#   vhd       convert -O vhd                      qemu-img convert -O vpc                 time <= 1.0x
#                                                   -o subformat=fixed,force_size
#   vmdk      convert -O vmdk                     qemu-img convert -O vmdk                time <= 0.15x, size <= 1.10x
#                                                   -o subformat=streamOptimized
#   gce-tar   convert -O gce-tar                  tar --format=oldgnu -Scf - disk.raw     time <= 0.30x, size <= 1.10x
#                                                   | pigz -p 2
#   checksum  checksum -a sha256,sha512,md5       openssl dgst -sha256/-sha512/-md5       time <= 0.6x
#   every conversion: our peak RSS <= 128 MiB
#
# Usage: bench/run.sh [--quick] [--runs N] [--only TASK,TASK]
#   --only   run just these tasks; the table goes to bench/results-only.md
#   --quick  1 GiB image with ~300 MB of files, one run: a smoke test of the
#            script, not a source of figures (results go to
#            bench/work/results-quick.md instead of bench/results.md).
# Works from any directory; needs build/cloud_helper (cmake -S . -B build
# -DCMAKE_BUILD_TYPE=Release && cmake --build build). Exits 0 even when a
# target is missed: it reports, it does not gate.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bin=${CLOUD_HELPER:-$repo/build/cloud_helper}
work=$here/work

quick=0
runs=3
only=""
while (($#)); do
  case $1 in
    --quick) quick=1; runs=1 ;;
    --runs) runs=$2; shift ;;
    --only) only=",$2,"; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (expected --quick or --runs N)" >&2; exit 2 ;;
  esac
  shift
done

if [[ ! -x $bin ]]; then
  echo "run.sh: $bin not found; build it first: cmake -S $repo -B $repo/build -DCMAKE_BUILD_TYPE=Release && cmake --build $repo/build" >&2
  exit 2
fi
for tool in qemu-img pigz tar openssl; do
  command -v $tool >/dev/null || { echo "run.sh: $tool not found (it is a peer being measured)" >&2; exit 2; }
done

# Peak RSS: GNU time's %M (KiB). Without it, a python getrusage wrapper.
time_bin=/usr/bin/time
if [[ ! -x $time_bin ]] && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  apt-get install -y -qq time >/dev/null 2>&1 || true
fi
[[ -x $time_bin ]] || time_bin=

if ((quick)); then
  mapfile -t inputs < <("$here/make_image.sh" --quick) || exit 1
  results=$work/results-quick.md
else
  mapfile -t inputs < <("$here/make_image.sh") || exit 1
  results=$here/results.md
fi
[[ -n $only ]] && results=$here/results-only.md
image=${inputs[0]}
random=${inputs[1]}
out=$work/out
rm -rf "$out"
mkdir -p "$out"
trap 'rm -rf "$out"' EXIT

# ---- measuring -------------------------------------------------------------

# measure CMD: runs CMD with bash, sets ELAPSED (s), RSS_KB, RC; its stdout
# and stderr go to $out/log.
measure() {
  local start end
  # Start every run with no dirty pages left by the previous one, so that
  # neither side pays for the other's writeback, and with the inputs
  # re-read: the kernel's proactive reclaim (DAMON) evicts pages idle for a
  # while, which would otherwise hand a cold cache to whoever runs next.
  sync
  cat "$image" "$random" >/dev/null
  start=$(date +%s.%N)
  if [[ -n $time_bin ]]; then
    "$time_bin" -f '%M' -o "$out/rss" bash -c "$1" >"$out/log" 2>&1
    RC=$?
  else
    python3 -c '
import resource, subprocess, sys
rc = subprocess.call(["bash", "-c", sys.argv[1]])
open(sys.argv[2], "w").write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)' "$1" "$out/rss" >"$out/log" 2>&1
    RC=$?
  fi
  end=$(date +%s.%N)
  ELAPSED=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
  RSS_KB=$(tail -n 1 "$out/rss" 2>/dev/null)
  [[ $RSS_KB =~ ^[0-9]+$ ]] || RSS_KB=0
}

size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
alloc_of() { du -B1 "$1" 2>/dev/null | cut -f1 || echo 0; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.3f", a / b; else print "-" }'; }
mb() { awk -v a="$1" 'BEGIN { printf "%.1f", a / 1e6 }'; }

rows=()      # markdown rows
failures=0

# bench TASK OURS_CMD PEER_CMD OUR_OUT PEER_OUT TIME_TARGET SIZE_TARGET CHECK_RSS
# Output paths are removed after each measurement; "" means no output file.
bench() {
  local task=$1 ours=$2 peer=$3 our_out=$4 peer_out=$5 time_target=$6 size_target=$7 check_rss=$8
  local our_best="" peer_best="" our_rss=0 our_size=0 peer_size=0 our_alloc=0 peer_alloc=0
  local our_err="" peer_err="" i
  [[ -n $only && $only != *",$task,"* ]] && return 0
  echo "== $task" >&2
  for ((i = 1; i <= runs; i++)); do
    if [[ -z $our_err ]]; then
      measure "$ours"
      if ((RC != 0)); then
        our_err=$(grep -v '^Command exited' "$out/log" | head -n 1)
        echo "   ours: error (exit $RC): $our_err" >&2
      else
        our_best=$(min "$our_best" "$ELAPSED")
        ((RSS_KB > our_rss)) && our_rss=$RSS_KB
        [[ -n $our_out ]] && { our_size=$(size_of "$our_out"); our_alloc=$(alloc_of "$our_out"); }
        echo "   ours: ${ELAPSED}s, peak RSS $((RSS_KB / 1024)) MiB" >&2
      fi
      [[ -n $our_out ]] && rm -f "$our_out"
    fi
    if [[ -z $peer_err ]]; then
      measure "$peer"
      if ((RC != 0)); then
        peer_err=$(head -n 1 "$out/log")
        echo "   peer: error (exit $RC): $peer_err" >&2
      else
        peer_best=$(min "$peer_best" "$ELAPSED")
        [[ -n $peer_out ]] && { peer_size=$(size_of "$peer_out"); peer_alloc=$(alloc_of "$peer_out"); }
        echo "   peer: ${ELAPSED}s" >&2
      fi
      [[ -n $peer_out ]] && rm -f "$peer_out"
    fi
  done

  local r="-" sr="-" verdict notes=()
  if [[ -n $our_err ]]; then
    verdict=FAIL; notes+=("ours: error: $our_err"); our_best=error
  elif [[ -n $peer_err ]]; then
    verdict=FAIL; notes+=("peer: error: $peer_err"); peer_best=error
  else
    r=$(ratio "$our_best" "$peer_best")
    verdict=pass
    le "$r" "$time_target" || { verdict=FAIL; notes+=("time ${r}x > ${time_target}x"); }
    if [[ -n $size_target ]]; then
      sr=$(ratio "$our_size" "$peer_size")
      le "$sr" "$size_target" || { verdict=FAIL; notes+=("size ${sr}x > ${size_target}x"); }
    fi
    if ((check_rss)) && ((our_rss > 128 * 1024)); then
      verdict=FAIL; notes+=("peak RSS $((our_rss / 1024)) MiB > 128 MiB")
    fi
  fi
  [[ $verdict == FAIL ]] && ((failures++))
  local target="time <= ${time_target}x"
  [[ -n $size_target ]] && target+=", size <= ${size_target}x"
  ((check_rss)) && target+=", RSS <= 128 MiB"
  local sizes="-"
  if [[ -n $our_out && $our_best != error && $peer_best != error ]]; then
    sizes="$(mb "$our_size") / $(mb "$peer_size")"
    # Sparse outputs (fixed VHD): the apparent size says little; add what
    # the files occupy.
    if ((our_alloc * 10 < our_size * 9 || peer_alloc * 10 < peer_size * 9)); then
      sizes+=" (allocated $(mb "$our_alloc") / $(mb "$peer_alloc"))"
    fi
  fi
  local rss="-"
  [[ $our_best != error ]] && rss=$((our_rss / 1024))
  local note=""
  ((${#notes[@]})) && note=$(IFS=';'; echo "${notes[*]}")
  rows+=("| $task | $our_best | $peer_best | $r | $target | **$verdict** | $sizes | $sr | $rss | ${note//|/\\|} |")
  echo "   => $verdict ${note}" >&2
}

# ---- the machine and the peers --------------------------------------------

machine=(
  "CPU: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)"
  "cores (nproc): $(nproc)"
  "memory: $(free -g | awk '/^Mem:/ { print $2 " GiB" }')"
  "kernel: $(uname -r)"
  "filesystem of bench/work: $(df -T "$work" | awk 'NR == 2 { print $2 }')"
  "load average at start: $(cut -d ' ' -f 1-3 /proc/loadavg)"
)
versions=(
  "cloud_helper: $("$bin" --version 2>&1 | head -n 1) ($(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo 'no git'), binary $bin)"
  "qemu-img: $(qemu-img --version | head -n 1)"
  "pigz: $(pigz --version 2>&1 | head -n 1)"
  "tar: $(tar --version | head -n 1)"
  "openssl: $(openssl version)"
)
image_line="input: $(basename "$image"), $(mb "$(size_of "$image")") MB virtual, $(du -B1 "$image" | awk '{ printf "%.1f", $1 / 1e6 }') MB allocated (ext4 built from /usr files by bench/make_image.sh); checksum input: $(basename "$random"), $(mb "$(size_of "$random")") MB"
printf '%s\n' "${machine[@]}" "${versions[@]}" "$image_line" "runs: best of $runs" >&2

# Warm the page cache so that every tool reads from memory.
cat "$image" >/dev/null
cat "$random" >/dev/null

# ---- the tasks ---------------------------------------------------------------

q() { printf '%q' "$1"; }
I=$(q "$image")
R=$(q "$random")
B=$(q "$bin")
O=$(q "$out")

bench qcow2 \
  "$B convert -i $I -o $O/ours.qcow2 -O qcow2" \
  "qemu-img convert -f raw -O qcow2 $I $O/peer.qcow2" \
  "$out/ours.qcow2" "$out/peer.qcow2" 0.8 "" 1

bench vhd \
  "$B convert -i $I -o $O/ours.vhd -O vhd" \
  "qemu-img convert -f raw -O vpc -o subformat=fixed,force_size $I $O/peer.vhd" \
  "$out/ours.vhd" "$out/peer.vhd" 1.0 "" 1

bench vmdk \
  "$B convert -i $I -o $O/ours.vmdk -O vmdk" \
  "qemu-img convert -f raw -O vmdk -o subformat=streamOptimized $I $O/peer.vmdk" \
  "$out/ours.vmdk" "$out/peer.vmdk" 0.15 1.10 1

# GCE wants the member named disk.raw: hard-link the image under that name
# (a symlink would be archived as a link); copy only if linking fails.
mkdir -p "$out/gce"
ln -f "$image" "$out/gce/disk.raw" 2>/dev/null || cp --sparse=always "$image" "$out/gce/disk.raw"
bench gce-tar \
  "$B convert -i $I -o $O/ours.tar.gz -O gce-tar" \
  "cd $O/gce && tar --format=oldgnu -Scf - disk.raw | pigz -p 2 > $O/peer.tar.gz" \
  "$out/ours.tar.gz" "$out/peer.tar.gz" 0.30 1.10 1
rm -rf "$out/gce"

bench checksum \
  "$B checksum -i $R -a sha256,sha512,md5 >/dev/null" \
  "openssl dgst -sha256 $R >/dev/null; openssl dgst -sha512 $R >/dev/null; openssl dgst -md5 $R >/dev/null" \
  "" "" 0.6 "" 0

# ---- report ------------------------------------------------------------------

header="| task | ours (s) | peer (s) | ratio | target | result | size ours / peer (MB) | size ratio | our peak RSS (MiB) | notes |"
rule="|---|---:|---:|---:|---|---|---:|---:|---:|---|"
{
  echo "# cloud_helper benchmarks"
  echo
  echo "Produced by \`bench/run.sh$( ((quick)) && echo ' --quick')\` on $(date -u +%Y-%m-%d). Wall-clock seconds, best of $runs, page cache warm;"
  echo "ratio = ours / peer (lower is better). Peers are the commands listed in bench/run.sh."
  echo "Every run starts after \`sync\`. Neither side fsyncs its output: the standalone \`convert\` form"
  echo "does not (like qemu-img convert, which never flushes); the YAML \`convert\` action does before recording \`built\`."
  echo
  for l in "${machine[@]}" "${versions[@]}" "$image_line"; do echo "- $l"; done
  echo
  echo "$header"
  echo "$rule"
  printf '%s\n' "${rows[@]}"
} >"$results"

echo
column -t -s '|' -o '|' < <(echo "$header"; printf '%s\n' "${rows[@]}") 2>/dev/null ||
  { echo "$header"; printf '%s\n' "${rows[@]}"; }
echo
if ((failures)); then
  echo "FAIL: $failures of ${#rows[@]} tasks missed a target (see notes)."
else
  echo "All ${#rows[@]} tasks met their targets."
fi
echo "Written to $results"
exit 0
