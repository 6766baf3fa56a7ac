// vhd: Microsoft Virtual PC / Hyper-V "VHD" (qemu's "vpc"), read and write.
//
// Spec: "Virtual Hard Disk Image Format Specification" (Microsoft, 2006);
// libyal/libvhdi's format notes; qemu block/vpc.c as the reference reader.
// Every integer is big-endian.
//
// Fixed disk:   [guest bytes ........................][footer 512]
// Dynamic disk: [footer copy 512][dyn header 1024][BAT][block]...[footer 512]
//
// Footer (512 bytes): "conectix", features, version 1.0, data offset (all
// ones for fixed, else the dynamic header's offset), timestamp (seconds
// since 2000-01-01 UTC), creator app/version/host, original and current size,
// CHS geometry, disk type (2 fixed, 3 dynamic, 4 differencing), checksum
// (one's complement of the byte sum with the field zeroed), UUID, saved state.
//
// Dynamic header (1024 bytes, "cxsparse"): BAT offset and entry count, block
// size (a power of two, 2 MiB by default), its own checksum, parent fields.
// Each BAT entry is the sector offset of a block's sector bitmap (one bit per
// sector, padded to 512 bytes) followed by the block's data; 0xFFFFFFFF means
// unallocated (reads as zeros). qemu ignores the bitmap on reads and sets it
// all-ones on writes; we read the same way so that our bytes equal qemu's.
//
// Which size is the disk? Virtual PC sizes the disk from CHS geometry, Hyper-V
// and most others from current_size. qemu 7.2 (our oracle) trusts
// current_size when the creator app is one of "win ", "qem2", "d2v ", "CTXS",
// "tap\0", or when CHS is the 65535x16x255 sentinel; for every other creator
// it uses C*H*S sectors. We follow it exactly so that a file reads the same
// here and in qemu-img. (Newer qemu narrows the CHS rule to "vpc " and
// "qemu"; that changes the answer only for odd creators such as Azure's
// "wa\0\0" whose CHS undercounts.)
//
// Writer: fixed disks only, shaped for Azure, which wants a whole number of
// MiB and file size = virtual size + 512. The footer is byte-for-byte what
// `qemu-img convert -O vpc -o subformat=fixed,force_size` writes (creator
// "qem2" 5.3 on "Wi2k", CHS at the sentinel so current_size is authoritative)
// except that the timestamp and UUID are derived, never taken from the clock
// or a random source: SOURCE_DATE_EPOCH (else 0, i.e. 2000-01-01) and a
// SHA-256 of (virtual size, file name).
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/endian.h"
#include "formats/formats.h"
#include "formats/source_date.h"
#include "formats/hole_map.h"

