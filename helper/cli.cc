// The command line (contract.md "Invocation", "Exit status"):
//
//   cloud_helper [GLOBAL OPTIONS] ACTION [ACTION OPTIONS] IMAGE.yaml...
//
// Global options are accepted before or after the action. A run over YAML
// files has two phases: first every file is loaded and validated and every
// problem is reported (any problem: exit 2, nothing changed); then, file by
// file, the lock is taken, the file re-loaded, the action run, and the file
// saved. Output: errors and notices on stderr, results on stdout (text, or
// one JSON object per image with --output json).
#include "helper/cli.h"

#include <sys/stat.h>

#include <cxxopts.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "formats/checksum.h"
#include "formats/formats.h"
#include "helper/action_impl.h"
#include "helper/actions.h"
#include "helper/output.h"
#include "helper/progress_view.h"
#include "metadata/image_metadata.h"

namespace ch {

namespace {

using json = nlohmann::ordered_json;

struct Globals {
  RunOptions run;
  bool progress = true;
};

// ---- help ------------------------------------------------------------------

std::string general_help() {
  std::string s =
      "usage: cloud_helper [GLOBAL OPTIONS] ACTION [ACTION OPTIONS] IMAGE.yaml...\n"
      "       cloud_helper convert -i SRC [-f SRC_FORMAT] -o DST -O FORMAT\n"
      "       cloud_helper checksum -i FILE [-a sha256,sha512,md5]\n"
      "\n"
      "Actions (each records its result in the per-image YAML):\n";
  for (const Action& a : action_table()) {
    std::string name(a.name);
    name.resize(10, ' ');
    s += "  " + name + std::string(a.summary) + "\n";
  }
  s +=
      "\n"
      "Global options (before or after the action):\n"
      "  --dry-run               print what would be done, change nothing\n"
      "  --log-level LEVEL       error, warn, info (default) or debug\n"
      "  --no-progress           no progress display\n"
      "  --output text|json      json: one JSON object per image on stdout\n"
      "  --force                 redo a step that is already recorded\n"
      "  --version               print the version\n"
      "  -h, --help              this help; ACTION --help for one action\n"
      "\n"
      "Exit status: 0 done (or already done), 1 the action failed, 2 bad invocation\n"
      "or input (nothing changed), 3 partial (some targets failed).\n";
  return s;
}

cxxopts::Options make_options(const Action& action) {
  cxxopts::Options o("cloud_helper " + std::string(action.name), std::string(action.summary));
  o.custom_help("[GLOBAL OPTIONS]");
  o.positional_help("IMAGE.yaml...");
  o.add_options("Global")
      ("dry-run", "print what would be done, change nothing")
      ("log-level", "error, warn, info or debug", cxxopts::value<std::string>()->default_value("info"), "LEVEL")
      ("no-progress", "no progress display")
      ("output", "text or json (one JSON object per image)", cxxopts::value<std::string>()->default_value("text"), "FORMAT")
      ("force", "redo a step that is already recorded")
      ("version", "print the version")
      ("h,help", "this help");
  if (action.name == "convert") {
    o.add_options("Standalone form (no YAML)")
        ("i,input", "source image", cxxopts::value<std::string>(), "SRC")
        ("f,input-format", "source format (raw, qcow2, vhd, vmdk); probed when omitted", cxxopts::value<std::string>(), "SRC_FORMAT")
        ("o,out", "destination file", cxxopts::value<std::string>(), "DST")
        ("O,format", "output format: " + output_format_names(), cxxopts::value<std::string>(), "FORMAT");
  } else if (action.name == "checksum") {
    o.add_options("Standalone form (no YAML)")
        ("i,input", "file to digest", cxxopts::value<std::string>(), "FILE")
        ("a,algorithms", "comma-separated: " + checksum_algorithm_names() + " (default sha256,sha512)", cxxopts::value<std::string>(), "LIST");
  }
  o.add_options()("images", "per-image YAML files", cxxopts::value<std::vector<std::string>>());
  o.parse_positional({"images"});
  return o;
}

// ---- finding the action --------------------------------------------------------

bool is_global_flag(const std::string& a) {
  return a == "--dry-run" || a == "--no-progress" || a == "--force" || a == "--version" ||
         a == "--help" || a == "-h";
}
bool is_global_with_value(const std::string& a) { return a == "--log-level" || a == "--output"; }
bool is_global_with_inline_value(const std::string& a) {
  return a.rfind("--log-level=", 0) == 0 || a.rfind("--output=", 0) == 0;
}

// ---- running ---------------------------------------------------------------------

void emit_json(json obj) { print_out(obj.dump() + "\n"); }

std::string change_summary(const json& changes) {
  std::string s;
  for (const auto& [k, v] : changes.items()) {
    s += s.empty() ? " (" : ", ";
    s += k + " " + (v.is_string() ? v.get<std::string>() : v.dump());
  }
  return s.empty() ? s : s + ")";
}

// "PATH: cause" from ImageMetadata::load becomes "PATH: ACTION: cause".
std::string load_problem(const std::string& path, std::string_view action, const std::string& msg) {
  std::string prefix = path + ": ";
  std::string cause = msg.rfind(prefix, 0) == 0 ? msg.substr(prefix.size()) : msg;
  return path + ": " + std::string(action) + ": " + cause;
}

std::vector<std::string> validate_file(const Action& action, const std::string& path,
                                       const RunOptions& opts, std::optional<ImageMetadata>* out) {
  std::vector<std::string> problems;
  auto meta = ImageMetadata::load(path);
  if (!meta.ok()) {
    problems.push_back(load_problem(path, action.name, meta.message()));
    return problems;
  }
  validate_common(*meta, action.name, problems);
  action.validate(*meta, opts, problems);
  if (out) out->emplace(std::move(*meta));
  return problems;
}

struct FileOutcome {
  ActionResult result;
  json changes = json::object();
};

FileOutcome run_file(const Action& action, const std::string& path, const RunOptions& opts) {
  FileOutcome fo;
  // A dry run and `state` change nothing, not even by creating the lock file.
  std::optional<MetadataLock> lock;
  bool writes = action.writes && !opts.dry_run;
  if (writes) {
    auto l = MetadataLock::acquire(path);
    if (!l.ok()) {
      fo.result = failed(load_problem(path, action.name, l.message()));
      return fo;
    }
    lock.emplace(std::move(*l));
  }
  // Re-load under the lock: another run may have finished a step meanwhile.
  std::optional<ImageMetadata> meta;
  std::vector<std::string> problems = validate_file(action, path, opts, &meta);
  if (!problems.empty()) {
    fo.result = failed(problems[0], true);
    return fo;
  }
  ImageMetadata before = *meta;
  fo.result = action.run(*meta, opts);
  fo.changes = metadata_changes(before, *meta);
  // A failed step still saves what it recorded before failing; a step that
  // checkpointed an entry and then removed it again must write that too.
  if (writes && (!fo.changes.empty() || meta->saves() != before.saves())) {
    Status s = meta->save();
    if (!s.ok()) {
      fo.result.outcome = Outcome::kFailed;
      fo.result.error = path + ": " + std::string(action.name) + ": saving: " + s.message();
      fo.changes = json::object();
    }
  }
  return fo;
}

int run_yaml_action(const Action& action, const std::vector<std::string>& files,
                    const RunOptions& opts) {
  // Phase 1: every problem of every file, before anything changes.
  std::vector<std::vector<std::string>> problems;
  bool any_problem = false;
  for (const std::string& f : files) {
    problems.push_back(validate_file(action, f, opts, nullptr));
    any_problem |= !problems.back().empty();
  }
  if (any_problem) {
    for (size_t i = 0; i < files.size(); ++i) {
      for (const std::string& p : problems[i]) log_error(p);
      if (!opts.json) continue;
      bool ok = problems[i].empty();
      json obj = {{"image", files[i]},
                  {"action", action.name},
                  {"status", ok ? "skipped" : "failed"},
                  {"changes", json::object()},
                  {"error", ok ? json(nullptr) : json(problems[i][0])}};
      if (ok) {
        obj["notice"] = "not run: another image is invalid";
      } else {
        obj["errors"] = problems[i];
      }
      emit_json(obj);
    }
    return kExitBadInput;
  }

  // Phase 2.
  bool failed = false, failed_other_than_input = false, partial = false;
  for (const std::string& f : files) {
    FileOutcome fo = run_file(action, f, opts);
    const ActionResult& r = fo.result;
    if (r.outcome == Outcome::kFailed) {
      failed = true;
      failed_other_than_input |= !r.bad_input;
      log_error(r.error);
    }
    if (r.outcome == Outcome::kPartial) {
      partial = true;
      if (!r.error.empty()) log_error(r.error);
    }
    if (!r.notice.empty()) log_info(r.notice);
    if (opts.json) {
      json obj = {{"image", f},
                  {"action", action.name},
                  {"status", outcome_name(r.outcome)},
                  {"changes", fo.changes},
                  {"error", r.error.empty() ? json(nullptr) : json(r.error)}};
      if (!r.notice.empty()) obj["notice"] = r.notice;
      for (const auto& [k, v] : r.extra.items()) obj[k] = v;
      emit_json(obj);
    } else {
      for (const std::string& line : r.text) print_out(line + "\n");
      if (r.outcome == Outcome::kDone && action.writes)
        print_out(f + ": " + std::string(action.name) + ": done" + change_summary(fo.changes) + "\n");
    }
  }
  if (failed) return failed_other_than_input ? kExitFailed : kExitBadInput;
  if (partial) return kExitPartial;
  return kExitOk;
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

std::string input_format_names() {
  std::string s;
  for (const InputFormat& f : input_formats()) s += (s.empty() ? "" : ", ") + std::string(f.name);
  return s;
}

int standalone_convert(const cxxopts::ParseResult& args, const Globals& g) {
  if (!args.count("input") || !args.count("out") || !args.count("format")) {
    log_error("convert: the standalone form needs -i SRC, -o DST and -O FORMAT");
    return kExitBadInput;
  }
  std::string src = args["input"].as<std::string>();
  std::string dst = args["out"].as<std::string>();
  std::string format = args["format"].as<std::string>();
  std::string src_format = args.count("input-format") ? args["input-format"].as<std::string>() : "";
  if (!find_output_format(format)) {
    log_error("convert: unknown output format '" + format + "' (expected " + output_format_names() + ")");
    return kExitBadInput;
  }
  if (!src_format.empty() && !find_input_format(src_format)) {
    log_error("convert: unknown input format '" + src_format + "' (expected " + input_format_names() + ")");
    return kExitBadInput;
  }
  if (src == dst || same_file(src, dst)) {
    log_error("convert: output " + dst + " is the input file");
    return kExitBadInput;
  }
  auto reader = open_image(src, src_format);
  if (!reader.ok()) {
    log_error(reader.message());
    return kExitBadInput;
  }
  std::string detected((*reader)->format());
  reader = Error{""};  // close it before converting
  json obj = {{"image", src}, {"action", "convert"}, {"input_format", detected},
              {"output", dst}, {"format", format}};
  if (g.run.dry_run) {
    if (g.run.json) {
      obj["status"] = "skipped";
      obj["dry_run"] = true;
      emit_json(obj);
    } else {
      print_out("would convert " + src + " (" + detected + ") to " + dst + " (" + format + ")\n");
    }
    return kExitOk;
  }
  Progress progress;
  WriteOptions wo;
  wo.progress = &progress;
  wo.durable = false;  // like qemu-img convert; the YAML action syncs
  size_t slash = dst.rfind('/');
  wo.file_name = slash == std::string::npos ? dst : dst.substr(slash + 1);
  Result<ConvertResult> r = Error{""};
  {
    ProgressView view(progress, g.run.progress, "converting " + src);
    r = convert_file(src, detected, dst, format, wo);
  }
  if (!r.ok()) {
    log_error(r.message());
    if (g.run.json) {
      obj["status"] = "failed";
      obj["error"] = r.message();
      emit_json(obj);
    }
    return kExitFailed;
  }
  if (g.run.json) {
    obj["status"] = "done";
    obj["image_size"] = r->file_size;
    obj["virtual_size"] = r->virtual_size;
    emit_json(obj);
  }
  return kExitOk;
}

int standalone_checksum(const cxxopts::ParseResult& args, const Globals& g) {
  std::string file = args["input"].as<std::string>();
  std::vector<std::string> algos = {"sha256", "sha512"};
  if (args.count("algorithms")) {
    auto parsed = parse_checksum_algorithms(args["algorithms"].as<std::string>());
    if (!parsed.ok()) {
      log_error(parsed.message());
      return kExitBadInput;
    }
    algos = *parsed;
  }
  auto f = File::open_read(file);
  if (!f.ok()) {
    log_error(f.message());
    return kExitBadInput;
  }
  f->close();
  if (g.run.dry_run) {
    std::string list;
    for (const std::string& a : algos) list += (list.empty() ? "" : ",") + a;
    print_out("would compute " + list + " of " + file + "\n");
    return kExitOk;
  }
  Progress progress;
  Result<std::vector<Digest>> digests = Error{""};
  {
    ProgressView view(progress, g.run.progress, "checksumming " + file);
    digests = checksum_file(file, algos, &progress);
  }
  if (!digests.ok()) {
    log_error(digests.message());
    return kExitFailed;
  }
  if (g.run.json) {
    json sums = json::object();
    for (const Digest& d : *digests) sums[d.algorithm] = d.hex;
    emit_json({{"image", file}, {"action", "checksum"}, {"status", "done"}, {"checksums", sums}});
  } else {
    std::string out;
    for (const Digest& d : *digests) out += checksum_line(d.hex, file);
    print_out(out);
  }
  return kExitOk;
}

}  // namespace

int run_cli(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);

