// gce-tar: placeholder until the format lands.
#include "formats/formats.h"

namespace ch {

uint64_t gce_tar_virtual_size(uint64_t n) { return (n + (1ull << 30) - 1) >> 30 << 30; }
Status write_gce_tar(const ImageReader&, Sink&, const WriteOptions&) {
  return Error{"gce-tar output is not supported yet"};
}

}  // namespace ch
