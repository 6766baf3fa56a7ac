#include "helper/output.h"

#include <cstdio>
#include <mutex>
#include <vector>

namespace ch {

namespace {

struct OutputState {
  std::mutex mu;
  LogLevel level = LogLevel::kInfo;
  std::vector<std::string> secrets;
  std::string status;  // what the terminal line currently shows
};

OutputState& state() {
  static OutputState s;
  return s;
}

std::string redact_locked(OutputState& s, std::string_view text) {
  std::string out(text);
  for (const std::string& secret : s.secrets) {
    if (secret.empty()) continue;
    for (size_t pos = out.find(secret); pos != std::string::npos;
         pos = out.find(secret, pos + 3)) {
      out.replace(pos, secret.size(), "***");
    }
  }
  return out;
}

// "\r\033[K": back to column 0, erase to the end of the line.
void clear_status_locked(OutputState& s) {
  if (!s.status.empty()) std::fputs("\r\033[K", stderr);
}

void draw_status_locked(OutputState& s) {
  if (!s.status.empty()) std::fputs(s.status.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace

bool parse_log_level(std::string_view name, LogLevel* out) {
  static const std::pair<std::string_view, LogLevel> kLevels[] = {
      {"error", LogLevel::kError}, {"warn", LogLevel::kWarn},
      {"info", LogLevel::kInfo},   {"debug", LogLevel::kDebug}};
  for (const auto& [n, l] : kLevels) {
    if (n == name) {
      *out = l;
      return true;
    }
  }
  return false;
}

void set_log_level(LogLevel level) {
  std::lock_guard<std::mutex> lk(state().mu);
  state().level = level;
}

bool log_enabled(LogLevel level) {
  std::lock_guard<std::mutex> lk(state().mu);
  return level <= state().level;
}

void add_secret(std::string secret) {
  std::lock_guard<std::mutex> lk(state().mu);
  state().secrets.push_back(std::move(secret));
}

std::string redact(std::string_view text) {
  std::lock_guard<std::mutex> lk(state().mu);
  return redact_locked(state(), text);
}

void log_line(LogLevel level, std::string_view line) {
  OutputState& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  if (level > s.level) return;
  std::string text = "cloud_helper: " + redact_locked(s, line) + "\n";
  clear_status_locked(s);
  std::fputs(text.c_str(), stderr);
  draw_status_locked(s);
}

void print_out(std::string_view text) {
  OutputState& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  std::string out = redact_locked(s, text);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

void set_status_line(std::string_view line) {
  OutputState& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  clear_status_locked(s);
  s.status = redact_locked(s, line);
  draw_status_locked(s);
}

}  // namespace ch
