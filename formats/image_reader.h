// What every input format exposes: a virtual size, an extent map, and
// thread-safe reads of guest bytes. Writers consume only this interface, so
// any supported input converts to any output.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace ch {

// A run of guest bytes. `data == false` guarantees the run reads as zeros
// (a hole, an unallocated cluster/grain/block). `data == true` makes no
// promise: copied images lose sparseness, so data runs may hold zeros too.
struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool data = false;
  bool operator==(const Extent&) const = default;
};

class ImageReader {
 public:
  virtual ~ImageReader() = default;
  // "raw", "qcow2", "vhd", "vmdk".
  virtual std::string_view format() const = 0;
  virtual uint64_t virtual_size() const = 0;
  // Ascending, adjacent, non-empty extents covering exactly
  // [0, virtual_size()); adjacent extents differ in `data`.
  virtual const std::vector<Extent>& extents() const = 0;
  // Reads guest bytes [offset, offset + len), which must lie inside
  // virtual_size(). Safe to call from several threads at once.
  virtual Status read(uint64_t offset, uint8_t* buf, size_t len) const = 0;
};

// Normalises an extent list: drops empty runs and merges neighbours of the
// same kind. Readers build their maps with it.
std::vector<Extent> coalesce_extents(std::vector<Extent> in);

// Total bytes in data extents.
uint64_t data_bytes(const std::vector<Extent>& extents);

// Opens PATH as FORMAT ("" or "auto" probes the content). Errors name the
// file: "disk.img: not a qcow2 file (bad magic)", "x.qcow2: qcow2 images
// with a backing file are not supported (backing file: base.img)".
Result<std::unique_ptr<ImageReader>> open_image(const std::string& path,
                                                std::string_view format = "");

}  // namespace ch
