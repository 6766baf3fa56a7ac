// cloud: oci, publish — the imported image in every region of `regions`.
//
// OCI custom images are regional, private to the tenancy, and have no
// cross-region copy call; Oracle documents importing into another region
// from an Object Storage URL, a pre-authenticated request (PAR) for objects
// the other region cannot otherwise read (CreateImage with
// imageSourceDetails objectStorageUri). So, per other region, in parallel:
//   - an image of the display name already there (recorded in
//     operations.publish.REGION, or found with ListImages) is kept;
//   - else a read-only PAR (ObjectRead, expiring in 3 days) on the uploaded
//     object in the home region, its id recorded in operations.publish_pars
//     and saved before going on (its URL is shown once, never stored, and
//     kept out of every output); then CreateImage in the region's Compute
//     endpoint, same compartment, display name, launch mode, with an
//     opc-retry-token from the image, region and PAR, the image and work
//     request ids recorded and saved before waiting;
//   - the work request and the image waited on until AVAILABLE, then the same
//     capability schema and shape entries as the home import, and
//     artifacts.REGION saved.
// A region that fails does not stop the others (exit 3, a line per region);
// a re-run adopts what is there and never makes a second image. Once every
// region is done the PARs are deleted (recorded ones, and any of this
// image's that listing finds). When the uploaded object is gone (deleted
// after import), the home image is exported next to it first (ExportImage,
// QCOW2/VMDK as uploaded, its work request recorded in
// operations.publish_export and waited on) and the PARs are made on that
// copy, which is deleted with them.
//
// public: true is refused (public images go through the OCI Marketplace
// partner portal, not an API flag).
#include <ctime>
#include <mutex>
#include <optional>
#include <tuple>

#include "base/env.h"
#include "base/parallel.h"
#include "base/time.h"
#include "clouds/oci/oci_client.h"
#include "clouds/oci/oci_image.h"
#include "clouds/oci/oci_steps.h"
#include "clouds/operations.h"
#include "clouds/signing/digest.h"
#include "helper/output.h"

namespace ch {

namespace {

using nlohmann::json;

constexpr int kParDays = 3;

struct PublishPlan {
  OciImageConfig config;
  std::string image_id, home;  // home "" : the credentials' region
  std::vector<std::string> regions;  // the other regions
  OciObjectRef object;               // the uploaded object (when regions)
  std::string source_type;           // QCOW2 | VMDK
};

Result<PublishPlan> plan_publish(const ImageMetadata& meta) {
  PublishPlan p;
  CH_ASSIGN(config, read_oci_config(meta));
  p.config = config;
  auto pub = meta.get_bool("public");
  if (!pub.ok()) return pub.error();
  if (pub->value_or(false))
    return Error{"public: true is not supported for cloud oci (custom images are shared through the OCI "
                 "Marketplace partner portal, not an API flag); set public: false"};
  if (!meta.get_string("imported") || !meta.get_string("import_id")) return Error{"not imported yet (run import first)"};
  p.image_id = *meta.get_string("import_id");
  p.home = meta.get_string("import_region").value_or(p.config.home_region);
  for (const std::string& r : p.config.other_regions) {
    if (!oci_region_id_valid(r))
      return Error{"regions: '" + r + "' is not an OCI region id (like eu-frankfurt-1); nothing was published"};
    if (r != p.home) p.regions.push_back(r);
  }
  if (p.regions.empty()) return p;
  OciEnv env = process_environment();
  for (const std::string& r : p.regions)
    if (oci_endpoints(r, env).iaas_single)
      return Error{"no Compute endpoint for region " + r + ": OCI_IAAS_ENDPOINT is one endpoint for every region; put "
                   "{region} in it or set OCI_IAAS_ENDPOINT_" + oci_region_env_suffix(r)};
  if (p.config.compartment_id.empty()) return Error{"publishing to other regions needs oci.compartment_id"};
  auto url = meta.get_string("upload_url");
  if (!url) return Error{"publishing to other regions imports the uploaded object there: no upload_url (run upload)"};
  CH_ASSIGN(object, parse_oci_object_url(*url));
  p.object = object;
  CH_ASSIGN(source_type, oci_source_image_type(meta));
  p.source_type = source_type;
  return p;
}

std::string token(std::string_view what, const std::string& a, const std::string& b, const std::string& c) {
  return "cloudhelper-" + std::string(what) + "-" + sha256_hex(a + "\n" + b + "\n" + c).substr(0, 40);
}

bool usable(const std::string& state) {
  return state == "AVAILABLE" || state == "IMPORTING" || state == "PROVISIONING";
}

class Publisher {
 public:
  Publisher(ImageMetadata& meta, const CloudStepOptions& opts, const PublishPlan& p, OciSession& s)
      : meta_(meta), opts_(opts), p_(p), s_(s), c_(*s.client),
        prefix_(oci_par_prefix(p.config.name, p.object)) {}

