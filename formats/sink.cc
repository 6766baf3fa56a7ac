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

Status FileSink::flush() {
  if (buf_.empty()) return {};
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

Result<bool> FileSink::copy_from(const File& src, uint64_t src_offset, uint64_t len) {
  if (copy_unsupported_) return false;
  CH_TRY(flush());
  uint64_t done = 0;
  while (done < len) {
    loff_t in_off = static_cast<loff_t>(src_offset + done);
    loff_t out_off = static_cast<loff_t>(pos_);
    ssize_t n = ::copy_file_range(src.fd(), &in_off, file_.fd(), &out_off,
                                  static_cast<size_t>(std::min<uint64_t>(len - done, 1u << 30)), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // Cross-filesystem, unsupported filesystem, or a special file: fall
      // back to read/write, but only if nothing was copied in this call.
      if (done == 0 && (n == 0 || errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                        errno == EOPNOTSUPP || errno == EBADF)) {
        copy_unsupported_ = true;
        return false;
      }
      if (n == 0) return Error{src.path() + ": unexpected end of file at offset " + std::to_string(src_offset + done)};
      return errno_error("copying " + src.path() + " to " + path_);
    }
    done += static_cast<uint64_t>(n);
    pos_ += static_cast<uint64_t>(n);
  }
  return true;
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