namespace ch {

namespace {

constexpr size_t kFooterSize = 512;
constexpr size_t kDynHeaderSize = 1024;
constexpr uint32_t kUnallocated = 0xFFFFFFFF;
constexpr uint64_t kSentinelSectors = 65535ull * 16 * 255;  // qemu VHD_MAX_GEOMETRY
constexpr uint64_t kMaxBlocks = 1ull << 24;                 // BAT entries held in memory
constexpr uint64_t kTimestampBase = 946684800;              // 2000-01-01 in Unix time

// Footer field offsets.
enum : size_t {
  kFCookie = 0,
  kFFeatures = 8,
  kFVersion = 12,
  kFDataOffset = 16,
  kFTimestamp = 24,
  kFCreatorApp = 28,
  kFCreatorVersion = 32,
  kFCreatorHost = 36,
  kFOriginalSize = 40,
  kFCurrentSize = 48,
  kFCylinders = 56,
  kFHeads = 58,
  kFSectors = 59,
  kFDiskType = 60,
  kFChecksum = 64,
  kFUuid = 68,
};

// Dynamic header field offsets.
enum : size_t {
  kHCookie = 0,
  kHTableOffset = 16,
  kHMaxEntries = 28,
  kHBlockSize = 32,
  kHChecksum = 36,
  kHParentName = 64,  // 512 bytes of UTF-16BE
};

enum : uint32_t { kTypeFixed = 2, kTypeDynamic = 3, kTypeDifferencing = 4 };

// One's complement of the byte sum, skipping the 4-byte checksum field.
uint32_t vhd_checksum(const uint8_t* p, size_t n, size_t checksum_at) {
  uint32_t sum = 0;
  for (size_t i = 0; i < n; ++i)
    if (i < checksum_at || i >= checksum_at + 4) sum += p[i];
  return ~sum;
}

bool has_cookie(const uint8_t* p, const char* cookie) { return std::memcmp(p, cookie, 8) == 0; }

// qemu 7.2 vpc_open: creators whose current_size it trusts over CHS.
bool trusts_current_size(const uint8_t* footer) {
  static const char* const kApps[] = {"win ", "qem2", "d2v ", "CTXS", "tap\0"};
  for (const char* app : kApps)
    if (std::memcmp(footer + kFCreatorApp, app, 4) == 0) return true;
  return false;
}

// UTF-16BE, NUL-terminated, to UTF-8 (parent names of differencing disks).
// Control characters become '?': the name goes into a one-line message.
std::string utf16be_to_utf8(const uint8_t* p, size_t bytes) {
  std::string out;
  for (size_t i = 0; i + 1 < bytes; i += 2) {
    uint32_t c = load_be16(p + i);
    if (c == 0) break;
    if (c >= 0xD800 && c < 0xDC00 && i + 3 < bytes) {
      uint32_t lo = load_be16(p + i + 2);
      if (lo >= 0xDC00 && lo < 0xE000) {
        c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
        i += 2;
      }
    }
    if (c < 0x20 || c == 0x7F) {
      out += '?';
    } else if (c < 0x80) {
      out += char(c);
    } else if (c < 0x800) {
      out += char(0xC0 | c >> 6);
      out += char(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += char(0xE0 | c >> 12);
      out += char(0x80 | (c >> 6 & 0x3F));
      out += char(0x80 | (c & 0x3F));
    } else {
      out += char(0xF0 | c >> 18);
      out += char(0x80 | (c >> 12 & 0x3F));
      out += char(0x80 | (c >> 6 & 0x3F));
      out += char(0x80 | (c & 0x3F));
    }
  }
  return out;
}

class VhdReader : public ImageReader {
 public:
  std::string_view format() const override { return "vhd"; }
  uint64_t virtual_size() const override { return size_; }
  const std::vector<Extent>& extents() const override { return extents_; }

  Status read(uint64_t offset, uint8_t* buf, size_t len) const override {
    CH_CHECK(offset + len <= size_);
    if (!dynamic_) return file_.pread_full(offset, buf, len);
    while (len > 0) {
      uint64_t block = offset / block_size_;
      uint64_t within = offset % block_size_;
      size_t n = static_cast<size_t>(std::min<uint64_t>(len, block_size_ - within));
      uint32_t entry = bat_[block];
      if (entry == kUnallocated) {
        std::memset(buf, 0, n);
      } else {
        CH_TRY(file_.pread_full(uint64_t(entry) * 512 + bitmap_size_ + within, buf, n));
      }
      offset += n;
      buf += n;
      len -= n;
    }
    return {};
  }

  static Result<std::unique_ptr<ImageReader>> open(File file);

 private:
  File file_;
  uint64_t size_ = 0;
  std::vector<Extent> extents_;
  bool dynamic_ = false;
  uint64_t block_size_ = 0;
  uint64_t bitmap_size_ = 0;
  std::vector<uint32_t> bat_;  // one entry per block of the virtual size
};

Result<std::unique_ptr<ImageReader>> VhdReader::open(File file) {
  const std::string path = file.path();
  CH_ASSIGN(file_size, file.size());
  std::array<uint8_t, kFooterSize> head{}, tail{};
  bool head_ok = false, tail_ok = false;
  if (file_size >= kFooterSize) {
    CH_TRY(file.pread_full(0, head.data(), kFooterSize));
    CH_TRY(file.pread_full(file_size - kFooterSize, tail.data(), kFooterSize));
    head_ok = has_cookie(head.data(), "conectix");
    tail_ok = has_cookie(tail.data(), "conectix");
  }
  // A fixed footer at the end is definitive (the guest bytes of a fixed disk
  // may themselves begin with "conectix"). Otherwise prefer the copy at 0,
  // as qemu does; a dynamic disk whose trailing footer is damaged still opens.
  const uint8_t* footer = nullptr;
  bool at_end = false;
  if (tail_ok && load_be32(tail.data() + kFDiskType) == kTypeFixed) {
    footer = tail.data();
    at_end = true;
  } else if (head_ok) {
    footer = head.data();
  } else if (tail_ok) {
    footer = tail.data();
    at_end = true;
  } else {
    return Error{path + ": not a VHD file (no \"conectix\" footer)"};
  }
  if (vhd_checksum(footer, kFooterSize, kFChecksum) != load_be32(footer + kFChecksum))
    return Error{path + ": VHD footer checksum mismatch"};

  uint32_t type = load_be32(footer + kFDiskType);
  if (type != kTypeFixed && type != kTypeDynamic && type != kTypeDifferencing)
    return Error{path + ": unsupported VHD disk type " + std::to_string(type)};

  uint64_t current = load_be64(footer + kFCurrentSize);
  if (current % 512 != 0) {
    return Error{path + ": VHD current size " + std::to_string(current) +
                 " is not a multiple of 512"};
  }
  uint64_t chs_sectors =
      uint64_t(load_be16(footer + kFCylinders)) * footer[kFHeads] * footer[kFSectors];
  bool use_current = trusts_current_size(footer) || chs_sectors == kSentinelSectors;

  std::unique_ptr<VhdReader> r(new VhdReader);
  r->file_ = std::move(file);
  r->size_ = use_current ? current : chs_sectors * 512;

  if (type == kTypeFixed) {
    if (!at_end) {
      return Error{path + ": VHD footer at offset 0 describes a fixed disk, "
                          "but the file does not end with a footer"};
    }
    uint64_t data_area = file_size - kFooterSize;
    if (r->size_ > data_area) {
      return Error{path + ": VHD virtual size " + std::to_string(r->size_) +
                   " exceeds the data area of " + std::to_string(data_area) + " bytes"};
    }
    CH_ASSIGN(extents, map_holes(r->file_, r->size_));
    r->extents_ = std::move(extents);
    return std::unique_ptr<ImageReader>(std::move(r));
  }

  // Dynamic or differencing: the header first, so that a differencing disk
  // can name its parent.
  uint64_t header_at = load_be64(footer + kFDataOffset);
  if (header_at > file_size || file_size - header_at < kDynHeaderSize) {
    return Error{path + ": VHD dynamic header at offset " + std::to_string(header_at) +
                 " lies past the end of the file"};
  }
  std::array<uint8_t, kDynHeaderSize> h{};
  CH_TRY(r->file_.pread_full(header_at, h.data(), h.size()));
  if (!has_cookie(h.data() + kHCookie, "cxsparse"))
    return Error{path + ": VHD dynamic header has a bad cookie (expected \"cxsparse\")"};
  if (vhd_checksum(h.data(), h.size(), kHChecksum) != load_be32(h.data() + kHChecksum))
    return Error{path + ": VHD dynamic header checksum mismatch"};
  if (type == kTypeDifferencing) {
    std::string parent = utf16be_to_utf8(h.data() + kHParentName, 512);
    return Error{path + ": differencing VHD images are not supported" +
                 (parent.empty() ? std::string() : " (parent: " + parent + ")")};
  }

  uint64_t block_size = load_be32(h.data() + kHBlockSize);
  if (block_size < 512 || (block_size & (block_size - 1)) != 0) {
    return Error{path + ": VHD block size " + std::to_string(block_size) +
                 " is not a power of two of at least 512 bytes"};
  }
  uint64_t max_entries = load_be32(h.data() + kHMaxEntries);
  uint64_t blocks = r->size_ / block_size + (r->size_ % block_size != 0);
  if (blocks > max_entries) {
    return Error{path + ": VHD block allocation table (" + std::to_string(max_entries) +
                 " entries of " + std::to_string(block_size) +
                 " bytes) is too small for virtual size " + std::to_string(r->size_)};
  }
  // The BAT is held in memory, so its size is capped whatever the file
  // claims (a sparse file can hold a 16 GiB table for free). 2^24 entries of
  // 2 MiB blocks is 32 TiB, far past the format's 2040 GiB.
  if (blocks > kMaxBlocks) {
    return Error{path + ": VHD block allocation table of " + std::to_string(blocks) +
                 " entries is too big (at most " + std::to_string(kMaxBlocks) + ")"};
  }
  uint64_t table_at = load_be64(h.data() + kHTableOffset);
  if (table_at > file_size || (file_size - table_at) / 4 < max_entries) {
    return Error{path + ": VHD block allocation table at offset " + std::to_string(table_at) +
                 " (" + std::to_string(max_entries) + " entries) lies past the end of the file"};
  }
  // Entries past the virtual size are never read; only the needed ones are kept.
  std::vector<uint8_t> raw_bat(blocks * 4);
  CH_TRY(r->file_.pread_full(table_at, raw_bat.data(), raw_bat.size()));
  // One bit per sector, padded to a whole sector.
  uint64_t bitmap_size = (block_size / 512 / 8 + 511) / 512 * 512;
  r->bat_.resize(blocks);
  std::vector<Extent> extents;  // coalesced as built: never one per block
  for (uint64_t i = 0; i < blocks; ++i) {
    uint32_t entry = load_be32(raw_bat.data() + i * 4);
    r->bat_[i] = entry;
    uint64_t start = i * block_size;
    uint64_t length = std::min(block_size, r->size_ - start);
    if (entry != kUnallocated) {
      uint64_t at = uint64_t(entry) * 512;
      if (at > file_size || file_size - at < bitmap_size + length) {
        return Error{path + ": VHD block " + std::to_string(i) + " at offset " +
                     std::to_string(at) + " lies past the end of the file"};
      }
    }
    const bool data = entry != kUnallocated;
    if (!extents.empty() && extents.back().data == data) {
      extents.back().length += length;
    } else {
      extents.push_back({start, length, data});
    }
  }
  r->dynamic_ = true;
  r->block_size_ = block_size;
  r->bitmap_size_ = bitmap_size;
  r->extents_ = coalesce_extents(std::move(extents));
  return std::unique_ptr<ImageReader>(std::move(r));
}

// --- Writer -----------------------------------------------------------------

// Footer timestamp: SOURCE_DATE_EPOCH (reproducible-builds.org) when set,
// else 0. Clamped to the field's range, 2000-01-01 .. 2136-02-07.
Result<uint32_t> footer_timestamp() {
  CH_ASSIGN(unix_time, source_date_epoch());
  if (unix_time <= kTimestampBase) return uint32_t{0};
  return static_cast<uint32_t>(std::min<uint64_t>(unix_time - kTimestampBase, 0xFFFFFFFFu));
}

// UUID v4 layout from SHA-256(be64(virtual size) || file name): stable for
// the same output, distinct for differently named or sized disks.
std::array<uint8_t, 16> footer_uuid(uint64_t virtual_size, const std::string& file_name) {
  std::vector<uint8_t> msg(8);
  store_be64(msg.data(), virtual_size);
  msg.insert(msg.end(), file_name.begin(), file_name.end());
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  CH_CHECK(EVP_Digest(msg.data(), msg.size(), digest, &digest_len, EVP_sha256(), nullptr) == 1);
  std::array<uint8_t, 16> uuid;
  std::memcpy(uuid.data(), digest, 16);
  uuid[6] = uint8_t((uuid[6] & 0x0F) | 0x40);  // version 4
  uuid[8] = uint8_t((uuid[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return uuid;
}

// The footer qemu-img writes with subformat=fixed,force_size.
std::array<uint8_t, kFooterSize> fixed_footer(uint64_t virtual_size, uint32_t timestamp,
                                              const std::array<uint8_t, 16>& uuid) {
  std::array<uint8_t, kFooterSize> f{};
  std::memcpy(f.data() + kFCookie, "conectix", 8);
  store_be32(f.data() + kFFeatures, 2);  // bit 1: reserved, must be set
  store_be32(f.data() + kFVersion, 0x00010000);
  store_be64(f.data() + kFDataOffset, ~uint64_t{0});  // fixed: no dynamic header
  store_be32(f.data() + kFTimestamp, timestamp);
  std::memcpy(f.data() + kFCreatorApp, "qem2", 4);  // qemu, force_size
  store_be32(f.data() + kFCreatorVersion, 0x00050003);
  std::memcpy(f.data() + kFCreatorHost, "Wi2k", 4);
  store_be64(f.data() + kFOriginalSize, virtual_size);
  store_be64(f.data() + kFCurrentSize, virtual_size);
  // CHS sentinel 65535/16/255: readers must take current_size.
  store_be16(f.data() + kFCylinders, 65535);
  f[kFHeads] = 16;
  f[kFSectors] = 255;
  store_be32(f.data() + kFDiskType, kTypeFixed);
  std::memcpy(f.data() + kFUuid, uuid.data(), uuid.size());
  store_be32(f.data() + kFChecksum, vhd_checksum(f.data(), f.size(), kFChecksum));
  return f;
}

}  // namespace

bool probe_vhd(const ProbeInput& in) {
  return (in.head.size() >= 8 && has_cookie(in.head.data(), "conectix")) ||
         (in.tail.size() == kFooterSize && has_cookie(in.tail.data(), "conectix"));
}

Result<std::unique_ptr<ImageReader>> open_vhd(File file) { return VhdReader::open(std::move(file)); }

Status write_vhd(const ImageReader& in, Sink& out, const WriteOptions& opts) {
  // Settle everything that can fail before the first byte goes out.
  CH_ASSIGN(timestamp, footer_timestamp());
  uint64_t size = vhd_virtual_size(in.virtual_size());
  uint64_t start = out.position();
  CH_TRY(write_raw(in, out, opts));
  CH_CHECK(out.position() - start == in.virtual_size());
  CH_TRY(out.write_zeros(size - in.virtual_size()));  // Azure: whole MiB
  auto footer = fixed_footer(size, timestamp, footer_uuid(size, opts.file_name));
  return out.write(footer.data(), footer.size());
}

Result<std::array<uint8_t, 512>> vhd_fixed_footer(uint64_t virtual_size, const std::string& file_name) {
  CH_ASSIGN(timestamp, footer_timestamp());
  return fixed_footer(virtual_size, timestamp, footer_uuid(virtual_size, file_name));
}

uint64_t vhd_virtual_size(uint64_t n) { return (n + (1 << 20) - 1) / (1 << 20) * (1 << 20); }

}  // namespace ch
