// Allocation scan: refines a reader's extent map by zero detection, so that
// writers which must fix their layout before copying bytes (qcow2 tables,
// the tar sparse map) know exactly which units hold data. Runs in parallel;
// reads each data byte once.
#pragma once

#include <cstdint>
#include <vector>

#include "base/progress.h"
#include "base/result.h"
#include "formats/image_reader.h"

namespace ch {

// Returns extents covering [0, virtual_size) where every data extent starts
// and ends on a multiple of `unit` (or at virtual_size) and no unit inside a
// data extent is entirely zero. `unit` is a power of two >= 512.
Result<std::vector<Extent>> scan_allocation(const ImageReader& in, uint64_t unit,
                                            unsigned threads, Progress* progress = nullptr);

}  // namespace ch
