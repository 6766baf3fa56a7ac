// Replays every kept fuzz corpus file (tests/fuzz/corpus/FORMAT/) through the
// fuzz target, so a crash once found stays fixed. The corpus is grown and
// minimised by scripts/fuzz.sh with libFuzzer; this test needs no clang. The
// harness bounds the work per input (a few MiB of reads), so the whole
// corpus replays in well under a second.
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
    const std::string name = *format ? format : "probe";
    fs::path dir = root / name;
    if (!fs::is_directory(dir)) continue;
    size_t here = 0, opened = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      // A crash here names the file: rerun it under scripts/fuzz.sh's
      // sanitizer build with CH_FUZZ_FORMAT=FORMAT build-fuzz/probe_fuzz FILE.
      SCOPED_TRACE(entry.path().string());
      opened += fuzz_open_and_read(format, bytes.data(), bytes.size());
      ++here;
    }
    RecordProperty(name + "_files", static_cast<int>(here));
    RecordProperty(name + "_opened", static_cast<int>(opened));
    files += here;
  }
  EXPECT_GT(files, 0u) << "no corpus under " << root;
}

}  // namespace ch
