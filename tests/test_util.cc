#include "tests/test_util.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "base/file.h"
#include "formats/checksum.h"

extern char** environ;

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

Result<bool> run_and_kill_when(const std::string& command, const std::string& yaml_path,
                               const std::function<bool(const ImageMetadata&)>& ready, int* code) {
  const char* argv[] = {"sh", "-c", command.c_str(), nullptr};
  pid_t pid;
  if (posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) != 0)
    return Error{"cannot start " + command};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int status = 0;
  bool ready_seen = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      return false;
    }
    std::ifstream in(yaml_path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto m = ImageMetadata::parse(text, yaml_path);
    if (m.ok() && ready(*m)) {
      ready_seen = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGKILL);  // sh exec'd the program: this is the program itself
  waitpid(pid, &status, 0);
  *code = -1;
  if (!ready_seen) return Error{"the YAML never got ready: " + command};
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

}  // namespace ch::test
