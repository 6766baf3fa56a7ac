#!/usr/bin/env bash
# Azure benchmark of issue 4, against the test harness's Azurite on loopback
# (tests/azure/emulators.py, ports from BENCH_AZURE_PORT_BASE, default 47600,
# started and stopped here): the fixed VHD of the bench image
# (bench/work/disk-full.raw, 6 GiB ext4 with ~2 GB of files) uploaded as a
# page blob by both tools to the same Azurite, each into a fresh container.
#
#   ours                          peer                                          targets
#   cloud_helper upload           az storage blob upload --type page            time <= 0.5x, peak RSS <= 256 MiB,
#   (storage_url az://...)        (Debian azure-cli, same VHD, same Azurite)     bytes sent <= 1.01x the non-zero data
#
# The whole file's MD5 (the blob's Content-MD5) is computed beforehand, as
# the checksum step does for cloud: azure in the same read as its SHA-256 and
# SHA-512, and given to the upload in `checksums.md5`; az is not asked for
# one (--content-md5 would need the same precomputed value). We send a
# Content-MD5 with every Put Page; az, without --validate-content, sends
# none: our figure includes work az skips.
#
# "Non-zero data" is given two ways: the bytes of the VHD's non-zero 4 KiB
# blocks (the filesystem's block) and of its non-zero 512-byte pages (a page
# blob's unit: nothing finer can be sent). The default merge gap sends the
# zero pages of a 4 KiB block that holds data (file tails) to keep the
# request count low; --merge-gap 1024 sends almost only non-zero pages, in
# a hundred times more requests. Bytes sent is what
# cloud_helper reports for its Put Page bodies (--output json).
#
# Usage: bench/azure.sh [--runs N] [--quick] [--merge-gap BYTES]
#   --quick: a 1 GiB image, 1 run; --merge-gap: azure.upload_merge_gap
#   (default 4096), results in bench/azure-results-gapBYTES.md
# Writes bench/azure-results.md. Needs build/cloud_helper; installs
# azure-cli and the npm modules when missing.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bin=${CLOUD_HELPER:-$repo/build/cloud_helper}
work=$here/work/azure
runs=3
quick=0
gap=
while (($#)); do
  case $1 in
    --runs) runs=$2; shift ;;
    --quick) quick=1; runs=1 ;;
    --merge-gap) gap=$2; shift ;;
    *) echo "azure.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$work"
if ! command -v az >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends azure-cli >/dev/null || exit 1
fi
[[ -x $repo/tests/azure/node_modules/.bin/azurite-blob ]] ||
  npm install --prefix "$repo/tests/azure" --no-audit --no-fund >/dev/null || exit 1

if ((quick)); then
  raw=$work/quick.raw
  [[ -f $raw ]] || { truncate -s 1G "$raw"; dd if=/dev/urandom of="$raw" bs=1M count=300 seek=100 conv=notrunc 2>/dev/null; }
else
  bash "$here/make_image.sh" >/dev/null || exit 1
  raw=$here/work/disk-full.raw
fi
vhd=$work/$(basename "${raw%.raw}").vhd
[[ -f $vhd && $vhd -nt $raw ]] || "$bin" convert -i "$raw" -o "$vhd" -O vhd || exit 1

base=${BENCH_AZURE_PORT_BASE:-47600}
python3 "$repo/tests/azure/emulators.py" start --dir "$work/emulators" --port-base "$base" >/dev/null || exit 1
trap 'python3 "$repo/tests/azure/emulators.py" stop --dir "$work/emulators" >/dev/null 2>&1' EXIT
key=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==
conn="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$base/devstoreaccount1;"
export AZURE_STORAGE_CONNECTION_STRING=$conn
export AZURE_CORE_COLLECT_TELEMETRY=false AZURE_CORE_NO_COLOR=true AZURE_CONFIG_DIR=$work/azconfig

# wall seconds and peak RSS (KiB) of a command: "SECONDS KIB"
measure() {
  /usr/bin/time -f '%e %M' -o "$work/time.txt" "$@" >"$work/cmd.log" 2>&1 || {
    echo "azure.sh: failed: $*" >&2; tail -5 "$work/cmd.log" >&2; return 1; }
  cat "$work/time.txt"
}
best() { sort -n | head -1; }

