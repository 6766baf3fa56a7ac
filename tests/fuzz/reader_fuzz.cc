// libFuzzer entry point. Built only with -DCLOUD_HELPER_FUZZ=ON and clang:
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCLOUD_HELPER_FUZZ=ON
//   build-fuzz/qcow2_fuzz tests/fuzz/corpus/qcow2 -max_total_time=60
// FUZZ_FORMAT is set per binary (qcow2, vhd, vmdk, or "" to probe).
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ch::fuzz_open_and_read(FUZZ_FORMAT, data, size);
  return 0;
}
