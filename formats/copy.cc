#include "formats/copy.h"

#include <algorithm>

#include "base/ordered_pipeline.h"
#include "formats/zero.h"

namespace ch {

namespace {

constexpr uint64_t kPiece = 4 << 20;

struct Piece {
  uint64_t offset, length;  // guest range; bytes past virtual size are zeros
  bool data;
};

}  // namespace

Status copy_extents(const ImageReader& in, const std::vector<Extent>& extents, Sink& out,
                    const WriteOptions& opts, uint64_t sparse_unit) {
  const uint64_t size = in.virtual_size();
  std::vector<Piece> pieces;
  for (const Extent& e : extents) {
    if (!e.data) {
      pieces.push_back({e.offset, e.length, false});
      continue;
    }
    for (uint64_t off = e.offset; off < e.offset + e.length; off += kPiece)
      pieces.push_back({off, std::min(kPiece, e.offset + e.length - off), true});
  }
  const unsigned threads = opts.threads ? opts.threads : default_threads();
  return run_ordered<std::vector<uint8_t>>(
      pieces.size(), threads, 4 * threads,
      [&](size_t i) -> Result<std::vector<uint8_t>> {
        const Piece& p = pieces[i];
        std::vector<uint8_t> bytes;
        if (!p.data) return bytes;
        uint64_t have = p.offset >= size ? 0 : std::min(p.length, size - p.offset);
        bytes.resize(p.length);
        if (have) CH_TRY(in.read(p.offset, bytes.data(), static_cast<size_t>(have)));
        return bytes;
      },
      [&](size_t i, std::vector<uint8_t>& bytes) -> Status {
        const Piece& p = pieces[i];
        if (!p.data) {
          CH_TRY(out.write_zeros(p.length));
        } else if (sparse_unit == 0) {
          CH_TRY(out.write(bytes.data(), bytes.size()));
        } else {
          for (uint64_t o = 0; o < p.length; o += sparse_unit) {
            size_t n = static_cast<size_t>(std::min(sparse_unit, p.length - o));
            if (is_zero(bytes.data() + o, n)) {
              CH_TRY(out.write_zeros(n));
            } else {
              CH_TRY(out.write(bytes.data() + o, n));
            }
          }
        }
        advance(opts.progress, p.offset >= size ? 0 : std::min(p.length, size - p.offset));
        return {};
      });
}

}  // namespace ch
