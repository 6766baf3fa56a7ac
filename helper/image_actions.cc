// convert and checksum: the actions that work on local image files.
//
// convert writes <dir of local_image>/<name><ext> in image_format (or the
// cloud's default) and records built, image_file, image_format, image_size
// and virtual_size. When that output path is local_image itself, it is
// recorded as is if it already has the wanted format, and refused otherwise
// (a conversion must never overwrite its own input).
//
// checksum digests image_file once for every algorithm asked (default
// sha256, sha512; md5 too for cloud azure), records `checksums` and writes IMAGE.ALGO sidecars in
// sha256sum format, so `sha256sum -c IMAGE.sha256` passes in the image's
// directory.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "base/file.h"
#include "formats/checksum.h"
#include "formats/formats.h"
#include "helper/action_impl.h"

namespace ch {

namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kDefaultChecksums = {"sha256", "sha512"};

std::string extension_of(std::string_view format) {
  if (format == "gce-tar") return ".tar.gz";
  return "." + std::string(format);
}

std::string dir_part(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

fs::path absolute_normal(const std::string& p) {
  std::error_code ec;
  std::string s = fs::absolute(p, ec).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// PATH relative to the YAML's directory when it lies inside it, else absolute.
std::string path_for_yaml(const ImageMetadata& meta, const std::string& path) {
  fs::path abs = absolute_normal(path);
  fs::path rel = abs.lexically_relative(absolute_normal(meta.dir()));
  if (!rel.empty() && *rel.begin() != ".." && rel != ".") return rel.string();
  return abs.string();
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

bool is_regular(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// ---- convert -----------------------------------------------------------------

// Recorded and still on disk: convert has nothing to do without --force.
bool convert_done(const ImageMetadata& meta) {
  auto built = meta.get_string("built");
  auto file = meta.get_string("image_file");
  return built && file && is_regular(meta.resolve(*file));
}

struct ConvertPlan {
  std::string src, dst, src_format, format;
  uint64_t src_virtual_size = 0;
  bool in_place = false;  // dst is src, already in `format`: record only
};

Result<ConvertPlan> plan_convert(const ImageMetadata& meta) {
  CH_TRY(require_keys(meta, {"name", "local_image"}, "convert"));
  ConvertPlan plan;
  plan.format = effective_image_format(meta);
  if (plan.format.empty()) {
    if (!meta.get_string("image_format") && !meta.get_string("cloud"))
      return Error{meta.path() + ": convert needs cloud or image_format (missing)"};
    return Error{""};  // an unknown value, reported by validate_common
  }
  std::string name = *meta.get_string("name");
  if (name == "." || name == ".." || name.find('/') != std::string::npos)
    return Error{problem(meta, "convert", "name '" + name + "' cannot be used as a file name")};
  plan.src = meta.resolve(*meta.get_string("local_image"));
  plan.dst = name + extension_of(plan.format);
  if (plan.src.find('/') != std::string::npos) plan.dst = dir_part(plan.src) + "/" + plan.dst;
  auto reader = open_image(plan.src);
  if (!reader.ok()) return Error{problem(meta, "convert", reader.message())};
  plan.src_format = std::string((*reader)->format());
  plan.src_virtual_size = (*reader)->virtual_size();
  if (same_file(plan.src, plan.dst)) {
    if (plan.src_format != plan.format) {
      return Error{problem(meta, "convert",
                           "output " + plan.dst + " is local_image itself, a " + plan.src_format +
                               " image, not " + plan.format +
                               "; rename local_image or set image_format")};
    }
    plan.in_place = true;
  }
  return plan;
}

}  // namespace

void validate_convert(const ImageMetadata& meta, const RunOptions& opts,
                      std::vector<std::string>& problems) {
  // A finished build may have had its local_image cleaned away; a skip needs
  // nothing of it.
  if (convert_done(meta) && !opts.force) return;
  auto plan = plan_convert(meta);
  if (!plan.ok() && !plan.message().empty()) problems.push_back(plan.message());
}

ActionResult run_convert(ImageMetadata& meta, const RunOptions& opts) {
  if (convert_done(meta) && !opts.force) {
    return skipped(meta.path() + ": convert already done (built " +
                   meta.get_string("built").value_or("") + "); use --force to redo");
  }
  auto planned = plan_convert(meta);
  if (!planned.ok()) return failed(planned.message(), true);
  const ConvertPlan& plan = *planned;

  if (opts.dry_run) {
    ActionResult r;
    r.outcome = Outcome::kSkipped;
    if (plan.in_place) {
      r.text.push_back(meta.path() + ": convert: would record " + plan.src + " (already " +
                       plan.format + ") as image_file");
    } else {
      r.text.push_back(meta.path() + ": convert: would convert " + plan.src + " (" +
                       plan.src_format + ") to " + plan.dst + " (" + plan.format + ")");
    }
    r.extra["dry_run"] = true;
    r.extra["would"] = {{"input", plan.src},   {"input_format", plan.src_format},
                        {"output", plan.dst},  {"format", plan.format},
                        {"in_place", plan.in_place}};
    return r;
  }

  uint64_t image_size = 0, virtual_size = 0;
  if (plan.in_place) {
    struct stat st;
    if (::stat(plan.src.c_str(), &st) != 0) return failed(problem(meta, "convert", plan.src + ": cannot stat"));
    image_size = static_cast<uint64_t>(st.st_size);
    virtual_size = plan.src_virtual_size;
  } else {
    Progress progress;
    WriteOptions wo;
    wo.progress = &progress;
    wo.file_name = base_name(plan.dst);
    Result<ConvertResult> converted = Error{""};
    {
      ProgressView view(progress, opts.progress, "converting " + plan.src);
      converted = convert_file(plan.src, plan.src_format, plan.dst, plan.format, wo);
    }
    if (!converted.ok()) return failed(problem(meta, "convert", converted.message()));
    image_size = converted->file_size;
    virtual_size = converted->virtual_size;
  }

  // A new build invalidates what described the old bytes.
  if (meta.has("checksums") || meta.has("signed")) {
    if (auto old = meta.get_string("image_file")) {
      for (std::string_view algo : {"sha256", "sha512", "md5"})
        ::unlink((meta.resolve(*old) + "." + std::string(algo)).c_str());
    }
    meta.remove("checksums");
    meta.remove("signed");
  }
  meta.set_timestamp("built", utc_now_iso8601());
  meta.set_string("image_file", path_for_yaml(meta, plan.dst));
  meta.set_string("image_format", plan.format);
  meta.set_uint("image_size", image_size);
  meta.set_uint("virtual_size", virtual_size);
  return ActionResult{};
}

// ---- checksum ----------------------------------------------------------------

namespace {

Result<std::vector<std::string>> requested_checksums(const ImageMetadata& meta) {
  std::vector<std::string> out;
  for (const std::string& item : meta.get_list("checksum_algorithms")) {
    CH_ASSIGN(names, parse_checksum_algorithms(item));
    for (const std::string& n : names)
      if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  }
  if (out.empty()) {
    out = kDefaultChecksums;
    // Azure keeps the whole file's MD5 as the blob's Content-MD5: computed
    // here in the same read, the upload need not hash the image again.
    if (meta.get_string("cloud").value_or("") == "azure") out.push_back("md5");
  }
  return out;
}

Status write_sidecar(const std::string& image, const std::string& algo, const std::string& hex) {
  std::string path = image + "." + algo;
  std::string line = checksum_line(hex, base_name(image));
  CH_ASSIGN(sink, FileSink::create(path));
  CH_TRY(sink->write(reinterpret_cast<const uint8_t*>(line.data()), line.size()));
  CH_TRY(sink->finish());
  return sink->commit();
}

}  // namespace

void validate_checksum(const ImageMetadata& meta, const RunOptions&,
                       std::vector<std::string>& problems) {
  auto file = meta.get_string("image_file");
  if (!file) {
    problems.push_back(meta.path() + ": checksum needs image_file (run convert first)");
    return;
  }
  auto algos = requested_checksums(meta);
  if (!algos.ok()) problems.push_back(problem(meta, "checksum", algos.message()));
  auto f = File::open_read(meta.resolve(*file));
  if (!f.ok()) problems.push_back(problem(meta, "checksum", f.message()));
}

ActionResult run_checksum(ImageMetadata& meta, const RunOptions& opts) {
  auto file = meta.get_string("image_file");
  auto algos = requested_checksums(meta);
  if (!file || !algos.ok()) {
    std::vector<std::string> problems;
    validate_checksum(meta, opts, problems);
    return failed(problems.empty() ? problem(meta, "checksum", "invalid input") : problems[0], true);
  }
  std::string image = meta.resolve(*file);
  const MetaValue* recorded = meta.get("checksums");
  std::vector<std::string> missing;
  for (const std::string& a : *algos) {
    const MetaValue* v = recorded ? recorded->find(a) : nullptr;
    if (!v || !v->is_scalar() || v->scalar().empty() || v->is_null()) missing.push_back(a);
  }
  if (missing.empty() && !opts.force) {
    std::string list;
    for (const std::string& a : *algos) list += (list.empty() ? "" : ", ") + a;
    return skipped(meta.path() + ": checksum already done (" + list + "); use --force to redo");
  }
  if (opts.dry_run) {
    ActionResult r;
    r.outcome = Outcome::kSkipped;
    std::string list;
    for (const std::string& a : *algos) list += (list.empty() ? "" : ",") + a;
    r.text.push_back(meta.path() + ": checksum: would compute " + list + " of " + image);
    r.extra["dry_run"] = true;
    r.extra["would"] = {{"input", image}, {"algorithms", *algos}};
    return r;
  }

  Progress progress;
  Result<std::vector<Digest>> digests = Error{""};
  {
    ProgressView view(progress, opts.progress, "checksumming " + image);
    digests = checksum_file(image, *algos, &progress);
  }
  if (!digests.ok()) return failed(problem(meta, "checksum", digests.message()));
  for (const Digest& d : *digests) {
    Status s = write_sidecar(image, d.algorithm, d.hex);
    if (!s.ok()) return failed(problem(meta, "checksum", s.message()));
  }
  MetaValue::Map map;
  if (recorded && recorded->is_map()) map = recorded->map();
  for (const Digest& d : *digests) {
    auto it = std::find_if(map.begin(), map.end(), [&](const auto& kv) { return kv.first == d.algorithm; });
    if (it != map.end())
      it->second = MetaValue(d.hex);
    else
      map.emplace_back(d.algorithm, MetaValue(d.hex));
  }
  meta.set("checksums", MetaValue(std::move(map)));
  return ActionResult{};
}

}  // namespace ch
