// qcow2: placeholder until the format lands; every entry point fails clearly.
#include "formats/formats.h"

namespace ch {

bool probe_qcow2(const ProbeInput&) { return false; }
Result<std::unique_ptr<ImageReader>> open_qcow2(File file) {
  return Error{file.path() + ": qcow2 input is not supported yet"};
}
Status write_qcow2(const ImageReader&, Sink&, const WriteOptions&) {
  return Error{"qcow2 output is not supported yet"};
}

}  // namespace ch