  // Sets (VALUE "") or removes operations.SECTION.REGION (or artifacts) and saves.
  Status record(const std::vector<std::tuple<std::string, std::string, std::string>>& entries) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [section, key, value] : entries) {
      if (section == "artifacts") map_set(meta_, "artifacts", key, value);
      else if (value.empty()) op_remove(meta_, section, key);
      else op_set(meta_, section, key, value);
    }
    return opts_.checkpoint();
  }
  std::string recorded(std::string_view section, const std::string& region) {
    std::lock_guard<std::mutex> lock(mu_);
    if (section == "artifacts") return map_get(meta_, "artifacts", region).value_or("");
    return op_get(meta_, section, region).value_or("");
  }

  // The image in REGION, made or checked; *DETAIL says which.
  Result<std::string> region(const std::string& r, std::string* detail) {
    const std::string iaas = oci_endpoints(r, s_.env).core();
    std::string id = recorded("publish", r);
    if (id.empty()) id = recorded("artifacts", r);
    std::string wr = recorded("publish_work_requests", r);
    *detail = "checked";
    if (!id.empty()) {
      OciCall get{"GetImage", "GET", iaas + "/images/" + oci_segment(id)};
      CH_ASSIGN(resp, c_.send(get));
      if (resp.status != 404 && (resp.status < 200 || resp.status > 299)) return oci_error(get, resp);
      json img = json::parse(resp.body, nullptr, false);
      std::string state = resp.status == 404 || !img.is_object() ? "gone" : img.value("lifecycleState", "");
      if (!usable(state)) {
        log_info(meta_.path() + ": publish: image " + id + " in " + r + " is " + state + "; importing again");
        CH_TRY(record({{"publish", r, ""}, {"publish_work_requests", r, ""}, {"publish_schemas", r, ""}}));
        id.clear();
        wr.clear();
      }
    }
    if (id.empty()) {
      CH_ASSIGN(found, oci_find_image(c_, iaas, p_.config));
      if (!found.empty()) {
        id = found;
        *detail = "adopted";
        log_info(meta_.path() + ": publish: adopting image " + id + " in " + r);
        CH_TRY(record({{"publish", r, id}}));
      }
    }
    if (id.empty()) {
      CH_ASSIGN(made, create_image(r, iaas));
      id = made.first;
      wr = made.second;
      *detail = "imported";
    }
    if (!wr.empty()) {
      Status st = oci_wait_work_request(c_, iaas, wr, id, p_.config.name);
      if (!st.ok()) return Error{st.message() + " (re-run publish to import it again)", st.error().code, st.error().http_status};
    }
    CH_TRY(oci_wait_image_available(c_, iaas, id));
    bool created = false;
    CH_ASSIGN(schema, oci_ensure_schema(c_, iaas, p_.config, id, recorded("publish_schemas", r),
                                        token("schema", p_.config.name, r, id), &created));
    CH_TRY(record({{"publish_schemas", r, schema}}));
    CH_TRY(oci_add_shapes(c_, iaas, p_.config, id));
    CH_TRY(record({{"artifacts", r, id}}));
    return id;
  }

