// cloud: oci, rollback — deletes what publish, import and upload made for an
// image that was never published (a publish that failed in some region
// leaves it unpublished): the images publish made in other regions (those of
// operations.publish, of artifacts but the home region, and one of the
// image's display name in each other region) with their
// capability schemas, the pre-authenticated requests on the object and the
// copy publish exported when the object was gone, then the
// home capability schema, the image, then the unfinished multipart upload
// (AbortMultipartUpload) or the object. Every
// deletion treats "already gone" (404) as done and is recorded as it
// happens, so a rollback that fails half-way can be re-run. Buckets and
// compartments are never touched.
#include "clouds/oci/oci_client.h"
#include "clouds/oci/oci_image.h"
#include "clouds/oci/oci_steps.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

namespace {

Status del(OciSession& s, const std::string& label, const std::string& url, std::vector<QueryParam> query = {}) {
  OciCall c{label, "DELETE", url, std::move(query)};
  CH_ASSIGN(r, s.client->send(c));
  if (r.status == 404 || (r.status >= 200 && r.status < 300)) return {};
  return oci_error(c, r);
}

// operations.upload.url, oci://bucket@ns/object.
std::optional<OciObjectRef> upload_object(const ImageMetadata& meta) {
  std::string url = op_get(meta, "upload", "url").value_or("");
  if (url.starts_with("oci://")) {
    std::string rest = url.substr(6);
    size_t at = rest.find('@'), slash = rest.find('/');
    if (at != std::string::npos && slash != std::string::npos && at < slash)
      return OciObjectRef{rest.substr(at + 1, slash - at - 1), rest.substr(0, at), rest.substr(slash + 1)};
  }
  auto https = meta.get_string("upload_url");
  if (https) {
    auto ref = parse_oci_object_url(*https);
    if (ref.ok()) return *ref;
  }
  return std::nullopt;
}

}  // namespace

