// Copying guest bytes into a sink in file order, the data phase shared by
// the writers that store guest bytes uncompressed (raw, vhd, qcow2): 4 MiB
// pieces are read on worker threads and written in order.
// (copy_file_range was tried: on this kernel its cost swung from 0.3 to 6 s
// of system time for the same 2 GB depending on page-cache state, while
// pread + pwrite stayed steady, so it is not used.)
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "formats/formats.h"
#include "formats/image_reader.h"
#include "formats/sink.h"

namespace ch {

// Writes each extent in order: data extents as guest bytes, the others as
// zeros (write_zeros: holes in a file). A data extent may extend past the
// virtual size (a partial last cluster); the excess is written as zeros.
// opts.progress advances by guest bytes. With a sparse_unit, aligned units
// of data that are all zero become write_zeros too (copied images lose
// their holes; this gives them back).
Status copy_extents(const ImageReader& in, const std::vector<Extent>& extents, Sink& out,
                    const WriteOptions& opts, uint64_t sparse_unit = 0);

}  // namespace ch