  // Every PAR of this image, recorded or found by its name prefix.
  Status delete_pars(int* deleted) {
    std::vector<std::string> ids;
    for (const auto& [r, id] : op_entries(meta_, "publish_pars")) ids.push_back(id);
    CH_TRY(oci_delete_pars(c_, s_.endpoints.objectstorage, p_.object, prefix_, ids, deleted));
    op_remove_section(meta_, "publish_pars");
    CH_TRY(opts_.checkpoint());
    // The exported copy was made for these imports only.
    std::string exported = recorded_export("object");
    if (!exported.empty()) {
      OciCall del{"DeleteObject", "DELETE", object_base() + "/o/" + oci_segment(exported)};
      CH_ASSIGN(resp, c_.send(del));
      if (resp.status != 404 && (resp.status < 200 || resp.status > 299)) return oci_error(del, resp);
      op_remove_section(meta_, "publish_export");
      CH_TRY(opts_.checkpoint());
    }
    return {};
  }

 private:
  std::string object_base() const {
    return s_.endpoints.objectstorage + "/n/" + oci_segment(p_.object.namespace_name) + "/b/" +
           oci_segment(p_.object.bucket);
  }

  // 200 true, 404 false.
  Result<bool> object_exists(const std::string& name) {
    OciCall head{"HeadObject", "HEAD", object_base() + "/o/" + oci_segment(name)};
    CH_ASSIGN(resp, c_.send(head));
    if (resp.status == 404) return false;
    if (resp.status < 200 || resp.status > 299) return oci_error(head, resp);
    return true;
  }

  // The object the other regions import, found once for every region: the
  // uploaded one, or, when it is gone, an ExportImage of the home image
  // next to it (recorded in operations.publish_export, deleted at the end).
  Result<std::string> source_object() {
    std::lock_guard<std::mutex> lock(source_mu_);
    if (source_) return *source_;
    auto found = find_source();
    if (found.ok()) source_ = *found;
    return found;
  }

  Result<std::string> find_source() {
    std::string exported = recorded_export("object");
    if (exported.empty()) {
      CH_ASSIGN(there, object_exists(p_.object.object));
      if (there) return p_.object.object;
      exported = p_.object.object + ".exported." + (p_.source_type == "QCOW2" ? "qcow2" : "vmdk");
    }
    const std::string iaas = s_.endpoints.core();
    std::string wr = recorded_export("work_request");
    if (wr.empty()) {
      CH_ASSIGN(there, object_exists(exported));
      if (there) return exported;
      log_info(meta_.path() + ": publish: the uploaded object " + p_.object.url() + " is gone; exporting image " +
               p_.image_id + " to " + exported);
      json body = {{"destinationType", "objectStorageTuple"}, {"namespaceName", p_.object.namespace_name},
                   {"bucketName", p_.object.bucket}, {"objectName", exported}, {"exportFormat", p_.source_type}};
      OciCall call{"ExportImage", "POST", iaas + "/images/" + oci_segment(p_.image_id) + "/actions/export", {},
                   body.dump(), {{"opc-retry-token", token("export", p_.config.name, p_.image_id, exported)}}};
      CH_ASSIGN(resp, c_.call(call));
      wr = resp.header("opc-work-request-id");
      CH_TRY(record({{"publish_export", "object", exported}, {"publish_export", "work_request", wr}}));
    }
    if (!wr.empty()) {
      Status st = oci_wait_work_request(c_, iaas, wr, p_.image_id, p_.config.name);
      if (!st.ok())
        return Error{"the uploaded object " + p_.object.url() + " is gone and exporting the image failed: " +
                     st.message(), st.error().code, st.error().http_status};
    }
    return exported;
  }

  std::string recorded_export(std::string_view key) {
    std::lock_guard<std::mutex> lock(mu_);
    return op_get(meta_, "publish_export", key).value_or("");
  }

