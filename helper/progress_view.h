// Renders a Progress while long work (convert, checksum) runs: on a terminal
// one updating line with percent, bytes and rate; otherwise (logs, CI) one
// plain line every 10 s; nothing when disabled (--no-progress, --output json).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "base/progress.h"

namespace ch {

enum class ProgressMode { kOff, kTerminal, kPlain };

// kTerminal when stderr is a tty, kPlain otherwise; kOff when !enabled.
ProgressMode progress_mode(bool enabled);

// "1.5 GiB", "512 B"
std::string human_bytes(uint64_t bytes);

class ProgressView {
 public:
  // Starts polling P on a thread (not in kOff mode). P must outlive this.
  // LABEL is ours, not P's: the worker may call P.start() (which rewrites
  // its label) while this thread polls.
  ProgressView(const Progress& p, ProgressMode mode, std::string label);
  ~ProgressView();  // stops the thread and clears the terminal line
  ProgressView(const ProgressView&) = delete;
  ProgressView& operator=(const ProgressView&) = delete;

 private:
  void run();
  std::string render(double seconds) const;

  const Progress& progress_;
  std::string label_;
  ProgressMode mode_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ch
