#!/usr/bin/env bash
# The main job, end to end on a generated sample image: builds cloud_helper,
# makes a small ext4 disk image as a Packer QEMU build would leave it (qcow2),
# then for each target writes a per-image YAML and runs
#   convert -> checksum -> state
# printing a table of what was produced. Everything stays under work/demo/.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/scripts/setup.sh" >/dev/null
bin="$top/build/cloud_helper"
work="$top/work/demo"
rm -rf "$work"
mkdir -p "$work/rootfs/etc" "$work/rootfs/usr/share" "$work/images"

# A sample root filesystem: some real files, some zeros, lots of free space.
cp -r /usr/share/doc/coreutils /usr/share/doc/tar "$work/rootfs/usr/share/" 2>/dev/null || true
echo "sample" > "$work/rootfs/etc/hostname"
head -c 20000000 /dev/urandom > "$work/rootfs/usr/share/blob.bin"
truncate -s 512M "$work/images/sample.raw"
mkfs.ext4 -q -F -E root_owner=0:0 -d "$work/rootfs" "$work/images/sample.raw"
qemu-img convert -f raw -O qcow2 "$work/images/sample.raw" "$work/images/disk.qcow2"
rm "$work/images/sample.raw"

printf '%-10s %-8s %-34s %12s %12s  %s\n' cloud format file "size" "virtual" sha256
for target in aws:raw azure:vhd gcp:gce-tar openstack:qcow2 nocloud:vmdk; do
  cloud=${target%%:*} fmt=${target#*:}
  yaml="$work/$cloud.yaml"
  cat > "$yaml" <<YAML
name: sample-1.0-x86_64-$cloud
image_key: 1.0-x86_64-uefi-$cloud
cloud: $cloud
arch: x86_64
firmware: uefi
local_image: images/disk.qcow2
image_format: $fmt
YAML
  "$bin" --no-progress convert "$yaml" >>"$work/cloud_helper.log" 2>&1
  "$bin" --no-progress checksum "$yaml" >>"$work/cloud_helper.log" 2>&1
  file=$(sed -n 's/^image_file: //p' "$yaml")
  size=$(sed -n 's/^image_size: //p' "$yaml")
  vsize=$(sed -n 's/^virtual_size: //p' "$yaml")
  sha=$(sed -n 's/^  sha256: //p' "$yaml")
  printf '%-10s %-8s %-34s %12s %12s  %s\n' "$cloud" "$fmt" "$file" "$size" "$vsize" "${sha:0:16}…"
done
echo
echo "Re-running a step is a no-op:"
"$bin" convert "$work/aws.yaml"
echo
"$bin" state "$work/aws.yaml"
echo
echo "YAML files, images and the log are in $work"