  // A read-only PAR on the object for REGION; its id saved before the URL is used.
  Result<std::string> make_par(const std::string& r) {
    CH_ASSIGN(object, source_object());
    std::string old = recorded("publish_pars", r);
    if (!old.empty()) {
      // Its URL was only in the answer that made it: unusable now.
      OciCall del{"DeletePreauthenticatedRequest", "DELETE", object_base() + "/p/" + oci_segment(old)};
      CH_ASSIGN(resp, c_.send(del));
      if (resp.status != 404 && (resp.status < 200 || resp.status > 299)) return oci_error(del, resp);
    }
    json body = {{"name", prefix_ + r}, {"objectName", object}, {"accessType", "ObjectRead"},
                 {"timeExpires", format_rfc3339_utc(std::time(nullptr) + int64_t{kParDays} * 86400)}};
    OciCall call{"CreatePreauthenticatedRequest", "POST", object_base() + "/p/", {}, body.dump()};
    CH_ASSIGN(par, c_.call_json(call));
    std::string id = par.value("id", ""), uri = par.value("accessUri", ""), full = par.value("fullPath", "");
    if (id.empty() || (uri.empty() && full.empty()))
      return Error{"OCI CreatePreauthenticatedRequest: no id or accessUri in the answer"};
    // The URL is the credential: never printed, never stored.
    for (const std::string& u : {uri, full})
      if (!u.empty()) add_secret(u);
    size_t p = uri.find("/p/");
    if (p != std::string::npos) add_secret(uri.substr(p + 3, uri.find('/', p + 3) - p - 3));
    CH_TRY(record({{"publish_pars", r, id}}));
    return full.empty() ? s_.endpoints.objectstorage + uri : full;
  }

  Result<std::pair<std::string, std::string>> create_image(const std::string& r, const std::string& iaas) {
    CH_ASSIGN(url, make_par(r));
    json source = {{"sourceType", "objectStorageUri"}, {"sourceUri", url}, {"sourceImageType", p_.source_type}};
    if (!p_.config.operating_system.empty()) source["operatingSystem"] = p_.config.operating_system;
    if (!p_.config.operating_system_version.empty())
      source["operatingSystemVersion"] = p_.config.operating_system_version;
    json body = {{"compartmentId", p_.config.compartment_id}, {"displayName", p_.config.name},
                 {"launchMode", p_.config.launch_mode}, {"imageSourceDetails", source}};
    if (!p_.config.tags.empty()) body["freeformTags"] = p_.config.tags;
    OciCall call{"CreateImage", "POST", iaas + "/images", {}, body.dump(),
                 {{"opc-retry-token", token("copy", p_.config.name, r, recorded("publish_pars", r))}}};
    CH_ASSIGN(resp, c_.call(call));
    json j = json::parse(resp.body, nullptr, false);
    std::string id = j.is_object() ? j.value("id", "") : "";
    if (id.empty()) return Error{"OCI CreateImage in " + r + ": no image id in the answer"};
    std::string wr = resp.header("opc-work-request-id");
    log_info(meta_.path() + ": publish: CreateImage " + id + " in " + r + " (work request " + wr + ")");
    CH_TRY(record({{"publish", r, id}, {"publish_work_requests", r, wr}}));
    return std::make_pair(id, wr);
  }

  ImageMetadata& meta_;
  const CloudStepOptions& opts_;
  const PublishPlan& p_;
  OciSession& s_;
  OciClient& c_;
  std::string prefix_;
  std::mutex mu_, source_mu_;
  std::optional<std::string> source_;
};

CloudStepResult dry_run(const ImageMetadata& meta, const PublishPlan& p) {
  CloudStepResult r;
  std::string home = p.home.empty() ? std::string("the home region") : p.home;
  r.lines.push_back(home + ": would GetImage " + p.image_id + " (must be AVAILABLE) and record it in artifacts");
  std::string shapes;
  for (const std::string& s : p.config.shapes) shapes += (shapes.empty() ? "" : ", ") + s;
  std::string after = "CreateComputeImageCapabilitySchema (firmware " + p.config.firmware + ", launch mode " +
                      p.config.launch_mode + ")" + (shapes.empty() ? "" : ", AddImageShapeCompatibilityEntry " + shapes);
  bool new_pars = false;
  for (const std::string& region : p.regions) {
    std::string id = op_get(meta, "publish", region).value_or(map_get(meta, "artifacts", region).value_or(""));
    if (!id.empty()) {
      r.lines.push_back(region + ": would check image " + id + " (AVAILABLE), then " + after);
      continue;
    }
    new_pars = true;
    r.lines.push_back(region + ": would adopt an image named " + p.config.name + " (ListImages) or "
                      "(ExportImage first if the object is gone) CreatePreauthenticatedRequest (ObjectRead, expires in " + std::to_string(kParDays) +
                      " days) on " + p.object.url() + " in " + home + " and CreateImage from its URL (" +
                      p.source_type + ", launch mode " + p.config.launch_mode + "), wait for its work request, then " +
                      after);
  }
  if (new_pars || !op_entries(meta, "publish_pars").empty())
    r.lines.push_back("would DeletePreauthenticatedRequest for each once every region is done");
  return r;
}

}  // namespace

