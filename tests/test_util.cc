#include "tests/test_util.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "base/file.h"
#include "formats/checksum.h"

namespace ch::test {

TempDir::TempDir() {
  char tmpl[] = "/tmp/cloud_helper_test_XXXXXX";
  CH_CHECK(mkdtemp(tmpl) != nullptr);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::file(const std::string& name) const { return path_ + "/" + name; }

CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = pclose(p);
  if (status != -1 && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  return r;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string digest_hex(std::string_view data, const std::string& algorithm) {
  auto d = checksum_bytes({reinterpret_cast<const uint8_t*>(data.data()), data.size()}, {algorithm});
  CH_CHECK(d.ok());
  return (*d)[0].hex;
}

namespace {

// splitmix64: a tiny, well-mixed function of one 64-bit word.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

uint8_t pattern_byte(uint64_t seed, uint64_t offset) {
  return static_cast<uint8_t>(mix(seed * 0x100000001b3ull ^ (offset / 8)) >> (8 * (offset % 8)));
}

Status make_sparse_file(const std::string& path, uint64_t size, const std::vector<DataRun>& runs,
                        uint64_t seed) {
  CH_ASSIGN(file, File::create(path));
  CH_TRY(file.truncate(size));
  std::vector<uint8_t> buf(1 << 20);
  for (const DataRun& run : runs) {
    uint64_t end = std::min(size, run.offset + run.length);
    for (uint64_t pos = run.offset; pos < end;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - pos));
      for (size_t i = 0; i < n; ++i) buf[i] = run.zeros ? 0 : pattern_byte(seed, pos + i);
      CH_TRY(file.pwrite_full(pos, buf.data(), n));
      pos += n;
    }
  }
  return {};
}

}  // namespace ch::test
