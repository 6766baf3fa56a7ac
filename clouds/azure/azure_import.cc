// cloud: azure, import — the uploaded VHD blob into a Compute Gallery.
//
// Order: resource group, gallery (each checked, created only when
// azure.create says so, never modified), then per Hyper-V generation the
// image definition (created when absent; an existing one is compared and
// never changed), an optional managed image, and the gallery image version.
// operations.import records, before each PUT, what this image asked for:
//   created/resource_group, created/gallery, definition/NAME: created|existing,
//   image/NAME: managed image id, version/DEFINITION: version id
// so that a re-run adopts what a killed run started (waiting for it), and
// rollback deletes only what this image made.
#include <mutex>

#include "base/parallel.h"
#include "clouds/azure/azure_config.h"
#include "clouds/azure/azure_gallery.h"
#include "clouds/azure/azure_session.h"
#include "clouds/azure/azure_steps.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

namespace {

using json = nlohmann::json;

std::string upload_blob_url(const ImageMetadata& meta) {
  if (auto u = op_get(meta, "upload", "blob_url")) return *u;
  return meta.get_string("upload_url").value_or("");
}

// Ensures the resource group and gallery exist (creating them only when asked).
Status ensure_containers(ArmClient& arm, const AzureConfig& c, ImageMetadata& meta,
                         const CloudStepOptions& opts) {
  CH_ASSIGN(rg, arm.get(azure_rg_id(c), kArmApiResources));
  if (!rg) {
    if (!c.create_resource_group)
      return Error{"resource group " + c.resource_group + " does not exist in subscription " + c.subscription_id +
                   " (create it, or set azure.create: [resource_group])"};
    op_set(meta, "import", "created/resource_group", c.resource_group);
    CH_TRY(opts.checkpoint());
    log_info("azure: creating resource group " + c.resource_group + " in " + c.location);
    CH_ASSIGN(made, arm.put(azure_rg_id(c), kArmApiResources, json{{"location", c.location}}));
    (void)made;
  }
  CH_ASSIGN(gallery, arm.get(azure_gallery_id(c), kArmApiGallery));
  if (gallery) {
    std::string state = gallery->value("/properties/provisioningState"_json_pointer, "");
    if (state != "Succeeded" && state != "Failed" && state != "Canceled") {
      CH_ASSIGN(waited, arm.wait_provisioned(azure_gallery_id(c), kArmApiGallery));
      (void)waited;
    }
    return {};
  }
  if (!c.create_gallery)
    return Error{"gallery " + c.gallery + " does not exist in resource group " + c.resource_group +
                 " (create it, or set azure.create: [gallery])"};
  op_set(meta, "import", "created/gallery", c.gallery);
  CH_TRY(opts.checkpoint());
  log_info("azure: creating gallery " + c.gallery + " in " + c.location);
  CH_ASSIGN(made, arm.put(azure_gallery_id(c), kArmApiGallery, gallery_body(c)));
  (void)made;
  return {};
}

// Creates definition D when absent; checks an existing one against what the
// image needs and refuses a mismatch (it is never changed).
Result<std::string> ensure_definition(ArmClient& arm, const AzureConfig& c, const AzureDefinition& d,
                                      ImageMetadata& meta, const CloudStepOptions& opts) {
  std::string id = azure_definition_id(c, d.name);
  CH_ASSIGN(existing, arm.get(id, kArmApiGallery));
  json want = definition_body(c, d);
  std::string key = "definition/" + d.name;
  if (existing) {
    std::string mismatch = definition_mismatch(*existing, want);
    if (!mismatch.empty())
      return Error{"gallery image definition " + d.name + " exists with " + mismatch +
                   "; existing definitions are never changed (choose another azure.image_definition)"};
    std::string state = existing->value("/properties/provisioningState"_json_pointer, "Succeeded");
    if (state == "Creating" || state == "Updating") {
      CH_ASSIGN(w, arm.wait_provisioned(id, kArmApiGallery));
      (void)w;
    }
    if (!op_get(meta, "import", key)) op_set(meta, "import", key, "existing");
    return std::string("existing");
  }
  op_set(meta, "import", key, "created");
  CH_TRY(opts.checkpoint());
  log_info("azure: creating image definition " + d.name + " (" + d.generation + ", " + c.architecture + ")");
  CH_ASSIGN(made, arm.put(id, kArmApiGallery, want));
  (void)made;
  return std::string("created");
}

}  // namespace

