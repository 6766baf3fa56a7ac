"""Decodes the disk image files that EC2 ImportSnapshot accepts, for the gap
proxy's ImportSnapshot (moto has none).

AWS VM Import takes RAW, VHD and VMDK (https://docs.aws.amazon.com/vm-import/
latest/userguide/prerequisites.html: "Stream-optimized ESX VMDK", "VHD/VHDX
fixed and dynamic", "raw"). Decoding here is deliberately strict and
independent of the project's own C++ readers, so an import through the proxy
is an outside check of what the C++ writers produce:

- RAW: the bytes are the disk.
- VHD (Microsoft VHD spec 1.0): a 512-byte footer at the end, cookie
  "conectix", big-endian fields, disk type at 60 (2 fixed, 3 dynamic,
  4 differencing), current size at 48, data offset at 16, checksum at 64
  (one's complement of the byte sum of the footer with the checksum zeroed).
  Fixed: the data precedes the footer. Dynamic: a "cxsparse" header at the
  data offset gives the BAT offset, the BAT entry count and the block size;
  each BAT entry is the sector of a block's sector bitmap, 0xFFFFFFFF for a
  block that reads as zeros; data follows the bitmap.
- VMDK streamOptimized (VMware Virtual Disk Format 1.1, section "Stream-
  Optimized Compressed Sparse Extents"): a SparseExtentHeader ("KDMV",
  little-endian) with the compressed and markers flags, then from `overHead`
  sectors on a stream of markers: {u64 lba, u32 size, u32 type}. size > 0 is
  a grain of `size` zlib bytes that inflates to the data at sector `lba`;
  size == 0 is a metadata marker (type 0 end of stream, 1 grain table,
  2 grain directory, 3 footer) followed by `lba` sectors of metadata. Every
  marker starts on a sector boundary.

The result is a SparseDisk: the virtual size and the non-zero 512 KiB blocks
(the EBS direct API block size), which is what the snapshot is built from.
"""

from __future__ import annotations

import struct
import zlib

EBS_BLOCK = 512 * 1024
SECTOR = 512


class DiskError(Exception):
    """The image cannot be imported; str() is the AWS-style reason."""


class SparseDisk:
    def __init__(self, size: int):
        self.size = size
        self.blocks: dict[int, bytearray] = {}

    def write(self, offset: int, data: bytes | memoryview) -> None:
        if offset + len(data) > self.size:
            raise DiskError(f"data at offset {offset} runs past the disk size {self.size}")
        mv = memoryview(data)
        pos = 0
        while pos < len(mv):
            idx, within = divmod(offset + pos, EBS_BLOCK)
            n = min(EBS_BLOCK - within, len(mv) - pos)
            chunk = mv[pos:pos + n]
            if idx in self.blocks or any(chunk):
                block = self.blocks.setdefault(idx, bytearray(EBS_BLOCK))
                block[within:within + n] = chunk
            pos += n

    def nonzero_blocks(self):
        """(index, 512 KiB bytes) for every block holding a non-zero byte."""
        for idx in sorted(self.blocks):
            block = self.blocks[idx]
            if any(block):
                yield idx, bytes(block)


def decode(fmt: str, data: bytes) -> SparseDisk:
    fmt = fmt.upper()
    if fmt == "RAW":
        disk = SparseDisk(len(data))
        disk.write(0, data)
        return disk
    if fmt == "VHD":
        return _decode_vhd(data)
    if fmt == "VMDK":
        return _decode_vmdk(data)
    raise DiskError(f"Unsupported disk format {fmt}")


def _vhd_checksum(footer: bytes) -> int:
    return ~sum(footer[:64] + b"\0\0\0\0" + footer[68:]) & 0xFFFFFFFF


