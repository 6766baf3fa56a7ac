// libFuzzer entry point. Built only with -DCLOUD_HELPER_FUZZ=ON and clang:
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCLOUD_HELPER_FUZZ=ON -DCLOUD_HELPER_TESTS=OFF
//   build-fuzz/qcow2_fuzz tests/fuzz/corpus/qcow2 -max_total_time=60
// FUZZ_FORMAT is set per binary (qcow2, vhd, vmdk, or "" to probe). The
// environment variable CH_FUZZ_FORMAT overrides it ("probe" = ""), so one
// binary can fuzz every format: each target compiles every core source with
// sanitizers, and scripts/fuzz.sh builds only probe_fuzz to save 3/4 of that.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "tests/fuzz/fuzz_target.h"

namespace {
std::string g_format = FUZZ_FORMAT;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* env = std::getenv("CH_FUZZ_FORMAT"))
    g_format = std::string(env) == "probe" ? "" : env;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ch::fuzz_open_and_read(g_format, data, size);
  return 0;
}
