// Replays every kept fuzz corpus file (tests/fuzz/corpus/FORMAT/) through the
// fuzz target, so a crash once found stays fixed. The corpus is grown by
// scripts/fuzz.sh with libFuzzer; this test needs no clang.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "tests/fuzz/fuzz_target.h"

namespace ch {
namespace fs = std::filesystem;

TEST(FuzzCorpus, EveryKeptInputIsHandled) {
  fs::path root = fs::path(CLOUD_HELPER_SOURCE_DIR) / "tests/fuzz/corpus";
  size_t files = 0;
  for (const char* format : {"qcow2", "vhd", "vmdk", ""}) {
    fs::path dir = root / (*format ? format : "probe");
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      fuzz_open_and_read(format, bytes.data(), bytes.size());
      ++files;
    }
  }
  RecordProperty("corpus_files", static_cast<int>(files));
}

}  // namespace ch
