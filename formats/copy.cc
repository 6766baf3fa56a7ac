#include "formats/copy.h"

#include <algorithm>
#include <atomic>

#include "base/ordered_pipeline.h"

namespace ch {

namespace {

constexpr uint64_t kPiece = 4 << 20;

struct Piece {
  uint64_t offset, length;  // guest range; bytes past virtual size are zeros
  bool data;
};

// A read piece: its bytes, or empty when the consumer copies it in-kernel.
struct Buffer {
  std::vector<uint8_t> bytes;
  bool verbatim = false;
};

}  // namespace

Status copy_extents(const ImageReader& in, const std::vector<Extent>& extents, Sink& out,
                    const WriteOptions& opts) {
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
  // Decided once: does the sink take in-kernel copies from this input?
  std::atomic<bool> try_verbatim{true};
  const unsigned threads = opts.threads ? opts.threads : default_threads();
  return run_ordered<Buffer>(
      pieces.size(), threads, 2 * threads,
      [&](size_t i) -> Result<Buffer> {
        const Piece& p = pieces[i];
        Buffer b;
        if (!p.data) return b;
        uint64_t have = p.offset >= size ? 0 : std::min(p.length, size - p.offset);
        uint64_t file_offset;
        if (try_verbatim && have == p.length && in.verbatim_file(p.offset, have, &file_offset)) {
          b.verbatim = true;
          return b;
        }
        b.bytes.resize(p.length);
        if (have) CH_TRY(in.read(p.offset, b.bytes.data(), static_cast<size_t>(have)));
        return b;
      },
      [&](size_t i, Buffer& b) -> Status {
        const Piece& p = pieces[i];
        if (!p.data) {
          CH_TRY(out.write_zeros(p.length));
        } else if (b.verbatim) {
          uint64_t file_offset = 0;
          const File* f = in.verbatim_file(p.offset, p.length, &file_offset);
          CH_ASSIGN(copied, out.copy_from(*f, file_offset, p.length));
          if (!copied) {
            try_verbatim = false;  // later pieces read through user space
            std::vector<uint8_t> bytes(p.length);
            CH_TRY(in.read(p.offset, bytes.data(), bytes.size()));
            CH_TRY(out.write(bytes.data(), bytes.size()));
          }
        } else {
          CH_TRY(out.write(b.bytes.data(), b.bytes.size()));
        }
        advance(opts.progress, p.offset >= size ? 0 : std::min(p.length, size - p.offset));
        return {};
      });
}

}  // namespace ch
