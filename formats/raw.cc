// raw: the guest bytes as they are. The extent map comes from
// SEEK_DATA/SEEK_HOLE (one syscall per extent, as qemu's file-posix
// find_allocation does); filesystems without hole support report one data
// extent. Copied images lose their holes, so writers still zero-detect
// inside data extents. The raw writer restores sparseness: zero runs of a
// whole 64 KiB unit become holes in the output file.
#include <algorithm>
#include <vector>

#include "base/ordered_pipeline.h"
#include "formats/formats.h"
#include "formats/hole_map.h"
#include "formats/zero.h"

namespace ch {

namespace {

class RawReader : public ImageReader {
 public:
  RawReader(File file, uint64_t size, std::vector<Extent> extents)
      : file_(std::move(file)), size_(size), extents_(std::move(extents)) {}
  std::string_view format() const override { return "raw"; }
  uint64_t virtual_size() const override { return size_; }
  const std::vector<Extent>& extents() const override { return extents_; }
  Status read(uint64_t offset, uint8_t* buf, size_t len) const override {
    CH_CHECK(offset + len <= size_);
    return file_.pread_full(offset, buf, len);
  }

 private:
  File file_;
  uint64_t size_;
  std::vector<Extent> extents_;
};

}  // namespace

bool probe_raw(const ProbeInput&) { return true; }

Result<std::unique_ptr<ImageReader>> open_raw(File file) {
  CH_ASSIGN(size, file.size());
  CH_ASSIGN(extents, map_holes(file, size));
  return std::unique_ptr<ImageReader>(new RawReader(std::move(file), size, std::move(extents)));
}

Status write_raw(const ImageReader& in, Sink& out, const WriteOptions& opts) {
  constexpr uint64_t kChunk = 4 << 20;
  constexpr uint64_t kUnit = 64 << 10;
  // Work items: data extents cut into chunks of at most 4 MiB; holes pass
  // straight to the sink.
  struct Item {
    uint64_t offset, length;
    bool data;
  };
  std::vector<Item> items;
  for (const Extent& e : in.extents()) {
    if (!e.data) {
      items.push_back({e.offset, e.length, false});
      continue;
    }
    for (uint64_t off = e.offset; off < e.offset + e.length; off += kChunk)
      items.push_back({off, std::min(kChunk, e.offset + e.length - off), true});
  }
  unsigned threads = opts.threads ? opts.threads : default_threads();
  Status s = run_ordered<std::vector<uint8_t>>(
      items.size(), threads, threads * 4,
      [&](size_t i) -> Result<std::vector<uint8_t>> {
        std::vector<uint8_t> buf;
        if (!items[i].data) return buf;
        buf.resize(items[i].length);
        CH_TRY(in.read(items[i].offset, buf.data(), buf.size()));
        return buf;
      },
      [&](size_t i, std::vector<uint8_t>& buf) -> Status {
        const Item& it = items[i];
        if (!it.data) {
          CH_TRY(out.write_zeros(it.length));
        } else {
          for (uint64_t o = 0; o < it.length; o += kUnit) {
            size_t n = static_cast<size_t>(std::min(kUnit, it.length - o));
            if (is_zero(buf.data() + o, n)) {
              CH_TRY(out.write_zeros(n));
            } else {
              CH_TRY(out.write(buf.data() + o, n));
            }
          }
        }
        advance(opts.progress, it.length);
        return {};
      });
  return s;
}

}  // namespace ch
