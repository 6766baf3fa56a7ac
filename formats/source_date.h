// SOURCE_DATE_EPOCH (reproducible-builds.org): the one clock that formats
// with a timestamp field (VHD footer, tar mtime) may use, so output stays
// byte-identical. Unset or empty means 0.
#pragma once

#include <cstdint>

#include "base/result.h"

namespace ch {

// Seconds since 1970 from SOURCE_DATE_EPOCH. Error when it is set to
// anything but a whole number: "SOURCE_DATE_EPOCH 'X' is not a
// non-negative whole number of seconds".
Result<uint64_t> source_date_epoch();

}  // namespace ch
