#include "formats/image_reader.h"

#include <algorithm>
#include <array>

#include "base/file.h"
#include "formats/formats.h"

namespace ch {

std::vector<Extent> coalesce_extents(std::vector<Extent> in) {
  std::vector<Extent> out;
  out.reserve(in.size());
  for (const Extent& e : in) {
    if (e.length == 0) continue;
    if (!out.empty() && out.back().data == e.data &&
        out.back().offset + out.back().length == e.offset) {
      out.back().length += e.length;
    } else {
      out.push_back(e);
    }
  }
  return out;
}

uint64_t data_bytes(const std::vector<Extent>& extents) {
  uint64_t n = 0;
  for (const Extent& e : extents)
    if (e.data) n += e.length;
  return n;
}

Result<std::unique_ptr<ImageReader>> open_image(const std::string& path, std::string_view format) {
  CH_ASSIGN(file, File::open_read(path));
  if (!format.empty() && format != "auto") {
    const InputFormat* f = find_input_format(format);
    if (!f) {
      return Error{path + ": unknown input format '" + std::string(format) +
                   "' (expected raw, qcow2, vhd or vmdk)"};
    }
    return f->open(std::move(file));
  }
  CH_ASSIGN(size, file.size());
  std::vector<uint8_t> head(std::min<uint64_t>(size, 65536));
  CH_TRY(file.pread_full(0, head.data(), head.size()));
  std::array<uint8_t, 512> tail{};
  size_t tail_len = static_cast<size_t>(std::min<uint64_t>(size, 512));
  CH_TRY(file.pread_full(size - tail_len, tail.data(), tail_len));
  ProbeInput probe{head, std::span<const uint8_t>(tail.data(), tail_len), size};
  for (const InputFormat& f : input_formats()) {
    if (f.probe(probe)) return f.open(std::move(file));
  }
  return Error{path + ": unknown image format"};
}

}  // namespace ch
