#include "formats/sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>

namespace ch {

namespace {
constexpr size_t kFlushBytes = 4 << 20;  // pwrite in 4 MiB pieces
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

Status FileSink::flush() {
  if (buf_.empty()) return {};
  preallocate(buf_start_, buf_.size());
  Status s = file_.pwrite_full(buf_start_, buf_.data(), buf_.size());
  if (!s.ok()) return Error{"writing " + path_ + ": " + s.message()};
  buf_.clear();
  return {};
}

Status FileSink::write(const uint8_t* data, size_t len) {
  if (buf_.empty()) buf_start_ = pos_;
  if (buf_.size() + len > kFlushBytes) {
    CH_TRY(flush());
    buf_start_ = pos_;
    if (len >= kFlushBytes) {
      preallocate(pos_, len);
      Status s = file_.pwrite_full(pos_, data, len);
      if (!s.ok()) return Error{"writing " + path_ + ": " + s.message()};
      pos_ += len;
      return {};
    }
  }
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

}  // namespace ch
