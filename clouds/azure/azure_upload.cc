// cloud: azure, upload — the fixed VHD to storage_url as a page blob.
//
// operations.upload records {url: az://a/c/name.vhd, blob_url: https://..,
// state: uploading|complete} before the first page goes out: a re-run after
// a kill finds "uploading" and resumes (Get Page Ranges, only the rest is
// sent); a blob that is there without such a record belongs to someone else
// and is never overwritten without --force.
#include <sys/stat.h>

#include "base/file.h"
#include "formats/formats.h"
#include "clouds/azure/azure_config.h"
#include "clouds/azure/azure_session.h"
#include "clouds/azure/azure_steps.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string mib(uint64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

struct UploadPlan {
  std::string path;
  uint64_t file_size = 0;
  bool raw = false;       // a raw image: the footer is made on the fly
  uint64_t blob_size = 0; // the page blob's size (VHD data + footer)
  BlobLocation blob;
  AzureStorageOptions storage;
  std::string md5_hex;    // checksums.md5 of the VHD, when recorded
};

Result<UploadPlan> plan_upload(const ImageMetadata& meta, const AzureEnv& env, const AzureCloud& cloud) {
  UploadPlan p;
  auto storage = meta.get_string("storage_url");
  if (!storage) return Error{"no storage_url (set it to az://account/container/)"};
  CH_ASSIGN(file, image_file_of(meta));
  p.path = file.path;
  p.file_size = file.size;
  std::string format = meta.get_string("image_format").value_or("");
  if (format.empty()) format = ends_with(p.path, ".vhd") ? "vhd" : ends_with(p.path, ".raw") || ends_with(p.path, ".img") ? "raw" : "";
  if (format == "raw") {
    p.raw = true;
    p.blob_size = vhd_virtual_size(p.file_size) + 512;
  } else if (format == "vhd") {
    // Azure takes a fixed VHD whose virtual size is a whole MiB.
    if (p.file_size < 512 + (1 << 20) || (p.file_size - 512) % (1 << 20) != 0)
      return Error{"image_file " + p.path + " (" + std::to_string(p.file_size) +
                   " bytes) is not a fixed VHD of whole MiB plus a 512-byte footer (convert with image_format: vhd)"};
    p.blob_size = p.file_size;
  } else {
    return Error{"Azure takes a fixed VHD (or raw, made into one while uploading), not image_format '" +
                 format + "': convert with image_format: vhd"};
  }
  CH_ASSIGN(loc, parse_blob_url(*storage, env, cloud));
  std::string name = base_name(p.path);
  if (p.raw) name = name.substr(0, name.rfind('.')) + ".vhd";
  p.blob = loc.name.empty() || loc.name.back() == '/' ? loc.with_name(loc.name + name) : loc;
  CH_ASSIGN(so, read_azure_storage_options(meta, env.get("AZURE_SUBSCRIPTION_ID")));
  p.storage = so;
  if (!p.raw) {
    const MetaValue* c = meta.get("checksums");
    const MetaValue* v = c ? c->find("md5") : nullptr;
    if (v && v->is_scalar() && v->scalar().size() == 32) p.md5_hex = v->scalar();
  }
  return p;
}

// Creates the storage account through Resource Manager when azure.create
// says so and it does not exist; an existing one is left as it is.
Status ensure_storage_account(AzureSession& s, const UploadPlan& p) {
  if (!s.arm)
    return Error{"azure.create storage_account needs Entra ID credentials (AZURE_TENANT_ID, AZURE_CLIENT_ID, ...)"};
  std::string id = azure_storage_account_id(p.storage.subscription_id, p.storage.resource_group, p.blob.account);
  CH_ASSIGN(existing, s.arm->get(id, kArmApiStorage));
  if (existing) return {};
  std::string rg = "/subscriptions/" + p.storage.subscription_id + "/resourceGroups/" + p.storage.resource_group;
  CH_ASSIGN(group, s.arm->get(rg, kArmApiResources));
  if (!group) {
    if (!p.storage.create_resource_group)
      return Error{"resource group " + p.storage.resource_group + " does not exist (create it, or set azure.create: "
                   "[resource_group, storage_account])"};
    log_info("azure: creating resource group " + p.storage.resource_group + " in " + p.storage.location);
    CH_ASSIGN(made_rg, s.arm->put(rg, kArmApiResources, nlohmann::json{{"location", p.storage.location}}));
    (void)made_rg;
  }
  log_info("azure: creating storage account " + p.blob.account + " in " + p.storage.location);
  nlohmann::json body = {{"location", p.storage.location},
                         {"kind", "StorageV2"},
                         {"sku", {{"name", "Standard_LRS"}}},
                         {"properties", {{"minimumTlsVersion", "TLS1_2"}, {"allowBlobPublicAccess", false}}}};
  CH_ASSIGN(made, s.arm->put(id, kArmApiStorage, body));
  (void)made;
  return {};
}

}  // namespace