read -r nonzero nonzero4k < <(python3 - "$vhd" <<'PY'
import os, sys
# Bytes in non-zero 512-byte sectors and in non-zero 4 KiB blocks, reading
# only the file's data extents.
fd = os.open(sys.argv[1], os.O_RDONLY); size = os.fstat(fd).st_size; n = n4 = 0; off = 0
z512, z4k = bytes(512), bytes(4096)
while off < size:
    try:
        off = os.lseek(fd, off, os.SEEK_DATA)
    except OSError:
        break
    end = os.lseek(fd, off, os.SEEK_HOLE)
    while off < end:
        b = os.pread(fd, min(8 << 20, end - off), off)
        if b.count(0) != len(b):
            mv = memoryview(b)
            n += sum(512 for i in range(0, len(b), 512) if mv[i:i + 512] != z512)
            n4 += sum(len(mv[i:i + 4096]) for i in range(0, len(b), 4096) if mv[i:i + 4096] != z4k[:len(mv[i:i + 4096])])
        off += len(b)
print(n, n4)
PY
)

write_yaml() { cat >"$work/up.yaml" <<YAML
name: bench-azure
cloud: azure
arch: x86_64
image_file: $vhd
image_format: vhd
storage_url: az://devstoreaccount1/ours/
azure: {create: [container]${gap:+, upload_merge_gap: $gap}}
checksums: {md5: $md5}
YAML
}
md5=$("$bin" --no-progress checksum -i "$vhd" -a md5 | cut -d' ' -f1)
cat "$vhd" >/dev/null 2>&1 || true
ours=() peer=() rss=() peer_rss=() sent=0
for ((i = 0; i < runs; i++)); do
  az storage container delete -n ours --only-show-errors >/dev/null 2>&1
  az storage container delete -n peer --only-show-errors >/dev/null 2>&1
  write_yaml
  read -r t m < <(measure "$bin" --no-progress --output json --force upload "$work/up.yaml") || exit 1
  ours+=("$t"); rss+=("$m")
  sent=$(python3 -c "
import json, sys
for line in open(sys.argv[1]):
    if line.startswith('{'):
        d = json.loads(line); print(d.get('bytes_sent', d.get('upload', {}).get('bytes_sent', 0))); break
else:
    print(0)" "$work/cmd.log")
  az storage container create -n peer --only-show-errors >/dev/null || exit 1
  read -r t m < <(measure az storage blob upload --type page -c peer -f "$vhd" -n disk.vhd --only-show-errors) || exit 1
  peer+=("$t"); peer_rss+=("$m")
done
az storage container delete -n ours --only-show-errors >/dev/null 2>&1
az storage container delete -n peer --only-show-errors >/dev/null 2>&1

o=$(printf '%s\n' "${ours[@]}" | best); p=$(printf '%s\n' "${peer[@]}" | best)
r=$(( $(printf '%s\n' "${rss[@]}" | sort -n | tail -1) / 1024 ))
pr=$(( $(printf '%s\n' "${peer_rss[@]}" | sort -n | tail -1) / 1024 ))
ratio=$(python3 -c "print(f'{$o/$p:.2f}')")
bytes_ratio=$(python3 -c "print(f'{$sent/max($nonzero,1):.4f}')")
bytes_ratio4k=$(python3 -c "print(f'{$sent/max($nonzero4k,1):.4f}')")
verdict() { python3 -c "print('pass' if $1 <= $2 else 'FAIL')"; }
out=$here/azure-results${gap:+-gap$gap}.md
((quick)) && out=$work/azure-results-quick.md
{
  echo "# Azure benchmark (bench/azure.sh, Azurite $("$repo/tests/azure/node_modules/.bin/azurite-blob" --version 2>/dev/null), $(az version --query '"azure-cli"' -o tsv 2>/dev/null | sed 's/^/azure-cli /'))"
  echo
  echo "Machine: $(nproc) cores, $(python3 -c "import os; print(os.sysconf('SC_PAGE_SIZE')*os.sysconf('SC_PHYS_PAGES')>>30)") GiB; best of $runs; Azurite on loopback."
  echo "Image: $(basename "$vhd"), $(stat -c %s "$vhd") bytes; $nonzero4k bytes in non-zero 4 KiB blocks, $nonzero in non-zero 512-byte pages. azure.upload_merge_gap: ${gap:-4096 (default)}."
  echo
  echo "| measure | ours | reference | ratio | target | |"
  echo "|---|---|---|---|---|---|"
  echo "| page-blob upload time | $o s | az storage blob upload --type page $p s (peak RSS $pr MiB) | ${ratio}x | <= 0.5x | $(verdict "$ratio" 0.5) |"
  echo "| bytes sent / non-zero 4 KiB blocks (the filesystem's) | $sent | $nonzero4k | ${bytes_ratio4k}x | <= 1.01x | $(verdict "$bytes_ratio4k" 1.01) |"
  echo "| bytes sent / non-zero 512-byte pages | $sent | $nonzero | ${bytes_ratio}x | <= 1.01x | $(verdict "$bytes_ratio" 1.01) |"
  echo "| peak RSS | $r MiB | | | <= 256 MiB | $(verdict "$r" 256) |"
} >"$out"
cat "$out"
