#include "tests/fuzz/fuzz_target.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "formats/image_reader.h"

namespace ch {

namespace {

// Work per input is bounded so that a hostile virtual size (terabytes of
// "data" described by a few bytes) costs no more than a sane one: libFuzzer
// wants thousands of inputs per second, and the corpus replay runs in CTest.
constexpr uint64_t kReadBudget = 4 << 20;  // guest bytes read per input
constexpr unsigned kMaxReads = 256;        // read() calls per input
constexpr size_t kChunk = 64 << 10;        // largest single read

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// A broken extent map is a bug in the reader, not an answer to bad input.
void check_extents(const ImageReader& r) {
  uint64_t pos = 0;
  const Extent* prev = nullptr;
  for (const Extent& e : r.extents()) {
    if (e.offset != pos || e.length == 0 || e.length > r.virtual_size() - pos) __builtin_trap();
    if (prev && prev->data == e.data) __builtin_trap();
    pos += e.length;
    prev = &e;
  }
  if (pos != r.virtual_size()) __builtin_trap();
}

void read_some(const ImageReader& r) {
  std::vector<uint8_t> buf(kChunk);
  uint64_t budget = kReadBudget;
  unsigned reads = 0;
  auto read = [&](uint64_t offset, uint64_t len) {
    len = std::min<uint64_t>({len, buf.size(), budget});
    if (len == 0 || reads == kMaxReads) return;
    ++reads;
    budget -= len;
    Status s = r.read(offset, buf.data(), static_cast<size_t>(len));  // errors are fine...
    if (!s.ok() && (s.message().empty() || s.message().find('\n') != std::string::npos)) {
      std::fprintf(stderr, "read error is not one clear line: '%s'\n", s.message().c_str());
      __builtin_trap();  // ...when they are one clear line
    }
  };
  // The first bytes, across whatever holes and data they hold.
  read(0, std::min<uint64_t>(r.virtual_size(), kChunk));
  // The head and the last sector of every data extent (end-of-table edges).
  for (const Extent& e : r.extents()) {
    if (!e.data) continue;
    if (budget == 0 || reads == kMaxReads) break;
    read(e.offset, e.length);
    uint64_t tail = std::min<uint64_t>(e.length, 512);
    read(e.offset + e.length - tail, tail);
  }
  // The very end of the disk, which may sit in a partial grain or block.
  uint64_t tail = std::min<uint64_t>(r.virtual_size(), 4096);
  read(r.virtual_size() - tail, tail);
}

}  // namespace

int fuzz_open_and_read(std::string_view format, const uint8_t* data, size_t size) {
  Fd memfd{memfd_create("fuzz-image", MFD_CLOEXEC)};
  if (memfd.fd < 0) __builtin_trap();  // out of fds: a leak somewhere
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(memfd.fd, data + done, size - done);
    if (n <= 0) __builtin_trap();
    done += static_cast<size_t>(n);
  }
  std::string path = "/proc/self/fd/" + std::to_string(memfd.fd);
  auto reader = open_image(path, format);
  if (!reader.ok()) {
    // A refusal is one line naming the file: "PATH: cause".
    const std::string& m = reader.message();
    if (m.rfind(path + ": ", 0) != 0 || m.size() == path.size() + 2) {
      std::fprintf(stderr, "refusal does not name the file and a cause: '%s'\n", m.c_str());
      __builtin_trap();
    }
    // Names taken from the file (backing/parent names) may carry newlines
    // and escapes into the message: worth a warning, not a stop.
    static bool warned = false;
    if (!warned && m.find('\n') != std::string::npos) {
      warned = true;
      std::fprintf(stderr, "warning: refusal spans lines: '%s'\n", m.c_str());
    }
    return 0;
  }
  const ImageReader& r = **reader;
  check_extents(r);
  read_some(r);
  return 1;
}

}  // namespace ch
