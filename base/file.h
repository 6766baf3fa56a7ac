// RAII file descriptor with whole-range pread/pwrite and error messages that
// name the file. Offsets and sizes are uint64_t: images exceed 4 GiB.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"

namespace ch {

class File {
 public:
  File() = default;
  File(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  File(File&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  File& operator=(File&& o) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  // Opens an existing regular file for reading. Directories, missing and
  // unreadable files are errors naming the path.
  static Result<File> open_read(const std::string& path);
  // Creates (truncating) a file for writing with mode 0644.
  static Result<File> create(const std::string& path);

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  bool valid() const { return fd_ >= 0; }
  Result<uint64_t> size() const;

  // Reads exactly len bytes at offset; a short read is an error
  // ("PATH: unexpected end of file at offset N"). Thread-safe.
  Status pread_full(uint64_t offset, void* buf, size_t len) const;
  // Reads up to len bytes; returns the count (0 at EOF).
  Result<size_t> pread_some(uint64_t offset, void* buf, size_t len) const;
  Status pwrite_full(uint64_t offset, const void* buf, size_t len) const;
  Status truncate(uint64_t size) const;
  Status sync() const;
  void close();

 private:
  int fd_ = -1;
  std::string path_;
};

// "PATH: strerror(errno)"
Error errno_error(const std::string& what);

// The last component of PATH ("a/b/disk.raw" -> "disk.raw"; PATH without a
// slash is returned as is).
inline std::string base_name(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Whether PATH is (or links to) a regular file; its size in *SIZE when given.
bool regular_file(const std::string& path, uint64_t* size = nullptr);

// The directory part of PATH ("a/b/disk.raw" -> "a/b", "disk.raw" -> ".",
// "/disk.raw" -> "/").
std::string dir_of(const std::string& path);
// fsync of directory DIR: makes a rename or a new entry in it durable.
Status fsync_dir(const std::string& dir);

}  // namespace ch
