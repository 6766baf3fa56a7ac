#include "formats/allocation.h"

#include <algorithm>

#include "base/ordered_pipeline.h"
#include "formats/zero.h"

namespace ch {

Result<std::vector<Extent>> scan_allocation(const ImageReader& in, uint64_t unit, unsigned threads,
                                            Progress* progress) {
  CH_CHECK(unit >= 512 && (unit & (unit - 1)) == 0);
  const uint64_t size = in.virtual_size();
  const uint64_t chunk = std::max<uint64_t>(unit, 4 << 20);  // a multiple of unit
  // Chunks: unit-aligned pieces of the data extents, widened to unit
  // boundaries (the widened part of a hole reads as zeros anyway).
  struct Chunk {
    uint64_t offset, length;
  };
  std::vector<Chunk> chunks;
  uint64_t covered = 0;  // chunks never overlap after widening
  for (const Extent& e : in.extents()) {
    if (!e.data) continue;
    uint64_t start = std::max(covered, e.offset / unit * unit);
    uint64_t end = std::min(size, (e.offset + e.length + unit - 1) / unit * unit);
    for (uint64_t off = start; off < end;) {
      uint64_t next = std::min(end, (off / chunk + 1) * chunk);
      chunks.push_back({off, next - off});
      off = next;
    }
    covered = std::max(covered, end);
  }
  std::vector<Extent> out;
  uint64_t pos = 0;
  auto emit = [&](uint64_t off, uint64_t len, bool data) {
    if (off > pos) out.push_back({pos, off - pos, false});
    out.push_back({off, len, data});
    pos = off + len;
  };
  // A result is the list of data runs inside the chunk.
  using Runs = std::vector<Extent>;
  Status s = run_ordered<Runs>(
      chunks.size(), threads ? threads : default_threads(), 8,
      [&](size_t i) -> Result<Runs> {
        const Chunk& c = chunks[i];
        std::vector<uint8_t> buf(c.length);
        CH_TRY(in.read(c.offset, buf.data(), buf.size()));
        Runs runs;
        for (uint64_t o = 0; o < c.length; o += unit) {
          uint64_t n = std::min(unit, c.length - o);
          if (is_zero(buf.data() + o, n)) continue;
          if (!runs.empty() && runs.back().offset + runs.back().length == c.offset + o)
            runs.back().length += n;
          else
            runs.push_back({c.offset + o, n, true});
        }
        return runs;
      },
      [&](size_t i, Runs& runs) -> Status {
        for (const Extent& r : runs) emit(r.offset, r.length, true);
        advance(progress, chunks[i].length);
        return {};
      });
  if (!s.ok()) return s.error();
  if (pos < size) out.push_back({pos, size - pos, false});
  return coalesce_extents(std::move(out));
}

}  // namespace ch
