#!/usr/bin/env bash
# Builds the benchmark inputs once and caches them under bench/work/:
#
#   disk-full.raw   6 GiB ext4 image holding ~2 GB of real files
#   disk-quick.raw  1 GiB ext4 image holding ~300 MB (--quick smoke runs)
#   random-1g.bin   1 GiB of pseudo-random bytes (checksum/upload benches;
#                   random-128m.bin with --quick)
#
# The files come from this machine's /usr (/usr/bin, /usr/share, /usr/lib),
# a fixed pseudo-random selection up to the byte budget, so the image looks
# like a real root filesystem: binaries, libraries, text, already-compressed
# data, and free space that was never written. It is built without mounting
# (mkfs.ext4 -d copies a directory tree into the new filesystem), with
# timestamps, UUID and hash seed pinned. The random file is AES-CTR
# keystream, which is reproducible and as incompressible as /dev/urandom.
#
# Usage: bench/make_image.sh [--quick]   prints the two paths it made
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$here/work
mode=full
[[ ${1:-} == --quick ]] && mode=quick

if [[ $mode == full ]]; then
  image_size=6G; budget=$((2000 * 1000 * 1000)); random_size=1G; random_name=random-1g.bin
else
  image_size=1G; budget=$((300 * 1000 * 1000)); random_size=128M; random_name=random-128m.bin
fi
image=$work/disk-$mode.raw
random=$work/$random_name
stamp=$image.stamp     # records what the cached image was built from
want_stamp="size=$image_size budget=$budget v1"

mkdir -p "$work"

if [[ ! -f $image || ! -f $stamp || $(cat "$stamp") != "$want_stamp" ]]; then
  command -v mkfs.ext4 >/dev/null || { echo "make_image.sh: mkfs.ext4 not found (apt-get install e2fsprogs)" >&2; exit 1; }
  stage=$work/stage-$mode
  rm -rf "$stage" "$image" "$stamp"
  mkdir -p "$stage"
  echo "make_image.sh: selecting ~$((budget / 1000000)) MB of files from /usr" >&2
  # sort -R with a fixed random source is a reproducible shuffle; awk stops
  # at the budget. NUL-separated so any file name survives.
  find /usr/bin /usr/share /usr/lib -xdev -type f -readable -size +0 -printf '%s\t%p\0' 2>/dev/null |
    LC_ALL=C sort -z -R --random-source=<(yes cloud_helper-bench) |
    awk -v RS='\0' -v ORS='\0' -v budget="$budget" -F'\t' \
      '{ if (total + $1 > budget) next; total += $1; print substr($0, length($1) + 2) }' \
      >"$work/files-$mode.list"
  # Hard links when /usr is on the same filesystem (no copy), else copies.
  if ! xargs -0 -r cp -l --parents -t "$stage" <"$work/files-$mode.list" 2>/dev/null; then
    rm -rf "$stage"; mkdir -p "$stage"
    xargs -0 -r cp --parents -t "$stage" <"$work/files-$mode.list"
  fi
  echo "make_image.sh: staged $(du -sh --apparent-size "$stage" | cut -f1) in $(find "$stage" -type f | wc -l) files" >&2
  truncate -s "$image_size" "$image.tmp"
  E2FSPROGS_FAKE_TIME=1700000000 mkfs.ext4 -q -F -L bench \
    -U 6c1b1f4e-0d53-4f0e-9a57-3c0de0b1e1c5 \
    -E root_owner=0:0,hash_seed=2f0e2f3e-5e8b-4bb2-9d4c-0b9d1c7e6a11 \
    -d "$stage" "$image.tmp"
  mv "$image.tmp" "$image"
  rm -rf "$stage" "$work/files-$mode.list"
  echo "$want_stamp" >"$stamp"
  echo "make_image.sh: built $image ($(du -h "$image" | cut -f1) allocated)" >&2
fi

if [[ ! -f $random ]]; then
  echo "make_image.sh: writing $random" >&2
  head -c "$random_size" /dev/zero |
    openssl enc -aes-128-ctr -nosalt -K 00112233445566778899aabbccddeeff -iv 00000000000000000000000000000000 >"$random.tmp"
  mv "$random.tmp" "$random"
fi

echo "$image"
echo "$random"