def _decode_vhd(data: bytes) -> SparseDisk:
    if len(data) < SECTOR:
        raise DiskError("Invalid VHD: file is shorter than its 512-byte footer")
    footer = data[-SECTOR:]
    if footer[:8] != b"conectix":
        raise DiskError("Invalid VHD: no footer with cookie 'conectix' at the end of the file")
    (checksum,) = struct.unpack_from(">I", footer, 64)
    if checksum != _vhd_checksum(footer):
        raise DiskError("Invalid VHD: footer checksum mismatch")
    (data_offset, ) = struct.unpack_from(">Q", footer, 16)
    (size, ) = struct.unpack_from(">Q", footer, 48)
    (disk_type, ) = struct.unpack_from(">I", footer, 60)
    disk = SparseDisk(size)
    if disk_type == 2:
        if len(data) - SECTOR != size:
            raise DiskError(f"Invalid VHD: fixed disk of {size} bytes but {len(data) - SECTOR} data bytes")
        disk.write(0, memoryview(data)[:size])
        return disk
    if disk_type == 4:
        raise DiskError("Unsupported VHD: differencing disks need their parent")
    if disk_type != 3:
        raise DiskError(f"Invalid VHD: disk type {disk_type}")
    hdr = data[data_offset:data_offset + 1024]
    if hdr[:8] != b"cxsparse":
        raise DiskError("Invalid VHD: dynamic disk without a 'cxsparse' header")
    (bat_offset, ) = struct.unpack_from(">Q", hdr, 16)
    (entries, block_size) = struct.unpack_from(">II", hdr, 28)
    bitmap = -(-(block_size // SECTOR) // 8)
    bitmap = -(-bitmap // SECTOR) * SECTOR
    for i in range(entries):
        (sector, ) = struct.unpack_from(">I", data, bat_offset + 4 * i)
        if sector == 0xFFFFFFFF:
            continue
        start = sector * SECTOR + bitmap
        n = min(block_size, size - i * block_size)
        if n <= 0:
            break
        if start + n > len(data):
            raise DiskError(f"Invalid VHD: block {i} lies past the end of the file")
        disk.write(i * block_size, memoryview(data)[start:start + n])
    return disk


_VMDK_HDR = struct.Struct("<4sIIQQQQIQQQB4sH")  # through compressAlgorithm


def _decode_vmdk(data: bytes) -> SparseDisk:
    if len(data) < SECTOR or data[:4] != b"KDMV":
        raise DiskError("Unsupported VMDK File Format: no sparse extent header ('KDMV')")
    (_, version, flags, capacity, grain, desc_off, desc_size, _gtes, _rgd, gd_off, overhead,
     _unclean, _chars, compress) = _VMDK_HDR.unpack_from(data, 0)
    descriptor = data[desc_off * SECTOR:(desc_off + desc_size) * SECTOR].split(b"\0")[0]
    if b'createType="streamOptimized"' not in descriptor:
        raise DiskError("Unsupported VMDK File Format: only streamOptimized VMDKs can be imported")
    if not (flags & (1 << 16)) or not (flags & (1 << 17)) or compress != 1:
        raise DiskError("Unsupported VMDK File Format: streamOptimized without compressed grains/markers")
    disk = SparseDisk(capacity * SECTOR)
    pos = overhead * SECTOR
    grain_bytes = grain * SECTOR
    while pos + 12 <= len(data):
        lba, size, mtype = struct.unpack_from("<QII", data, pos)
        if size == 0:
            if mtype == 0:  # end of stream
                return disk
            pos += SECTOR + lba * SECTOR
            continue
        if lba % grain:
            raise DiskError(f"Invalid VMDK: grain at sector {lba} is not grain aligned")
        try:
            chunk = zlib.decompress(data[pos + 12:pos + 12 + size])
        except zlib.error as e:
            raise DiskError(f"Invalid VMDK: grain at sector {lba} does not inflate: {e}") from None
        expect = min(grain_bytes, disk.size - lba * SECTOR)
        if len(chunk) < expect:
            raise DiskError(f"Invalid VMDK: grain at sector {lba} inflates to {len(chunk)} bytes, expected {expect}")
        disk.write(lba * SECTOR, memoryview(chunk)[:expect])
        pos = -(-(pos + 12 + size) // SECTOR) * SECTOR
    raise DiskError("Invalid VMDK: stream ends without an end-of-stream marker")
