// Copying guest bytes into a sink in file order, the data phase shared by
// the writers that store guest bytes uncompressed (raw, vhd, qcow2). Where
// the input stores a range verbatim in a file and the sink is a file, the
// bytes move inside the kernel (copy_file_range: one page-cache copy instead
// of a read and a write through user space, ~3x faster for cached images);
// otherwise 4 MiB pieces are read on worker threads and written in order.
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
// opts.progress advances by guest bytes.
Status copy_extents(const ImageReader& in, const std::vector<Extent>& extents, Sink& out,
                    const WriteOptions& opts);

}  // namespace ch
