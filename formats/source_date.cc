#include "formats/source_date.h"

#include <cerrno>
#include <cstdlib>
#include <string>

namespace ch {

Result<uint64_t> source_date_epoch() {
  const char* v = std::getenv("SOURCE_DATE_EPOCH");
  if (!v || !*v) return uint64_t{0};
  char* end = nullptr;
  errno = 0;
  unsigned long long t = std::strtoull(v, &end, 10);
  if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno == ERANGE)
    return Error{"SOURCE_DATE_EPOCH '" + std::string(v) + "' is not a non-negative whole number of seconds"};
  return static_cast<uint64_t>(t);
}

}  // namespace ch