CloudStepResult azure_upload(ImageMetadata& meta, const CloudStepOptions& opts) {
  AzureEnv env;
  auto cloud = azure_cloud_from_process(&env);
  if (!cloud.ok()) return CloudStepResult::invalid(cloud.error());
  auto plan = plan_upload(meta, env, *cloud);
  if (!plan.ok()) return CloudStepResult::invalid(plan.error());
  if (opts.validate_only) return {};
  const UploadPlan& p = *plan;
  std::string az_url = p.blob.az_url();
  if (auto done = upload_already_done(meta, opts, az_url)) return *done;
  if (opts.dry_run) {
    CloudStepResult r;
    if (p.storage.create_storage_account)
      r.lines.push_back("would create storage account " + p.blob.account + " in " + p.storage.location +
                        " when it does not exist");
    if (p.storage.create_container)
      r.lines.push_back("would create container " + p.blob.container + " when it does not exist");
    r.lines.push_back("would upload " + p.path + (p.raw ? " (raw, VHD footer added)" : "") + " to " +
                      p.blob.url() + " as a page blob of " + std::to_string(p.blob_size) +
                      " bytes (Put Blob, Put Page ≤ 4 MiB per non-zero range, Set Blob Properties Content-MD5)");
    return r;
  }

  CH_STEP_ASSIGN(session, open_azure_session(p.storage.create_storage_account));
  if (p.storage.create_storage_account) CH_STEP_TRY(ensure_storage_account(*session, p));
  CH_STEP_ASSIGN(client, open_blob_client(*session, p.blob));
  BlobLocation container = p.blob.with_name("");
  CH_STEP_ASSIGN(has_container, client->container_exists(container));
  if (!has_container) {
    if (!p.storage.create_container)
      return CloudStepResult::failure(Error{"container " + p.blob.container + " does not exist in storage account " +
                                            p.blob.account + " (create it, or set azure.create: [container])"});
    CH_STEP_TRY(client->create_container(container));
  }

  PageBlobUploadOptions up;
  up.known_md5_hex = p.md5_hex;
  up.merge_gap_bytes = p.storage.merge_gap;
  up.metadata = {{"cloudhelper_image", meta.get_string("name").value_or(base_name(p.path))}};
  CH_STEP_ASSIGN(props, client->properties(p.blob));
  bool ours = op_get(meta, "upload", "url") == az_url && op_get(meta, "upload", "state") == "uploading";
  if (props) {
    if (ours && props->content_length == p.blob_size && props->blob_type == "PageBlob" && !opts.force) {
      up.resume = true;
      log_info(meta.path() + ": upload: resuming the page blob upload of " + az_url);
    } else if (ours || opts.force) {
      up.overwrite = true;
    } else {
      return CloudStepResult::failure(Error{"blob " + az_url + " already exists and no run for this image made it; "
                                            "not overwritten (--force replaces it)"});
    }
  }
  up.on_created = [&]() -> Status {
    op_set(meta, "upload", "url", az_url);
    op_set(meta, "upload", "blob_url", p.blob.url());
    op_set(meta, "upload", "state", "uploading");
    return opts.checkpoint();
  };
  if (opts.progress) {
    opts.progress->start("upload " + base_name(p.path), p.blob_size);
    up.progress = [pr = opts.progress](uint64_t n) { pr->advance(n); };
  }
  PageBlobSource source{p.path, p.raw, base_name(p.blob.name)};
  auto res = upload_page_blob(*client, p.blob, source, up);
  if (!res.ok()) return CloudStepResult::failure(res.error().wrap("uploading " + p.path + " to " + az_url));

  op_set(meta, "upload", "state", "complete");
  meta.set_string("upload_url", p.blob.url());
  meta.set_timestamp("uploaded", utc_now_iso8601());
  CloudStepResult r;
  r.lines.push_back("uploaded " + p.path + " to " + p.blob.url() + ": " + mib(res->bytes_sent) + " sent, " +
                    mib(res->zero_bytes_skipped) + " of zeros skipped" +
                    (res->resumed_bytes ? ", " + mib(res->resumed_bytes) + " already there" : ""));
  r.extra["upload_url"] = p.blob.url();
  r.extra["bytes_sent"] = res->bytes_sent;
  r.extra["zero_bytes_skipped"] = res->zero_bytes_skipped;
  r.extra["resumed_bytes"] = res->resumed_bytes;
  r.extra["content_md5"] = res->md5_base64;
  return r;
}

}  // namespace ch
