// cloud: oci, rollback — deletes what import and upload made for an image
// that was never published: the capability schema, the image, then the
// unfinished multipart upload (AbortMultipartUpload) or the object. Every
// deletion treats "already gone" (404) as done and is recorded as it
// happens, so a rollback that fails half-way can be re-run. Buckets and
// compartments are never touched.
#include "clouds/oci/oci_client.h"
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
  std::string where = object ? "oci://" + object->bucket + "@" + object->namespace_name + "/" + object->object : "";

  if (opts.dry_run) {
    CloudStepResult r;
    if (!schema_id.empty()) r.lines.push_back("would DeleteComputeImageCapabilitySchema " + schema_id);
    if (!image_id.empty()) r.lines.push_back("would DeleteImage " + image_id);
    if (object && !upload_id.empty()) r.lines.push_back("would AbortMultipartUpload " + upload_id + " of " + where);
    if (object && object_done) r.lines.push_back("would DeleteObject " + where);
    if (r.lines.empty()) r.lines.push_back("nothing to roll back");
    return r;
  }
  CloudStepResult r;
  if (!schema_id.empty() || !image_id.empty() || object) {
    std::string region = op_get(meta, "import", "region").value_or(meta.get_string("import_region").value_or(""));
    if (region.empty()) {
      auto config = read_oci_config(meta);
      if (config.ok()) region = config->home_region;
    }
    CH_STEP_ASSIGN(s, open_oci_session(region));
    std::string iaas = s->endpoints.iaas + "/20160918";
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
  op_remove_section(meta, "upload");
  meta.remove("uploaded");
  meta.remove("upload_url");
  CH_STEP_TRY(opts.checkpoint());
  if (r.lines.empty()) r.lines.push_back("nothing to roll back");
  return r;
}

}  // namespace ch
