// cloud: azure, rollback — deletes what import and upload made for an image
// that was never published, in dependency order: the gallery image versions,
// then the managed images, then the image definitions this image created
// (only when no other version is left in them), then the blob. Each
// deletion is idempotent and recorded as it happens, so a rollback that
// fails half-way can be re-run. Resource groups, storage accounts and
// galleries are never deleted: other images may live in them.
#include <string>
#include <vector>

#include "clouds/azure/azure_session.h"
#include "clouds/azure/azure_steps.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

std::string parent_of_version(const std::string& version_id) {
  size_t at = version_id.rfind("/versions/");
  return at == std::string::npos ? "" : version_id.substr(0, at);
}

}  // namespace

CloudStepResult azure_rollback(ImageMetadata& meta, const CloudStepOptions& opts) {
  if (opts.validate_only) return {};
  std::vector<std::pair<std::string, std::string>> versions, images, definitions;  // key suffix, value
  for (const auto& [k, v] : op_entries(meta, "import")) {
    if (starts_with(k, "version/")) versions.emplace_back(k.substr(8), v);
    else if (starts_with(k, "image/")) images.emplace_back(k.substr(6), v);
    else if (starts_with(k, "definition/") && v == "created") definitions.emplace_back(k.substr(11), "");
  }
  for (auto& [name, id] : definitions) {
    for (const auto& [def, vid] : versions)
      if (def == name) id = parent_of_version(vid);
    if (id.empty()) {
      auto cfg = read_azure_config(meta, AzureEnv::from_process().get("AZURE_SUBSCRIPTION_ID"));
      if (cfg.ok()) id = azure_definition_id(*cfg, name);
    }
  }
  std::string blob_url = op_get(meta, "upload", "url").value_or("");

  if (opts.dry_run) {
    CloudStepResult r;
    for (const auto& v : versions) r.lines.push_back("would DELETE gallery image version " + v.second);
    for (const auto& i : images) r.lines.push_back("would DELETE managed image " + i.second);
    for (const auto& d : definitions)
      r.lines.push_back("would DELETE image definition " + (d.second.empty() ? d.first : d.second) + " if no version is left in it");
    if (!blob_url.empty()) r.lines.push_back("would Delete Blob " + blob_url);
    return r;
  }
  bool need_arm = !versions.empty() || !images.empty() || !definitions.empty();
  CH_STEP_ASSIGN(session, open_azure_session(need_arm));
  CloudStepResult r;
  for (const auto& [def, id] : versions) {
    CH_STEP_TRY(session->arm->del(id, kArmApiGallery));
    r.lines.push_back("deleted gallery image version " + id);
    op_remove(meta, "import", "version/" + def);
    meta.remove("artifacts");
    CH_STEP_TRY(opts.checkpoint());
  }
  for (const auto& [name, id] : images) {
    CH_STEP_TRY(session->arm->del(id, kArmApiCompute));
    r.lines.push_back("deleted managed image " + id);
    op_remove(meta, "import", "image/" + name);
    CH_STEP_TRY(opts.checkpoint());
  }
  for (const auto& [name, id] : definitions) {
    if (id.empty()) {
      r.lines.push_back("left image definition " + name + " (its id is unknown: no azure config)");
      continue;
    }
    CH_STEP_ASSIGN(left, session->arm->list(id + "/versions", kArmApiGallery));
    if (!left.empty()) {
      r.lines.push_back("kept image definition " + name + ": it holds " + std::to_string(left.size()) + " other version(s)");
    } else {
      CH_STEP_TRY(session->arm->del(id, kArmApiGallery));
      r.lines.push_back("deleted image definition " + id);
    }
    op_remove(meta, "import", "definition/" + name);
    CH_STEP_TRY(opts.checkpoint());
  }
  meta.remove("imported");
  meta.remove("import_id");
  meta.remove("import_region");
  op_remove_section(meta, "import");
  CH_STEP_TRY(opts.checkpoint());

  if (!blob_url.empty()) {
    auto blob = parse_blob_url(blob_url, session->env, session->cloud);
    if (!blob.ok()) return CloudStepResult::failure(blob.error());
    CH_STEP_ASSIGN(client, open_blob_client(*session, *blob));
    CH_STEP_TRY(client->delete_blob(*blob));
    r.lines.push_back("deleted blob " + blob_url);
  }
  return rollback_forget_upload(meta, opts, std::move(r));
}

}  // namespace ch
