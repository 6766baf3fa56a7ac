// Byte sinks: the output side of a conversion. Writers make one forward pass
// (write / write_zeros in file order), so the same writer can target a file
// or, later, an upload stream. Hashing and progress are decorators.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/result.h"

namespace ch {

class Sink {
 public:
  virtual ~Sink() = default;
  virtual Status write(const uint8_t* data, size_t len) = 0;
  // Appends len zero bytes. A file sink leaves a hole (sparse output).
  virtual Status write_zeros(uint64_t len) = 0;
  // Everything written; flush. No writes after.
  virtual Status finish() = 0;
  uint64_t position() const { return pos_; }

  // Going back: overwrites [offset, offset + len), which lies below
  // position(), for writers that learn their header only after the data
  // (qcow2 places data clusters as it finds them in one read). A stream (an
  // upload, a running hash) cannot go back; such sinks say no here and those
  // writers fall back to planning first and making one forward pass.
  virtual bool can_patch() const { return false; }
  // Only when can_patch(); otherwise a bug (aborts).
  virtual Status patch(uint64_t offset, const uint8_t* data, size_t len);

 protected:
  uint64_t pos_ = 0;
};

// Writes DST through a temporary file beside it ("DST.partial-PID"), so that
// a failed or interrupted conversion never leaves a half-written DST and
// never clobbers an existing one. commit() fsyncs and renames; destroying an
// uncommitted sink removes the temporary.
class FileSink : public Sink {
 public:
  static Result<std::unique_ptr<FileSink>> create(const std::string& path);
  ~FileSink() override;
  Status write(const uint8_t* data, size_t len) override;
  Status write_zeros(uint64_t len) override;
  Status finish() override;
  bool can_patch() const override { return true; }
  Status patch(uint64_t offset, const uint8_t* data, size_t len) override;
  // After finish(): make DST appear atomically. `durable` fsyncs the data
  // first, so a crash can never leave DST renamed but empty; the YAML
  // actions want that before recording `built`.
  Status commit(bool durable = true);
  const std::string& path() const { return path_; }

 private:
  FileSink(File f, std::string path, std::string tmp);
  Status flush();
  // pwrite of [offset, offset + len), preallocated, in pieces.
  Status write_out(uint64_t offset, const uint8_t* data, size_t len);
  void preallocate(uint64_t offset, uint64_t len);
  File file_;
  std::string path_, tmp_;
  std::vector<uint8_t> buf_;  // coalesces small writes into large pwrites
  uint64_t buf_start_ = 0;
  bool committed_ = false;
  bool prealloc_unsupported_ = false;
};

// Collects everything in memory (tests, small headers).
class MemorySink : public Sink {
 public:
  Status write(const uint8_t* data, size_t len) override;
  Status write_zeros(uint64_t len) override;
  Status finish() override { return {}; }
  bool can_patch() const override { return true; }
  Status patch(uint64_t offset, const uint8_t* data, size_t len) override;
  std::vector<uint8_t>& bytes() { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace ch