CloudStepResult oci_rollback(ImageMetadata& meta, const CloudStepOptions& opts) {
  if (opts.validate_only) return {};
  std::string schema_id = op_get(meta, "import", "schema_id").value_or("");
  std::string image_id = op_get(meta, "import", "image_id").value_or(meta.get_string("import_id").value_or(""));
  std::optional<OciObjectRef> object = upload_object(meta);
  std::string upload_id = op_get(meta, "upload", "upload_id").value_or("");
  bool object_done = meta.get_string("uploaded") || op_get(meta, "upload", "state") == "complete";
  std::string where = object ? object->url() : "";
  std::string home = op_get(meta, "import", "region").value_or(meta.get_string("import_region").value_or(""));
  auto config = read_oci_config(meta);
  if (home.empty() && config.ok()) home = config->home_region;
  // Images publish made elsewhere (published ones would have made rollback refuse).
  std::vector<std::pair<std::string, std::string>> copies = op_entries(meta, "publish");
  for (const auto& [region, id] : map_entries(meta, "artifacts")) {
    bool seen = region == home || id == image_id;
    for (const auto& c : copies) seen |= c.first == region;
    if (!seen) copies.emplace_back(region, id);
  }
  std::vector<std::string> pars;
  for (const auto& [region, id] : op_entries(meta, "publish_pars")) pars.push_back(id);
  std::string exported = op_get(meta, "publish_export", "object").value_or("");  // publish's copy of the object

  if (opts.dry_run) {
    CloudStepResult r;
    for (const auto& [region, id] : copies)
      r.lines.push_back("would DeleteComputeImageCapabilitySchema (its schemas) and DeleteImage " + id + " in " + region);
    if (object && (!pars.empty() || !copies.empty()))
      r.lines.push_back("would DeletePreauthenticatedRequest for this image's requests on " + where);
    if (object && !exported.empty())
      r.lines.push_back("would DeleteObject " + OciObjectRef{object->namespace_name, object->bucket, exported}.url());
    if (!schema_id.empty()) r.lines.push_back("would DeleteComputeImageCapabilitySchema " + schema_id);
    if (!image_id.empty()) r.lines.push_back("would DeleteImage " + image_id);
    if (object && !upload_id.empty()) r.lines.push_back("would AbortMultipartUpload " + upload_id + " of " + where);
    if (object && object_done) r.lines.push_back("would DeleteObject " + where);
    if (r.lines.empty()) r.lines.push_back("nothing to roll back");
    return r;
  }
  CloudStepResult r;
  if (!schema_id.empty() || !image_id.empty() || object || !copies.empty()) {
    CH_STEP_ASSIGN(s, open_oci_session(home));
    std::string iaas = s->endpoints.core();
    // An image whose CreateImage answer was lost (then the run killed or
    // failed) is in no record: found by its display name, as publish adopts it.
    if (config.ok() && !config->compartment_id.empty())
      for (const std::string& region : config->other_regions) {
        OciEndpoints e = oci_endpoints(region, s->env);
        bool seen = region == home || e.iaas_single || !oci_region_id_valid(region);
        for (const auto& c : copies) seen |= c.first == region;
        if (seen) continue;
        CH_STEP_ASSIGN(found, oci_find_image(*s->client, e.core(), *config));
        if (!found.empty()) copies.emplace_back(region, found);
      }
    for (const auto& [region, id] : copies) {
      std::string other = oci_endpoints(region, s->env).core();
      std::vector<QueryParam> q = {{"imageId", id}};
      if (config.ok() && !config->compartment_id.empty()) q.push_back({"compartmentId", config->compartment_id});
      CH_STEP_ASSIGN(schemas, s->client->call_json({"ListComputeImageCapabilitySchemas", "GET",
                                                     other + "/computeImageCapabilitySchemas", q}));
      if (schemas.is_array())
        for (const auto& sc : schemas)
          CH_STEP_TRY(del(*s, "DeleteComputeImageCapabilitySchema",
                          other + "/computeImageCapabilitySchemas/" + oci_segment(sc.value("id", ""))));
      CH_STEP_TRY(del(*s, "DeleteImage", other + "/images/" + oci_segment(id)));
      r.lines.push_back("deleted image " + id + " in " + region);
      op_remove(meta, "publish", region);
      op_remove(meta, "publish_schemas", region);
      op_remove(meta, "publish_work_requests", region);
      CH_STEP_TRY(opts.checkpoint());
    }
    if (object && config.ok()) {
      int deleted = 0;
      CH_STEP_TRY(oci_delete_pars(*s->client, s->endpoints.objectstorage, *object,
                                  oci_par_prefix(config->name, *object), pars, &deleted));
      if (deleted) r.lines.push_back("deleted " + std::to_string(deleted) + " pre-authenticated request(s) on " + where);
    }
    if (object && !exported.empty()) {
      CH_STEP_TRY(del(*s, "DeleteObject", s->endpoints.objectstorage + "/n/" + oci_segment(object->namespace_name) +
                                              "/b/" + oci_segment(object->bucket) + "/o/" + oci_segment(exported)));
      r.lines.push_back("deleted the exported copy " + OciObjectRef{object->namespace_name, object->bucket, exported}.url());
    }
    for (const char* section : {"publish", "publish_schemas", "publish_work_requests", "publish_pars", "publish_export"})
      op_remove_section(meta, section);
    if (!schema_id.empty()) {
      CH_STEP_TRY(del(*s, "DeleteComputeImageCapabilitySchema", iaas + "/computeImageCapabilitySchemas/" + oci_segment(schema_id)));
      r.lines.push_back("deleted capability schema " + schema_id);
      op_remove(meta, "import", "schema_id");
      CH_STEP_TRY(opts.checkpoint());
    }
    if (!image_id.empty()) {
      CH_STEP_TRY(del(*s, "DeleteImage", iaas + "/images/" + oci_segment(image_id)));
      r.lines.push_back("deleted image " + image_id);
    }
    meta.remove("imported");
    meta.remove("import_id");
    meta.remove("import_region");
    meta.remove("artifacts");
    op_remove_section(meta, "import");
    CH_STEP_TRY(opts.checkpoint());
    if (object) {
      std::string base = s->endpoints.objectstorage + "/n/" + oci_segment(object->namespace_name) + "/b/" +
                         oci_segment(object->bucket);
      if (!upload_id.empty()) {
        CH_STEP_TRY(del(*s, "AbortMultipartUpload", base + "/u/" + oci_segment(object->object), {{"uploadId", upload_id}}));
        r.lines.push_back("aborted multipart upload " + upload_id + " of " + where);
      }
      if (object_done) {
        CH_STEP_TRY(del(*s, "DeleteObject", base + "/o/" + oci_segment(object->object)));
        r.lines.push_back("deleted object " + where);
      }
    }
  }
  return rollback_forget_upload(meta, opts, std::move(r));
}

}  // namespace ch
