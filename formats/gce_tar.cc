// gce-tar: what Compute Engine imports (`gcloud compute images create
// --source-uri gs://.../x.tar.gz`): a gzip-compressed tar holding exactly one
// member named `disk.raw`, whose size we round up to a whole GiB (widely
// reported as required; harmless either way). The customary producer is
// `tar --format=oldgnu -Sczf`, and we write what it writes (checked byte for
// byte against GNU tar 1.34 in gce_tar_test.cc):
//
//   header block (512 B, GNU "oldgnu" layout, magic "ustar  \0"):
//     0 name "disk.raw"   100 mode "0000644\0"   108/116 uid/gid "0000000\0"
//     124 size: bytes stored (sum of the sparse runs)   136 mtime
//     148 chksum: 6 octal digits, NUL, space; summed with the field as spaces
//     156 typeflag 'S'   257 magic   265/297 uname/gname "root"
//     386 sp[4] = {offset[12], numbytes[12]}   482 isextended
//     483 realsize[12]: the size of disk.raw
//   extension blocks while isextended: 21 more entries, isextended at 504
//   the data of each run, back to back (every run is a 512 multiple here)
//   two zero blocks, then zeros up to tar's 10 KiB record
//
// Numbers are 11 octal digits + NUL, or GNU base-256 (0x80, then the value
// big-endian) from 8 GiB up, which ustar cannot express: that is why GCE
// wants GNU format. Like GNU tar, the map always ends with an entry of
// numbytes 0 at realsize, so a trailing hole (and the GiB padding) is
// implied; an empty input is written as a plain '0' member of size 0, as
// tar does for an empty file.
//
// Holes never reach the compressor: DEFLATE cannot beat ~1000:1 on zeros, so
// a 100 GiB mostly-empty disk would otherwise cost hundreds of MB of gzip.
// The layout is fixed first (scan_allocation finds the data at kUnit
// granularity), then header + runs stream through gzip_parallel, whose
// workers read the image ranges they compress.
//
// Deterministic: mtime is SOURCE_DATE_EPOCH when set, else 0; owner
// root:root (0/0); gzip header mtime 0.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/ordered_pipeline.h"
#include "formats/allocation.h"
#include "formats/formats.h"
#include "formats/source_date.h"
#include "formats/gzip_stream.h"

