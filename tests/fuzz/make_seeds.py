#!/usr/bin/env python3
"""Writes tiny, valid VHD and VMDK images into OUTDIR/{vhd,vmdk}/ as fuzz seeds.

qemu-img makes the qcow2 seeds, but its smallest dynamic VHD is 2 MiB (2 MiB
blocks) and its smallest VMDK 128 KiB (64 KiB grains): far past the fuzzers'
-max_len. These use 4 KiB blocks and grains, which the readers accept, so a
whole image with tables, data and footer fits in a few KiB.
  make_seeds.py OUTDIR
"""
import os
import struct
import sys
import zlib

SECTOR = 512


def data_block(i, n):
    # Recognisable, compressible, non-zero guest bytes.
    line = b"block %d of the fuzz seed\n" % i
    return (line * (n // len(line) + 1))[:n]


# ---------------------------------------------------------------- VHD

def vhd_checksum(b, at):
    s = sum(b[:at]) + sum(b[at + 4:])
    return (~s) & 0xFFFFFFFF


def vhd_footer(size, disk_type, data_offset, creator=b"qem2", chs=(65535, 16, 255)):
    f = bytearray(512)
    f[0:8] = b"conectix"
    struct.pack_into(">IIQI", f, 8, 2, 0x00010000, data_offset, 0)
    f[28:32] = creator
    struct.pack_into(">I", f, 32, 0x00050003)
    f[36:40] = b"Wi2k"
    struct.pack_into(">QQHBBI", f, 40, size, size, chs[0], chs[1], chs[2], disk_type)
    f[68:84] = bytes(range(16))
    struct.pack_into(">I", f, 64, vhd_checksum(f, 64))
    return bytes(f)


def vhd_dynamic(size, block, allocated, creator=b"qem2", chs=(65535, 16, 255)):
    entries = (size + block - 1) // block
    bat_at = 512 + 1024
    bat_bytes = (entries * 4 + 511) // 512 * 512
    foot = vhd_footer(size, 3, 512, creator, chs)
    h = bytearray(1024)
    h[0:8] = b"cxsparse"
    struct.pack_into(">QQIII", h, 8, 0xFFFFFFFFFFFFFFFF, bat_at, 0x00010000, entries, block)
    struct.pack_into(">I", h, 36, vhd_checksum(h, 36))
    bat = bytearray(b"\xff" * bat_bytes)
    body = bytearray()
    next_sector = (bat_at + bat_bytes) // 512
    bitmap = (block // 512 // 8 + 511) // 512 * 512
    for i in allocated:
        struct.pack_into(">I", bat, 4 * i, next_sector)
        body += b"\xff" * bitmap + data_block(i, block)
        next_sector += (bitmap + block) // 512
    return foot + bytes(h) + bytes(bat) + bytes(body) + foot


def vhd_fixed(size):
    guest = bytearray(size)
    for i in range(0, size, 4096 * 3):
        guest[i:i + 4096] = data_block(i, min(4096, size - i))
    return bytes(guest) + vhd_footer(size, 2, 0xFFFFFFFFFFFFFFFF)


# ---------------------------------------------------------------- VMDK

def vmdk_descriptor(create_type, sectors):
    text = ('# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n'
            'createType="%s"\n\n# Extent description\nRW %d SPARSE "seed.vmdk"\n\n'
            '# The Disk Data Base\n#DDB\nddb.virtualHWVersion = "4"\n' % (create_type, sectors))
    return text.encode().ljust(2 * SECTOR, b"\0")


def vmdk_header(version, flags, capacity, grain, desc_at, desc_sectors, gtes, rgd, gd, overhead,
                compress=0):
    h = bytearray(SECTOR)
    h[0:4] = b"KDMV"
    struct.pack_into("<IIQQQQIQQQ", h, 4, version, flags, capacity, grain, desc_at, desc_sectors,
                     gtes, rgd, gd, overhead)
    h[73:77] = b"\n \r\n"
    struct.pack_into("<H", h, 77, compress)
    return bytes(h)


def vmdk_sparse(version=1, zeroed=()):
    # 128 sectors (64 KiB) of 8-sector grains, 16 GTEs per GT: one GT.
    grain, gtes, capacity = 8, 16, 128
    flags = 0x3 | (0x4 if version == 2 else 0)
    # sector 0 header, 1-2 descriptor, 3 RGD, 4 RGT, 5 GD, 6 GT, 7.. grains
    gt = [0] * gtes
    grains = bytearray()
    sector = 7
    for g in (0, 3, 15):
        gt[g] = sector
        grains += data_block(g, grain * SECTOR)
        sector += grain
    for g in zeroed:
        gt[g] = 1
    gt_bytes = struct.pack("<16I", *gt).ljust(SECTOR, b"\0")
    out = vmdk_header(version, flags, capacity, grain, 1, 2, gtes, 3, 5, 7)
    out += vmdk_descriptor("monolithicSparse", capacity)
    out += struct.pack("<I", 4).ljust(SECTOR, b"\0") + gt_bytes
    out += struct.pack("<I", 6).ljust(SECTOR, b"\0") + gt_bytes
    return out + bytes(grains)


def vmdk_stream(gd_at_end=True):
    # Canonical VMware stream (markers, GD at the end) or qemu's layout.
    grain, gtes, capacity = 8, 16, 120  # a partial last GT span
    flags = 0x30001
    desc = vmdk_descriptor("streamOptimized", capacity)
    body = bytearray()
    sector = 3
    gt = [0] * gtes
    for g in (1, 2, 14):
        z = zlib.compress(data_block(g, grain * SECTOR))
        rec = struct.pack("<QI", g * grain, len(z)) + z
        rec = rec.ljust((len(rec) + SECTOR - 1) // SECTOR * SECTOR, b"\0")
        gt[g] = sector
        body += rec
        sector += len(rec) // SECTOR
    gt_bytes = struct.pack("<16I", *gt).ljust(SECTOR, b"\0")

    def marker(val, kind):
        return struct.pack("<QII", val, 0, kind).ljust(SECTOR, b"\0")

    if not gd_at_end:
        gd_sector = sector + 1
        body += gt_bytes + struct.pack("<I", sector).ljust(SECTOR, b"\0")
        head = vmdk_header(3, flags, capacity, grain, 1, 2, gtes, 0, gd_sector, 3, 1)
        return head + desc + bytes(body) + marker(0, 0)
    body += marker(1, 1)
    gt_sector = sector + 1
    body += gt_bytes
    body += marker(1, 2)
    gd_sector = gt_sector + 2
    body += struct.pack("<I", gt_sector).ljust(SECTOR, b"\0")
    head = vmdk_header(3, flags, capacity, grain, 1, 2, gtes, 0, 0xFFFFFFFFFFFFFFFF, 3, 1)
    foot = vmdk_header(3, flags, capacity, grain, 1, 2, gtes, 0, gd_sector, 3, 1)
    return head + desc + bytes(body) + marker(1, 3) + foot + marker(0, 0)


def main():
    out = sys.argv[1]
    seeds = {
        "vhd/dynamic.vhd": vhd_dynamic(64 << 10, 4096, [0, 5, 15]),
        "vhd/dynamic_chs.vhd": vhd_dynamic(5 * 4 * 17 * 512, 4096, [1, 2], b"vpc ",
                                           (5, 4, 17)),
        "vhd/dynamic_partial.vhd": vhd_dynamic(5 * 4096 + 1024, 4096, [5]),
        "vhd/fixed.vhd": vhd_fixed(16 << 10),
        "vmdk/sparse.vmdk": vmdk_sparse(1),
        "vmdk/sparse_v2_zeroed.vmdk": vmdk_sparse(2, zeroed=(4, 5)),
        "vmdk/stream.vmdk": vmdk_stream(True),
        "vmdk/stream_qemu.vmdk": vmdk_stream(False),
    }
    for name, data in seeds.items():
        path = os.path.join(out, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
