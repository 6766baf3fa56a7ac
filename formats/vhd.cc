// vhd: placeholder until the format lands; every entry point fails clearly.
#include "formats/formats.h"

namespace ch {

bool probe_vhd(const ProbeInput&) { return false; }
Result<std::unique_ptr<ImageReader>> open_vhd(File file) {
  return Error{file.path() + ": vhd input is not supported yet"};
}
Status write_vhd(const ImageReader&, Sink&, const WriteOptions&) {
  return Error{"vhd output is not supported yet"};
}

}  // namespace ch
namespace ch {
uint64_t vhd_virtual_size(uint64_t n) { return (n + (1 << 20) - 1) / (1 << 20) * (1 << 20); }
}  // namespace ch