CloudStepResult oci_publish(ImageMetadata& meta, const CloudStepOptions& opts) {
  auto plan = plan_publish(meta);
  if (!plan.ok()) return CloudStepResult::invalid(plan.error());
  if (opts.validate_only) return {};
  const PublishPlan& p = *plan;
  if (opts.dry_run) return dry_run(meta, p);

  CH_STEP_ASSIGN(session, open_oci_session(p.home));
  CH_STEP_ASSIGN(image, session->client->call_json(
                            {"GetImage", "GET", session->endpoints.core() + "/images/" + oci_segment(p.image_id)}));
  std::string state = image.value("lifecycleState", "");
  if (state != "AVAILABLE")
    return CloudStepResult::failure(Error{"image " + p.image_id + " is " + state + ", not AVAILABLE"});
  map_set(meta, "artifacts", session->region, p.image_id);
  CloudStepResult r;
  r.lines.push_back(session->region + ": " + p.image_id);
  r.extra["artifacts"] = {{session->region, p.image_id}};
  std::vector<std::string> regions;
  for (const std::string& region : p.regions)
    if (region != session->region) regions.push_back(region);
  if (regions.empty()) {
    if (!meta.get_string("published")) meta.set_timestamp("published", utc_now_iso8601());
    return r;
  }
  CH_STEP_TRY(opts.checkpoint());

  Publisher publisher(meta, opts, p, *session);
  struct Outcome {
    std::string id, detail;
    std::optional<Error> error;
  };
  std::vector<Outcome> outcomes(regions.size());
  run_parallel(regions.size(), 8, [&](size_t i) {
    auto id = publisher.region(regions[i], &outcomes[i].detail);
    if (id.ok()) outcomes[i].id = *id;
    else outcomes[i].error = id.error();
  });

  size_t failed = 0;
  std::string first;
  for (size_t i = 0; i < regions.size(); ++i) {
    const Outcome& o = outcomes[i];
    if (o.error) {
      ++failed;
      if (first.empty()) first = regions[i] + ": " + o.error->message;
      r.lines.push_back(regions[i] + ": FAILED: " + o.error->message);
      r.extra["artifacts"][regions[i]] = nullptr;
    } else {
      r.lines.push_back(regions[i] + ": " + o.id + " (" + o.detail + ")");
      r.extra["artifacts"][regions[i]] = o.id;
    }
  }
  if (failed) {
    // The PARs stay for the re-run's imports still running; rollback or the
    // re-run that finishes deletes them (they expire after kParDays anyway).
    r.partial = true;
    r.notice = std::to_string(failed) + " of " + std::to_string(regions.size() + 1) + " regions failed (" + first +
               (failed > 1 ? "; ..." : "") + "); re-run publish to finish them";
    return r;
  }
  int deleted = 0;
  Status pars = publisher.delete_pars(&deleted);
  if (!pars.ok()) {
    r.partial = true;
    r.notice = "every region has the image, but deleting its pre-authenticated requests failed: " + pars.message() +
               "; re-run publish";
    return r;
  }
  if (deleted) r.lines.push_back("deleted " + std::to_string(deleted) + " pre-authenticated request(s)");
  for (const char* section : {"publish", "publish_work_requests", "publish_schemas"}) op_remove_section(meta, section);
  if (!meta.get_string("published")) meta.set_timestamp("published", utc_now_iso8601());
  return r;
}

}  // namespace ch
