// sign and release: run a user's command through /bin/sh and record the step
// only when it exits 0.
//
// Placeholders: {KEY} becomes the value of the top-level scalar field KEY,
// shell-quoted, so values with spaces or quotes stay one word; sign also has
// {file}, the image_file path. `${...}` is the shell's and is left alone, as
// is {WORD} when WORD is not a field of the YAML (awk '{print}'). A field
// that is a list or mapping cannot be substituted and is an input error.
//
// The command's stdout goes to our stderr: our stdout carries results only
// (one JSON object per image with --output json).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>

#include "base/file.h"
#include "helper/action_impl.h"
#include "helper/output.h"

extern char** environ;

namespace ch {

namespace {

bool is_identifier(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

// Expands CMD (the value of field CMD_KEY); EXTRA placeholders win over fields.
Result<std::string> expand_command(const ImageMetadata& meta, std::string_view action,
                                   std::string_view cmd_key, const std::string& cmd,
                                   const std::map<std::string, std::string>& extra) {
  std::string out;
  size_t i = 0;
  while (i < cmd.size()) {
    char c = cmd[i];
    size_t close = cmd.find('}', i);
    if (c != '{' || (i > 0 && cmd[i - 1] == '$') || close == std::string::npos) {
      out += c;
      ++i;
      continue;
    }
    std::string key = cmd.substr(i + 1, close - i - 1);
    auto ex = extra.find(key);
    const MetaValue* v = meta.get(key);
    if (ex != extra.end()) {
      out += shell_quote(ex->second);
    } else if (is_identifier(key) && v) {
      if (!v->is_scalar()) {
        return Error{problem(meta, action,
                             std::string(cmd_key) + " uses {" + key +
                                 "}, which is a list or mapping, not a single value")};
      }
      out += shell_quote(meta.get_string(key).value_or(""));
    } else {
      out += cmd.substr(i, close - i + 1);
    }
    i = close + 1;
  }
  return out;
}

// Runs CMD with /bin/sh -c; its stdout is redirected to our stderr.
// Returns "" on exit 0, else the cause ("exited with status 3").
std::string run_shell(const std::string& cmd) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, 2, 1);
  const char* argv[] = {"sh", "-c", cmd.c_str(), nullptr};
  pid_t pid;
  int rc = posix_spawn(&pid, "/bin/sh", &fa, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return std::string("cannot run /bin/sh: ") + std::strerror(rc);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return std::string("waiting for /bin/sh: ") + std::strerror(errno);
  }
  if (WIFEXITED(status)) {
    if (WEXITSTATUS(status) == 0) return "";
    return "exited with status " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "ended abnormally";
}

struct Hook {
  std::string_view action;
  std::string_view cmd_key;    // field holding the command
  std::string_view done_key;   // timestamp recorded on success
};

constexpr Hook kSign{"sign", "signing_cmd", "signed"};
constexpr Hook kRelease{"release", "release_cmd", "released"};

std::map<std::string, std::string> extras_for(const ImageMetadata& meta, const Hook& hook) {
  std::map<std::string, std::string> extra;
  if (hook.action == "sign")
    if (auto f = meta.get_string("image_file")) extra["file"] = meta.resolve(*f);
  return extra;
}

// The preconditions each hook has beyond its command.
void check_preconditions(const ImageMetadata& meta, const Hook& hook,
                         std::vector<std::string>& problems) {
  if (hook.action == "sign") {
    auto file = meta.get_string("image_file");
    if (!file) {
      problems.push_back(meta.path() + ": sign needs image_file (run convert first)");
      return;
    }
    auto f = File::open_read(meta.resolve(*file));
    if (!f.ok()) problems.push_back(problem(meta, "sign", f.message()));
  } else {
    if (!meta.get_string("published"))
      problems.push_back(meta.path() + ": release needs a published image (run publish first)");
  }
}

void validate_hook(const ImageMetadata& meta, const Hook& hook, std::vector<std::string>& problems) {
  size_t before = problems.size();
  check_preconditions(meta, hook, problems);
  Status s = require_keys(meta, {hook.cmd_key}, hook.action);
  if (!s.ok()) {
    problems.push_back(s.message());
    return;
  }
  if (problems.size() != before) return;
  const MetaValue* cmd = meta.get(hook.cmd_key);
  if (!cmd->is_scalar()) {
    problems.push_back(problem(meta, hook.action, std::string(hook.cmd_key) + " must be a string"));
    return;
  }
  auto expanded = expand_command(meta, hook.action, hook.cmd_key, cmd->scalar(), extras_for(meta, hook));
  if (!expanded.ok()) problems.push_back(expanded.message());
}

ActionResult run_hook(ImageMetadata& meta, const RunOptions& opts, const Hook& hook) {
  std::vector<std::string> problems;
  validate_hook(meta, hook, problems);
  if (!problems.empty()) return failed(problems[0], true);
  if (auto done = meta.get_string(hook.done_key); done && !opts.force) {
    return skipped(meta.path() + ": " + std::string(hook.action) + " already done (" +
                   std::string(hook.done_key) + " " + *done + "); use --force to redo");
  }
  std::string cmd = *expand_command(meta, hook.action, hook.cmd_key,
                                    meta.get(hook.cmd_key)->scalar(), extras_for(meta, hook));
  if (opts.dry_run) {
    ActionResult r;
    r.outcome = Outcome::kSkipped;
    r.text.push_back(meta.path() + ": " + std::string(hook.action) + ": would run: " + cmd);
    r.extra["dry_run"] = true;
    r.extra["would"] = {{"run", cmd}};
    return r;
  }
  log_debug(meta.path() + ": " + std::string(hook.action) + ": running: " + cmd);
  std::string cause = run_shell(cmd);
  if (!cause.empty())
    return failed(problem(meta, hook.action, std::string(hook.cmd_key) + " " + cause));
  meta.set_timestamp(hook.done_key, utc_now_iso8601());
  return ActionResult{};
}

}  // namespace

void validate_sign(const ImageMetadata& meta, const RunOptions&, std::vector<std::string>& problems) {
  validate_hook(meta, kSign, problems);
}
ActionResult run_sign(ImageMetadata& meta, const RunOptions& opts) { return run_hook(meta, opts, kSign); }

void validate_release(const ImageMetadata& meta, const RunOptions&,
                      std::vector<std::string>& problems) {
  validate_hook(meta, kRelease, problems);
}
ActionResult run_release(ImageMetadata& meta, const RunOptions& opts) {
  return run_hook(meta, opts, kRelease);
}

}  // namespace ch
