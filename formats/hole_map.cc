#include "formats/hole_map.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace ch {

Result<std::vector<Extent>> map_holes(const File& file, uint64_t size) {
  std::vector<Extent> out;
  uint64_t pos = 0;
  while (pos < size) {
    off_t data = lseek(file.fd(), static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) {  // trailing hole
        out.push_back({pos, size - pos, false});
        break;
      }
      // No SEEK_DATA support (EINVAL on some filesystems): all data.
      return std::vector<Extent>{{0, size, true}};
    }
    uint64_t d = std::min<uint64_t>(static_cast<uint64_t>(data), size);
    if (d > pos) out.push_back({pos, d - pos, false});
    if (d >= size) break;
    off_t hole = lseek(file.fd(), data, SEEK_HOLE);
    uint64_t h = hole < 0 ? size : std::min<uint64_t>(static_cast<uint64_t>(hole), size);
    out.push_back({d, h - d, true});
    pos = h;
  }
  return coalesce_extents(std::move(out));
}

}  // namespace ch
