#include "helper/progress_view.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "helper/output.h"

namespace ch {

namespace {
// A terminal line redraws often enough to look live; a log file gets a line
// every 10 s so a CI log shows the job is alive without drowning in lines.
constexpr auto kTerminalInterval = std::chrono::milliseconds(250);
constexpr auto kPlainInterval = std::chrono::seconds(10);
}  // namespace

ProgressMode progress_mode(bool enabled) {
  if (!enabled) return ProgressMode::kOff;
  return isatty(2) ? ProgressMode::kTerminal : ProgressMode::kPlain;
}

std::string human_bytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

ProgressView::ProgressView(const Progress& p, ProgressMode mode, std::string label)
    : progress_(p), label_(std::move(label)), mode_(mode) {
  if (mode_ != ProgressMode::kOff) thread_ = std::thread([this] { run(); });
}

ProgressView::~ProgressView() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (mode_ == ProgressMode::kTerminal) set_status_line("");
}

std::string ProgressView::render(double seconds) const {
  uint64_t done = progress_.done(), total = progress_.total();
  std::string line = label_ + ": ";
  if (total > 0) {
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3.0f%% ", 100.0 * static_cast<double>(done) / total);
    line += pct;
  }
  line += human_bytes(done);
  if (total > 0) line += " / " + human_bytes(total);
  if (seconds > 0.5)
    line += ", " + human_bytes(static_cast<uint64_t>(static_cast<double>(done) / seconds)) + "/s";
  return line;
}

void ProgressView::run() {
  auto start = std::chrono::steady_clock::now();
  auto interval = mode_ == ProgressMode::kTerminal
                      ? std::chrono::duration_cast<std::chrono::milliseconds>(kTerminalInterval)
                      : std::chrono::duration_cast<std::chrono::milliseconds>(kPlainInterval);
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    if (cv_.wait_for(lk, interval, [&] { return stop_; })) return;
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string line = render(secs);
    if (mode_ == ProgressMode::kTerminal)
      set_status_line(line);
    else
      log_info(line);
  }
}

}  // namespace ch
