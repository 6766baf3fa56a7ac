// Extent map of a plain file region from SEEK_DATA/SEEK_HOLE: one syscall
// pair per extent, as qemu's file-posix find_allocation does. Shared by the
// raw reader and the fixed-VHD reader (whose data area is raw bytes).
#pragma once

#include <cstdint>
#include <vector>

#include "base/file.h"
#include "base/result.h"
#include "formats/image_reader.h"

namespace ch {

// Extents covering [0, size) of FILE (size may be less than the file's
// length). Filesystems without SEEK_DATA report one data extent.
Result<std::vector<Extent>> map_holes(const File& file, uint64_t size);

}  // namespace ch
