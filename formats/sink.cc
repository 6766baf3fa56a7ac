#include "formats/sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>

namespace ch {

namespace {
constexpr size_t kFlushBytes = 4 << 20;  // small writes are coalesced up to this
// Writes this large go out as they are: staging them in the buffer would
// cost a memcpy per byte and save no syscall.
constexpr size_t kDirectBytes = 256 << 10;
// Largest single pwrite. The kernel sizes page-cache folios by the write:
// a 4 MiB pwrite gets 2 MiB folios, which come from the high-order free
// blocks that a VM with free page reporting (virtio-balloon) has handed
// back to its host, so each first touch costs a host fault. On the 2-vCPU
// Firecracker guest of bench/ (kernel 6.18, ext4), 2 GB of page-cache
// writes took 1.3-3.7 s in 4 MiB pwrites and mostly 0.25-0.45 s in 1 MiB
// ones. 1 MiB pieces still get 1 MiB folios, and one syscall per MiB is
// noise.
constexpr size_t kPwriteBytes = 1 << 20;
}  // namespace

Status Sink::patch(uint64_t, const uint8_t*, size_t) {
  CH_CHECK(!"patch() on a sink that cannot go back");
  return {};
}

FileSink::FileSink(File f, std::string path, std::string tmp)
    : file_(std::move(f)), path_(std::move(path)), tmp_(std::move(tmp)) {
  buf_.reserve(kFlushBytes);
}

Result<std::unique_ptr<FileSink>> FileSink::create(const std::string& path) {
  std::string tmp = path + ".partial-" + std::to_string(getpid());
  CH_ASSIGN(f, File::create(tmp));
  return std::unique_ptr<FileSink>(new FileSink(std::move(f), path, tmp));
}

FileSink::~FileSink() {
  if (!committed_) {
    file_.close();
    ::unlink(tmp_.c_str());
  }
}

// Allocating the blocks of a range just before writing it makes ext4 take
// its unwritten-extent path instead of delayed allocation page by page: a
// buffered write of cached data measured 0.2-0.5 s instead of 0.7-0.9 s per
// 1.2 GB here. Holes are never preallocated, so output stays sparse. A
// filesystem without fallocate simply skips the hint.
void FileSink::preallocate(uint64_t offset, uint64_t len) {
  if (prealloc_unsupported_ || len == 0) return;
  if (::fallocate(file_.fd(), FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset), static_cast<off_t>(len)) != 0)
    prealloc_unsupported_ = true;
}

Status FileSink::write_out(uint64_t offset, const uint8_t* data, size_t len) {
  preallocate(offset, len);
  for (size_t done = 0; done < len;) {
    size_t n = std::min(kPwriteBytes, len - done);
    Status s = file_.pwrite_full(offset + done, data + done, n);
    if (!s.ok()) return Error{"writing " + path_ + ": " + s.message()};
    done += n;
  }
  return {};
}

Status FileSink::flush() {
  if (buf_.empty()) return {};
  CH_TRY(write_out(buf_start_, buf_.data(), buf_.size()));
  buf_.clear();
  return {};
}

Status FileSink::write(const uint8_t* data, size_t len) {
  if (len >= kDirectBytes) {
    CH_TRY(flush());
    CH_TRY(write_out(pos_, data, len));
    pos_ += len;
    return {};
  }
  if (buf_.size() + len > kFlushBytes) CH_TRY(flush());
  if (buf_.empty()) buf_start_ = pos_;
  buf_.insert(buf_.end(), data, data + len);
  pos_ += len;
  return {};
}

Status FileSink::write_zeros(uint64_t len) {
  if (len == 0) return {};
  // Small zero runs inside data are cheaper as bytes than as a hole.
  if (len < 4096) {
    static const uint8_t zeros[4096] = {};
    return write(zeros, static_cast<size_t>(len));
  }
  CH_TRY(flush());
  pos_ += len;
  return {};
}

Status FileSink::patch(uint64_t offset, const uint8_t* data, size_t len) {
  CH_CHECK(offset <= pos_ && len <= pos_ - offset);
  CH_TRY(flush());  // the range may still sit in the buffer
  Status s = file_.pwrite_full(offset, data, len);
  if (!s.ok()) return Error{"writing " + path_ + ": " + s.message()};
  return {};
}

Status FileSink::finish() {
  CH_TRY(flush());
  // A trailing hole needs the size set explicitly.
  CH_TRY(file_.truncate(pos_));
  return {};
}

Status FileSink::commit(bool durable) {
  if (durable) CH_TRY(file_.sync());
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) return errno_error("renaming " + tmp_ + " to " + path_);
  committed_ = true;
  file_.close();
  return {};
}

Status MemorySink::write(const uint8_t* data, size_t len) {
  bytes_.insert(bytes_.end(), data, data + len);
  pos_ += len;
  return {};
}

Status MemorySink::write_zeros(uint64_t len) {
  bytes_.resize(bytes_.size() + len, 0);
  pos_ += len;
  return {};
}

Status MemorySink::patch(uint64_t offset, const uint8_t* data, size_t len) {
  CH_CHECK(offset <= pos_ && len <= pos_ - offset);
  std::copy(data, data + len, bytes_.begin() + static_cast<std::ptrdiff_t>(offset));
  return {};
}

}  // namespace ch