namespace ch {

uint64_t gce_tar_virtual_size(uint64_t n) { return (n + (1ull << 30) - 1) >> 30 << 30; }

namespace {

constexpr uint64_t kBlock = 512;
constexpr uint64_t kRecord = 20 * kBlock;  // GNU tar's default blocking factor
// Zero-detection granularity of the sparse map. Measured on an ext4 image
// of /usr/lib (1.5 GB, 1.1 GB used): 4 KiB, 16 KiB and 64 KiB units give the
// same output within 0.003% (zero blocks inside a run cost igzip nearly
// nothing), so the coarsest keeps the map short.
constexpr uint64_t kUnit = 64 << 10;
constexpr size_t kHeaderEntries = 4;
constexpr size_t kExtensionEntries = 21;

struct SparseEntry {
  uint64_t offset, numbytes;
};

// Octal with a trailing NUL when it fits in width - 1 digits, else GNU
// base-256: 0x80 then the value big-endian in the remaining bytes.
void put_number(uint8_t* field, size_t width, uint64_t v) {
  const bool fits = width - 1 >= 22 || v < (uint64_t{1} << (3 * (width - 1)));
  if (fits) {
    for (size_t i = width - 1; i-- > 0; v >>= 3) field[i] = static_cast<uint8_t>('0' + (v & 7));
    field[width - 1] = 0;
    return;
  }
  std::memset(field, 0, width);
  field[0] = 0x80;
  for (size_t i = width; i-- > 1 && v; v >>= 8) field[i] = static_cast<uint8_t>(v & 0xff);
}

void put_entry(uint8_t* p, const SparseEntry& e) {
  put_number(p, 12, e.offset);
  put_number(p + 12, 12, e.numbytes);
}

void put_checksum(uint8_t* block) {
  std::memset(block + 148, ' ', 8);
  unsigned sum = 0;
  for (size_t i = 0; i < kBlock; ++i) sum += block[i];
  for (int i = 5; i >= 0; --i, sum >>= 3) block[148 + i] = static_cast<uint8_t>('0' + (sum & 7));
  block[154] = 0;
  block[155] = ' ';
}

// The header and its extension blocks.
std::vector<uint8_t> tar_header(const std::vector<SparseEntry>& map, uint64_t stored,
                                uint64_t realsize, uint64_t mtime) {
  const size_t extra = map.size() > kHeaderEntries
                           ? (map.size() - kHeaderEntries + kExtensionEntries - 1) / kExtensionEntries
                           : 0;
  std::vector<uint8_t> out((1 + extra) * kBlock, 0);
  uint8_t* h = out.data();
  std::memcpy(h, "disk.raw", 8);
  put_number(h + 100, 8, 0644);
  put_number(h + 108, 8, 0);
  put_number(h + 116, 8, 0);
  put_number(h + 124, 12, stored);
  put_number(h + 136, 12, mtime);
  std::memcpy(h + 257, "ustar  ", 8);  // with its NUL
  std::memcpy(h + 265, "root", 4);
  std::memcpy(h + 297, "root", 4);
  if (realsize == 0) {
    h[156] = '0';
  } else {
    h[156] = 'S';
    for (size_t i = 0; i < std::min(map.size(), kHeaderEntries); ++i) put_entry(h + 386 + 24 * i, map[i]);
    h[482] = extra > 0;
    put_number(h + 483, 12, realsize);
    for (size_t b = 0; b < extra; ++b) {
      uint8_t* x = h + (1 + b) * kBlock;
      size_t first = kHeaderEntries + b * kExtensionEntries;
      for (size_t i = first; i < std::min(map.size(), first + kExtensionEntries); ++i)
        put_entry(x + 24 * (i - first), map[i]);
      x[504] = b + 1 < extra;
    }
  }
  put_checksum(h);
  return out;
}

// One contiguous piece of the uncompressed tar stream.
struct Piece {
  uint64_t start;   // in the tar stream
  uint64_t length;
  enum Kind { kBytes, kGuest, kZeros } kind;
  uint64_t guest;   // kGuest: guest offset of the first byte
};


}  // namespace

Status write_gce_tar(const ImageReader& in, Sink& out, const WriteOptions& opts) {
  CH_ASSIGN(mtime, source_date_epoch());
  const unsigned threads = opts.threads ? opts.threads : default_threads();
  const uint64_t size = in.virtual_size();
  const uint64_t realsize = gce_tar_virtual_size(size);
  CH_ASSIGN(extents, scan_allocation(in, kUnit, threads, nullptr));

  // Data runs, each widened to whole blocks (the widening past `size`
  // reads as the zero padding of disk.raw), then the terminating entry.
  std::vector<SparseEntry> map;
  uint64_t stored = 0;
  for (const Extent& e : extents) {
    if (!e.data) continue;
    uint64_t end = (e.offset + e.length + kBlock - 1) / kBlock * kBlock;
    map.push_back({e.offset, end - e.offset});
    stored += end - e.offset;
  }
  map.push_back({realsize, 0});

  const std::vector<uint8_t> header = tar_header(map, stored, realsize, mtime);
  std::vector<Piece> pieces;
  uint64_t pos = 0;
  auto add = [&](uint64_t len, Piece::Kind kind, uint64_t guest) {
    if (len == 0) return;
    pieces.push_back({pos, len, kind, guest});
    pos += len;
  };
  add(header.size(), Piece::kBytes, 0);
  for (const SparseEntry& e : map) add(e.numbytes, Piece::kGuest, e.offset);
  const uint64_t body = pos + 2 * kBlock;
  add((body + kRecord - 1) / kRecord * kRecord - pos, Piece::kZeros, 0);
  const uint64_t total = pos;

  auto fill = [&](uint64_t off, uint8_t* buf, size_t len) -> Status {
    auto it = std::upper_bound(pieces.begin(), pieces.end(), off,
                               [](uint64_t o, const Piece& p) { return o < p.start; });
    CH_CHECK(it != pieces.begin());
    for (--it; len > 0; ++it) {
      CH_CHECK(it != pieces.end());
      const uint64_t skip = off - it->start;
      const size_t n = static_cast<size_t>(std::min<uint64_t>(len, it->length - skip));
      switch (it->kind) {
        case Piece::kBytes:
          std::memcpy(buf, header.data() + skip, n);
          break;
        case Piece::kZeros:
          std::memset(buf, 0, n);
          break;
        case Piece::kGuest: {
          const uint64_t g = it->guest + skip;
          const size_t inside = static_cast<size_t>(g < size ? std::min<uint64_t>(n, size - g) : 0);
          if (inside) CH_TRY(in.read(g, buf, inside));
          std::memset(buf + inside, 0, n - inside);
          break;
        }
      }
      buf += n;
      off += n;
      len -= n;
    }
    return {};
  };

  // Progress in guest bytes: holes count when the stream passes them.
  uint64_t reported = 0;
  auto on_progress = [&](uint64_t done) {
    uint64_t guest = size;
    if (done < total) {
      auto it = std::upper_bound(pieces.begin(), pieces.end(), done,
                                 [](uint64_t o, const Piece& p) { return o < p.start; });
      --it;
      guest = it->kind == Piece::kGuest ? it->guest + (done - it->start)
              : it == pieces.begin()    ? 0
                                        : reported;
    }
    guest = std::min(guest, size);
    if (guest > reported) {
      advance(opts.progress, guest - reported);
      reported = guest;
    }
  };

  GzipOptions gz;
  gz.threads = threads;
  CH_TRY(gzip_parallel(total, fill, out, gz, on_progress));
  return {};
}

}  // namespace ch