CloudStepResult azure_import(ImageMetadata& meta, const CloudStepOptions& opts) {
  AzureEnv env;
  auto cloud = azure_cloud_from_process(&env);
  if (!cloud.ok()) return CloudStepResult::invalid(cloud.error());
  auto cfg = read_azure_config(meta, env.get("AZURE_SUBSCRIPTION_ID"));
  if (!cfg.ok()) return CloudStepResult::invalid(cfg.error());
  std::string blob_url = upload_blob_url(meta);
  if (!meta.get_string("uploaded") || blob_url.empty())
    return CloudStepResult::invalid(Error{"no uploaded VHD (upload_url): run upload first"});
  auto blob = parse_blob_url(blob_url, env, *cloud);
  if (!blob.ok()) return CloudStepResult::invalid(blob.error().wrap("upload_url"));
  if (opts.validate_only) return {};
  const AzureConfig& c = *cfg;
  if (meta.get_string("imported") && !opts.force) {
    CloudStepResult r;
    r.skipped = true;
    r.notice = meta.path() + ": import: already imported as " + meta.get_string("import_id").value_or("?") +
               " at " + *meta.get_string("imported") + " (--force redoes it)";
    return r;
  }
  VersionSource source;
  source.blob_url = blob_url;
  source.storage_account_id = azure_storage_account_id(c.subscription_id, c.storage_resource_group, blob->account);
  if (opts.dry_run) {
    CloudStepResult r;
    r.lines.push_back("would check resource group " + c.resource_group + " and gallery " + c.gallery +
                      (c.create_gallery || c.create_resource_group ? " (creating what is missing)" : ""));
    for (const AzureDefinition& d : c.definitions) {
      r.lines.push_back("would ensure image definition " + d.name + " (" + d.generation + ", " + c.architecture +
                        ", " + c.publisher + "/" + c.offer + "/" + d.sku + ")");
      if (c.managed_image) r.lines.push_back("would PUT managed image " + managed_image_name(meta, d));
      r.lines.push_back("would PUT gallery image version " + d.name + "/" + c.version + " from " + blob_url +
                        " in " + c.location);
    }
    return r;
  }

  CH_STEP_ASSIGN(session, open_azure_session(true));
  ArmClient& arm = *session->arm;
  CH_STEP_TRY(ensure_containers(arm, c, meta, opts));
  for (const AzureDefinition& d : c.definitions) {
    auto made = ensure_definition(arm, c, d, meta, opts);
    if (!made.ok()) return CloudStepResult::failure(made.error());
  }

  // One version per definition, in parallel: each takes minutes on Azure.
  std::mutex mu;
  std::vector<Status> results(c.definitions.size());
  auto locked_checkpoint = [&]() -> Status {
    std::lock_guard<std::mutex> lock(mu);
    return opts.checkpoint();
  };
  run_parallel(c.definitions.size(), c.definitions.size(), [&](size_t i) {
    const AzureDefinition& d = c.definitions[i];
    VersionSource src = source;
    if (c.managed_image) {
      auto image = ensure_managed_image(arm, c, d, managed_image_name(meta, d), blob_url, meta, mu,
                                        locked_checkpoint);
      if (!image.ok()) {
        results[i] = image.error();
        return;
      }
      src.managed_image_id = *image;
    }
    results[i] = ensure_version(arm, c, d, src, meta, mu, locked_checkpoint);
  });
  for (const Status& s : results)
    if (!s.ok()) return CloudStepResult::failure(s.error());

  meta.set_string("import_id", azure_version_id(c, c.definitions[0].name));
  meta.set_string("import_region", c.location);
  meta.set_timestamp("imported", utc_now_iso8601());
  CloudStepResult r;
  for (const AzureDefinition& d : c.definitions) {
    r.lines.push_back("imported " + d.name + "/" + c.version + " (" + d.generation + ") in " + c.location + ": " +
                      azure_version_id(c, d.name));
    r.extra["versions"][d.name] = azure_version_id(c, d.name);
  }
  r.extra["import_id"] = azure_version_id(c, c.definitions[0].name);
  return r;
}

}  // namespace ch
