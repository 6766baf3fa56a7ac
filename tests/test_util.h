// Small helpers shared by tests: a temporary directory that cleans up after
// itself, running a shell command (the outside oracles: qemu-img, tar, cmp),
// and building sparse raw images from a list of data runs. Keep it small:
// anything used by one test file only belongs in that file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "metadata/image_metadata.h"

namespace ch::test {

// mkdtemp under /tmp; removed with everything inside when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string file(const std::string& name) const;
  std::string operator/(const std::string& name) const { return file(name); }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;   // -1 when the command could not run or was killed
  std::string output;   // its stdout (append "2>&1" to capture stderr too)
};

// Runs `command` with /bin/sh -c.
CommandResult run_command(const std::string& command);

// Wraps s in single quotes for /bin/sh.
std::string shell_quote(const std::string& s);

// Lowercase hex digest of DATA with a formats/checksum.h algorithm
// ("sha256", "sha512", "md5"), independent of the clouds/ code under test.
std::string digest_hex(std::string_view data, const std::string& algorithm);

// A run of written bytes in a test image. Pattern runs hold pseudo-random
// bytes; zero runs are written zeros (allocated, not a hole), which is what
// a copied image looks like.
struct DataRun {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool zeros = false;
};

// The pattern byte at `offset` for `seed`. Depends only on (seed, offset),
// so two files built from the same runs agree byte for byte whatever their
// sizes (a padded copy of a source is the source plus zeros).
uint8_t pattern_byte(uint64_t seed, uint64_t offset);

// Creates PATH as a sparse file of `size` bytes: holes everywhere except
// `runs` (later runs overwrite earlier ones; runs past `size` are clipped).
Status make_sparse_file(const std::string& path, uint64_t size,
                        const std::vector<DataRun>& runs, uint64_t seed = 1);

// Starts `sh -c COMMAND` (which should exec the program to kill), polls the
// YAML at YAML_PATH every 5 ms until READY(meta) holds, then kills the
// process with SIGKILL. Returns whether it was still running when killed;
// false when it ended first (its exit code in *code) or when READY never
// held within 60 s (an error names that).
Result<bool> run_and_kill_when(const std::string& command, const std::string& yaml_path,
                               const std::function<bool(const ImageMetadata&)>& ready, int* code);

}  // namespace ch::test
