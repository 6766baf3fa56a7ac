#include "tests/fuzz/fuzz_target.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "formats/image_reader.h"

namespace ch {

int fuzz_open_and_read(std::string_view format, const uint8_t* data, size_t size) {
  int fd = memfd_create("fuzz-image", MFD_CLOEXEC);
  if (fd < 0) return 0;
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  auto reader = open_image(path, format);
  int opened = 0;
  if (reader.ok()) {
    opened = 1;
    const ImageReader& r = **reader;
    // Every extent must lie inside the virtual size, in order.
    uint64_t pos = 0;
    for (const Extent& e : r.extents()) {
      if (e.offset != pos || e.length == 0) __builtin_trap();
      pos += e.length;
    }
    if (pos != r.virtual_size()) __builtin_trap();
    // Read the start of each data extent, at most 8 MiB in total.
    std::vector<uint8_t> buf(256 << 10);
    uint64_t budget = 8 << 20;
    for (const Extent& e : r.extents()) {
      if (!e.data || budget == 0) continue;
      uint64_t n = std::min<uint64_t>({e.length, buf.size(), budget});
      (void)r.read(e.offset, buf.data(), static_cast<size_t>(n));
      budget -= n;
      // Also the last bytes of the extent (end-of-table edge cases).
      if (e.length > n) (void)r.read(e.offset + e.length - 512 > e.offset ? e.offset + e.length - 512 : e.offset, buf.data(), 512);
    }
  }
  close(fd);
  return opened;
}

}  // namespace ch
