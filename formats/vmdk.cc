// vmdk: placeholder until the format lands; every entry point fails clearly.
#include "formats/formats.h"

namespace ch {

bool probe_vmdk(const ProbeInput&) { return false; }
Result<std::unique_ptr<ImageReader>> open_vmdk(File file) {
  return Error{file.path() + ": vmdk input is not supported yet"};
}
Status write_vmdk(const ImageReader&, Sink&, const WriteOptions&) {
  return Error{"vmdk output is not supported yet"};
}

}  // namespace ch
