// Everything cloud_helper prints goes through here: log lines on stderr
// (filtered by level, secrets redacted), results on stdout (text or one JSON
// object per image), and the terminal progress line, which log lines clear
// and redraw so the two never interleave mid-line.
#pragma once

#include <string>
#include <string_view>

namespace ch {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

// "error" | "warn" | "info" | "debug"; false for anything else.
bool parse_log_level(std::string_view name, LogLevel* out);
void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);

// Adds a string that must never appear in any output (a token, a key, a
// password). Every line printed after this replaces it with "***".
void add_secret(std::string secret);
std::string redact(std::string_view text);

// Writes "cloud_helper: " + LINE + "\n" on stderr when LEVEL is enabled.
void log_line(LogLevel level, std::string_view line);
inline void log_error(std::string_view line) { log_line(LogLevel::kError, line); }
inline void log_info(std::string_view line) { log_line(LogLevel::kInfo, line); }
inline void log_debug(std::string_view line) { log_line(LogLevel::kDebug, line); }

// Writes TEXT (redacted, as given: add the newline yourself) on stdout.
void print_out(std::string_view text);

// The single updating terminal line (progress on a tty). Empty clears it.
void set_status_line(std::string_view line);

}  // namespace ch