  // The action is the first word that is neither a global option nor its value.
  std::optional<size_t> action_at;
  bool want_help = false, want_version = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      if (i + 1 < args.size()) action_at = i + 1;
      break;
    }
    if (a.size() > 1 && a[0] == '-') {
      if (is_global_with_value(a)) {
        ++i;
      } else if (a == "--help" || a == "-h") {
        want_help = true;
      } else if (a == "--version") {
        want_version = true;
      } else if (!is_global_flag(a) && !is_global_with_inline_value(a)) {
        log_error("unknown option '" + a + "' (action options go after the action)");
        return kExitBadInput;
      }
      continue;
    }
    action_at = i;
    break;
  }
  if (!action_at) {
    if (want_version) {
      print_out("cloud_helper " CLOUD_HELPER_VERSION "\n");
      return kExitOk;
    }
    if (want_help) {
      print_out(general_help());
      return kExitOk;
    }
    log_error("no action given (expected " + action_names() + "); see cloud_helper --help");
    return kExitBadInput;
  }
  std::string action_name = args[*action_at];
  const Action* action = find_action(action_name);
  if (!action) {
    log_error("unknown action '" + action_name + "' (expected " + action_names() + ")");
    return kExitBadInput;
  }

  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i)
    if (i != *action_at && !(args[i] == "--" && i + 1 == *action_at)) rest.push_back(args[i]);
  std::vector<char*> cargv = {argv[0]};
  for (std::string& s : rest) cargv.push_back(s.data());

  cxxopts::Options options = make_options(*action);
  cxxopts::ParseResult parsed;
  try {
    parsed = options.parse(static_cast<int>(cargv.size()), cargv.data());
  } catch (const cxxopts::exceptions::exception& e) {
    log_error(action_name + ": " + e.what());
    return kExitBadInput;
  }
  if (parsed.count("help")) {
    print_out(options.help({"", "Global", "Standalone form (no YAML)"}));
    return kExitOk;
  }
  if (parsed.count("version")) {
    print_out("cloud_helper " CLOUD_HELPER_VERSION "\n");
    return kExitOk;
  }

  Globals g;
  LogLevel level;
  std::string level_name = parsed["log-level"].as<std::string>();
  if (!parse_log_level(level_name, &level)) {
    log_error("unknown log level '" + level_name + "' (expected error, warn, info, debug)");
    return kExitBadInput;
  }
  set_log_level(level);
  std::string output = parsed["output"].as<std::string>();
  if (output != "text" && output != "json") {
    log_error("unknown output '" + output + "' (expected text, json)");
    return kExitBadInput;
  }
  g.run.json = output == "json";
  g.run.dry_run = parsed.count("dry-run") > 0;
  g.run.force = parsed.count("force") > 0;
  g.run.progress = progress_mode(!parsed.count("no-progress") && !g.run.json);

  std::vector<std::string> files;
  if (parsed.count("images")) files = parsed["images"].as<std::vector<std::string>>();

  bool standalone = false;
  for (const char* opt : {"input", "input-format", "out", "format", "algorithms"})
    standalone |= parsed.count(opt) > 0;  // 0 for options this action lacks
  if (standalone) {
    if (!files.empty()) {
      log_error(action_name + ": give IMAGE.yaml files or the standalone options (-i ...), not both");
      return kExitBadInput;
    }
    if (action->name == "convert") return standalone_convert(parsed, g);
    if (!parsed.count("input")) {
      log_error("checksum: -a needs -i FILE (for IMAGE.yaml files set checksum_algorithms)");
      return kExitBadInput;
    }
    return standalone_checksum(parsed, g);
  }
  if (files.empty()) {
    std::string hint = action->name == "convert"    ? " (or -i SRC -o DST -O FORMAT)"
                       : action->name == "checksum" ? " (or -i FILE)"
                                                    : "";
    log_error(action_name + ": no IMAGE.yaml given" + hint);
    return kExitBadInput;
  }
  return run_yaml_action(*action, files, g.run);
}

}  // namespace ch
