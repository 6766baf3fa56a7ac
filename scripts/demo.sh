#!/usr/bin/env bash
# The main job, end to end, against local emulators: installs what is missing
# and builds cloud_helper, starts moto (AWS S3, EC2, EBS) on loopback behind
# the project's gap-filling proxy, makes a small ext4 disk image as a Packer
# QEMU build would leave it (qcow2), writes its per-image YAML, and runs the
# Packer template examples/packer/aws.json, whose shell-local post-processors
# call cloud_helper for each step:
#   convert -> checksum -> upload -> import -> publish -> release
# then prints the AMI of every region. Everything stays under work/demo/;
# the emulators are stopped on exit.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/scripts/setup.sh" >/dev/null
bin="$top/build/cloud_helper"
work="$top/work/demo"
emu="$work/emulators"
rm -rf "$work"
mkdir -p "$work/rootfs/etc" "$work/rootfs/usr/share" "$emu"

# Ports 47500-47503: apart from the test suite's 47000-47003, so both can run.
python3 "$top/tests/aws/emulators.py" start --dir "$emu" --port-base 47500 >/dev/null
trap 'python3 "$top/tests/aws/emulators.py" stop --dir "$emu" --port-base 47500 >/dev/null 2>&1 || true' EXIT
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo-secret AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:47500
# moto finishes copies at once; poll every few ms instead of every few seconds.
export CLOUD_HELPER_POLL_SCALE=0.01
aws s3 mb s3://demo-images >/dev/null

# A sample root filesystem: some real files, some zeros, lots of free space.
cp -r /usr/share/doc/coreutils /usr/share/doc/tar "$work/rootfs/usr/share/" 2>/dev/null || true
echo "sample" > "$work/rootfs/etc/hostname"
head -c 20000000 /dev/urandom > "$work/rootfs/usr/share/blob.bin"
truncate -s 512M "$work/sample.raw"
mkfs.ext4 -q -F -E root_owner=0:0 -d "$work/rootfs" "$work/sample.raw"
qemu-img convert -f raw -O qcow2 "$work/sample.raw" "$work/disk.qcow2"
rm -rf "$work/sample.raw" "$work/rootfs"

cat > "$work/image.yaml" <<'YAML'
name: sample-1.0-x86_64-uefi-r0
image_key: 1.0-x86_64-uefi-aws
cloud: aws
arch: x86_64
firmware: uefi
local_image: disk.qcow2
storage_url: s3://demo-images/sample/
regions: [us-east-1, eu-west-2, ap-southeast-2]
public: true
description: cloud_helper demo image
end_of_life: 2027-05-01
tags: {project: cloud-helper-demo}
release_cmd: "echo release: {name} is out as {import_id}"
YAML

echo "packer build examples/packer/aws.json (log: work/demo/packer.log)"
(cd "$top" && PACKER_CACHE_DIR="$work/packer_cache" CHECKPOINT_DISABLE=1 \
  packer build -color=false -var "cloud_helper=$bin" -var "image_yaml=$work/image.yaml" \
  examples/packer/aws.json >"$work/packer.log" 2>&1) || {
  echo "packer build failed; last lines of work/demo/packer.log:" >&2
  tail -20 "$work/packer.log" >&2
  exit 1
}
grep -E "^    null \(shell-local\): (uploaded|snapshot|imported|us-|eu-|ap-)" "$work/packer.log" | sed 's/^    null (shell-local): /  /'
echo
printf '%-16s %-22s %s\n' region ami "checked with awscli (describe-images)"
"$bin" --output json state "$work/image.yaml" | python3 -c '
import json, sys
for region, ami in json.load(sys.stdin)["artifacts"].items():
    print(region, ami)' | while read -r region ami; do
  seen=$(aws ec2 describe-images --region "$region" --image-ids "$ami" \
    --query 'Images[0].[State,Public]' --output text 2>/dev/null | tr '\t' ' ')
  printf '%-16s %-22s %s\n' "$region" "$ami" "$seen"
done
echo
echo "Re-running a step is a no-op:"
"$bin" import "$work/image.yaml"
echo
"$bin" state "$work/image.yaml"
echo
echo "The YAML, images and logs are in $work"
