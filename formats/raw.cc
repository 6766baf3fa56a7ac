// raw: the guest bytes as they are. The extent map comes from
// SEEK_DATA/SEEK_HOLE (one syscall per extent, as qemu's file-posix
// find_allocation does); filesystems without hole support report one data
// extent. Copied images lose their holes, so writers still zero-detect
// inside data extents. The raw writer restores sparseness: zero runs of a
// whole 64 KiB unit become holes in the output file.
#include <algorithm>
#include <vector>

#include "formats/formats.h"
#include "formats/hole_map.h"
#include "formats/copy.h"

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
  // One pass over the reader's own map; zero 64 KiB units become holes.
  return copy_extents(in, in.extents(), out, opts, 64 << 10);
}

}  // namespace ch
