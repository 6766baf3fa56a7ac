#include "clouds/openstack/openstack_session.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>

#include "base/env.h"
#include "base/file.h"
#include "clouds/operations.h"
#include "formats/checksum.h"
#include "helper/output.h"

namespace ch {

namespace {

using json = nlohmann::json;

std::string random_uuid() {
  std::random_device rd;
  std::mt19937_64 rng((uint64_t{rd()} << 32) ^ rd());
  uint64_t hi = rng(), lo = rng();
  hi = (hi & ~0xF000ull) | 0x4000ull;                         // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // RFC 4122 variant
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
  return buf;
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// Glance's digests of image ID against the file's; "" when they agree.
std::string digest_mismatch(const json& img, const LocalDigests& d) {
  std::string algo = str(img, "os_hash_algo"), value = str(img, "os_hash_value"), md5 = str(img, "checksum");
  if (algo == "sha512" && value != d.sha512)
    return "Glance's os_hash_value (sha512) " + value.substr(0, 16) + "... differs from the file's " +
           d.sha512.substr(0, 16) + "...";
  if (!md5.empty() && md5 != d.md5) return "Glance's checksum (md5) " + md5 + " differs from the file's " + d.md5;
  if (algo != "sha512" && md5.empty()) return "Glance reports no checksum to compare";
  return "";
}

// Polls image ID until its status is one of DONE (or it is gone), for up
// to TIMEOUT; the last document (nullopt when gone).
Result<std::optional<json>> wait_status(GlanceClient& g, const std::string& id,
                                        const std::vector<std::string>& done, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    CH_ASSIGN(img, g.get_image(id));
    if (!img) return img;
    std::string st = str(*img, "status");
    if (std::find(done.begin(), done.end(), st) != done.end() || std::chrono::steady_clock::now() > deadline)
      return img;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace

std::string catalog_region_list(const OpenStackSession& s) {
  std::string have;
  for (const std::string& r : catalog_regions(s.token.catalog, "image", s.auth.interface))
    have += (have.empty() ? "" : ", ") + r;
  return have.empty() ? "none" : have;
}

Result<GlanceClient*> OpenStackSession::glance_in(const std::string& region) {
  std::lock_guard<std::mutex> lock(glance_mu);
  if (auto it = glance.find(region); it != glance.end()) return it->second.get();
  std::string url = catalog_endpoint(token.catalog, "image", region, auth.interface);
  if (url.empty())
    return Error{"the service catalog has no " + auth.interface + " image (Glance) endpoint in region " + region +
                 " (regions with one: " + catalog_region_list(*this) + ")"};
  auto client = std::make_unique<GlanceClient>(*http, policy, url, token.token, region);
  GlanceClient* p = client.get();
  glance[region] = std::move(client);
  return p;
}

Status OpenStackSession::check_regions(const std::vector<std::string>& regions) {
  for (const std::string& region : regions)
    if (catalog_endpoint(token.catalog, "image", region, auth.interface).empty())
      return Error{"region " + region + " is not in the service catalog: it has no " + auth.interface +
                   " image (Glance) endpoint there; regions with one: " + catalog_region_list(*this)};
  return {};
}

std::optional<std::string> MetaRecorder::import_id(const std::string& region) {
  std::lock_guard<std::mutex> lock(mu_);
  return op_get(meta_, "import", region);
}

Status MetaRecorder::set_import_id(const std::string& region, const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  op_set(meta_, "import", region, id);
  return opts_.checkpoint();
}

Status MetaRecorder::remove_import_id(const std::string& region) {
  std::lock_guard<std::mutex> lock(mu_);
  op_remove(meta_, "import", region);
  return opts_.checkpoint();
}

Status MetaRecorder::set_artifact(const std::string& region, const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  map_set(meta_, "artifacts", region, id);
  return opts_.checkpoint();
}

Result<std::string> converge_tags(GlanceClient& g, const json& img, const std::vector<std::string>& wanted) {
  std::vector<std::string> have;
  if (auto it = img.find("tags"); it != img.end() && it->is_array())
    for (const json& t : *it)
      if (t.is_string()) have.push_back(t);
  size_t added = 0, removed = 0;
  for (const std::string& t : wanted)
    if (std::find(have.begin(), have.end(), t) == have.end()) {
      CH_TRY(g.add_tag(str(img, "id"), t));
      ++added;
    }
  for (const std::string& t : have)
    if (std::find(wanted.begin(), wanted.end(), t) == wanted.end()) {
      CH_TRY(g.delete_tag(str(img, "id"), t));
      ++removed;
    }
  std::string out;
  if (added) out += "+" + std::to_string(added) + (added == 1 ? " tag" : " tags");
  if (removed) out += (out.empty() ? "-" : ", -") + std::to_string(removed) + (removed == 1 ? " tag" : " tags");
  return out;
}

Result<OpenStackAuthConfig> openstack_auth_from_process() {
  std::error_code ec;
  std::string cwd = std::filesystem::current_path(ec).string();
  return resolve_openstack_auth(process_environment(), cwd);
}

Result<std::unique_ptr<OpenStackSession>> open_openstack_session() {
  auto s = std::make_unique<OpenStackSession>();
  CH_ASSIGN(auth, openstack_auth_from_process());
  s->auth = auth;
  HttpClient::Config config;
  config.ca_file = !auth.cacert.empty() ? auth.cacert : ca_file_from_env();
  // Glance keeps a PUT open while it stores and hashes: no whole-request limit.
  s->http = std::make_unique<HttpClient>(config);
  s->policy = RetryPolicy::from_env();
  CH_ASSIGN(token, keystone_authenticate(*s->http, s->policy, s->auth));
  s->token = std::move(token);
  return s;
}

Result<std::vector<std::string>> openstack_regions(const OpenStackImageConfig& c, const OpenStackAuthConfig& auth,
                                                   const json* catalog) {
  if (c.regions.size() == 1 && c.regions[0] == "all") {
    if (!catalog) return std::vector<std::string>{"all"};
    auto all = catalog_regions(*catalog, "image", auth.interface);
    if (all.empty()) return Error{"regions: all: the service catalog has no " + auth.interface + " image endpoint"};
    return all;
  }
  if (!c.regions.empty()) return c.regions;
  if (!auth.regions.empty()) return std::vector<std::string>{auth.regions[0]};
  if (catalog) {
    auto all = catalog_regions(*catalog, "image", auth.interface);
    if (all.size() == 1) return all;
  }
  if (!catalog) return std::vector<std::string>{};  // decided once the catalog is known
  return Error{"no region: set regions in the YAML, OS_REGION_NAME, or region_name in clouds.yaml"};
}

Result<LocalDigests> local_digests(const ImageMetadata& meta, const OpenStackImageConfig& c) {
  LocalDigests d;
  if (const MetaValue* cs = meta.get("checksums"); cs && cs->is_map()) {
    const MetaValue* s = cs->find("sha512");
    const MetaValue* m = cs->find("md5");
    if (s && s->is_scalar() && s->scalar().size() == 128 && m && m->is_scalar() && m->scalar().size() == 32) {
      d.sha512 = s->scalar();
      d.md5 = m->scalar();
      return d;
    }
  }
  CH_ASSIGN(digests, checksum_file(c.path, {"sha512", "md5"}));
  d.sha512 = digests[0].hex;
  d.md5 = digests[1].hex;
  return d;
}

Result<std::string> ensure_region_image(OpenStackSession& s, const OpenStackImageConfig& c,
                                        const LocalDigests& digests, const std::string& region,
                                        MetaRecorder& rec, const CloudStepOptions& opts, Progress* progress) {
  CH_ASSIGN(g, s.glance_in(region));
  std::string id = rec.import_id(region).value_or("");
  bool exists = false;
  if (!id.empty()) {
    CH_ASSIGN(img, g->get_image(id));
    if (img) {
      std::string st = str(*img, "status");
      if (st == "saving" || st == "importing") {
        // A killed run's upload: Glance puts the image back to queued once
        // it sees the connection gone (or finishes it); an import task
        // started by a killed run goes on without it.
        CH_ASSIGN(waited, wait_status(*g, id, {"queued", "active", "killed"},
                                      std::chrono::seconds(st == "importing" ? 600 : 20)));
        img = waited;
        st = img ? str(*img, "status") : "";
      }
      if (img && st == "active") {
        std::string bad = digest_mismatch(*img, digests);
        if (bad.empty()) {
          log_info("openstack: " + region + ": image " + id + " is already active with the file's digests");
          return id;
        }
        if (!opts.force)
          return Error{"image " + id + " in " + region + " is active but " + bad +
                       " (the file changed since: rollback, or --force replaces it)"};
        st = "replace";
      }
      // A failed glance-direct import leaves the data in the staging area
      // and Glance refuses to stage again (409 "has data on staging"), nor
      // imports from a queued image: such an image is made again.
      if (img && st == "queued" && c.import_method == "glance-direct") st = "queued, glance-direct";
      if (img && st == "queued") {
        exists = true;
        log_info("openstack: " + region + ": image " + id + " is queued (a run stopped before its data went): " +
                 "sending the data into it");
      } else if (img) {
        // saving/killed, or uploading: data staged by a killed glance-direct
        // run, complete or not; deleting drops the staged file too.
        log_info("openstack: " + region + ": deleting image " + id + " (status " + st + ", left by an earlier run)");
        CH_TRY(g->delete_image(id));
        CH_TRY(rec.remove_import_id(region));
        id.clear();
      }
      // Gone (404): never created, as a run killed between recording and
      // creating leaves it; created below with the same id.
    }
  }
  for (int attempt = 0; !exists; ++attempt) {
    if (id.empty()) {
      id = random_uuid();
      CH_TRY(rec.set_import_id(region, id));
    }
    log_info("openstack: " + region + ": creating image " + c.name + " (" + id + ", " + c.disk_format + ")");
    auto made = g->create_image(glance_create_body(c, id));
    if (made.ok()) break;
    if (made.error().http_status != 409 || attempt > 0) return made.error();
    // 409: the id is taken. A retried POST whose first answer was lost
    // made it (adopt it); a deleted image keeps its id forever (new id).
    CH_ASSIGN(img, g->get_image(id));
    if (img && str(*img, "name") == c.name && str(*img, "status") == "queued") break;
    if (img && str(*img, "name") == c.name && str(*img, "status") == "active" && digest_mismatch(*img, digests).empty())
      return id;
    id.clear();
  }

  auto advance_fn = [progress](uint64_t n) { advance(progress, n); };
  Status sent;
  if (c.import_method == "web-download") {
    log_info("openstack: " + region + ": image " + id + ": import web-download from " + c.source_url);
    sent = g->import_image(id, "web-download", c.source_url);
    if (!sent.ok()) return sent.error();
  } else {
    CH_ASSIGN(file, File::open_read(c.path));
    if (c.import_method == "glance-direct") {
      Status staged = g->stage(id, file.fd(), c.file_size, advance_fn);
      if (!staged.ok() && staged.error().http_status != 409) return staged.error().wrap("staging " + c.path);
      // 409 after a retry: the first PUT staged the data and its answer was lost.
      log_info("openstack: " + region + ": image " + id + ": staged, import glance-direct");
      sent = g->import_image(id, "glance-direct", "");
      if (!sent.ok() && sent.error().http_status != 409) return sent.error();
    } else {
      sent = g->upload(id, file.fd(), c.file_size, advance_fn);
      if (!sent.ok() && sent.error().http_status != 409) return sent.error().wrap("uploading " + c.path);
      // A 409 after a retry: the first PUT reached Glance and its answer was lost.
    }
  }
  bool interop = c.import_method != "upload";
  // An import task moves the image uploading/queued → importing → active,
  // or back to queued when it fails: wait for it to leave those first.
  std::optional<json> img;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(600);;) {
    CH_ASSIGN(now, wait_status(*g, id, {"active", "killed", "deleted", "deactivated", "queued"}, std::chrono::seconds(600)));
    img = now;
    if (!img || !interop || str(*img, "status") != "queued" || std::chrono::steady_clock::now() > deadline) break;
    // queued: the task has not started yet, or failed (Glance puts the
    // image back to queued); it is over when none of the image's tasks is
    // still pending or processing (ours was made before the POST answered).
    CH_ASSIGN(tasks, g->tasks(id));
    bool running = false;
    for (const json& t : tasks)
      running |= t.is_object() && (str(t, "status") == "pending" || str(t, "status") == "processing");
    if (!running) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (!img) return Error{"image " + id + " in " + region + " disappeared while its data was sent"};
  std::string st = str(*img, "status");
  if (st != "active") {
    if (!interop && !sent.ok()) return sent.error().wrap("uploading " + c.path);
    std::string why = "image " + id + " in " + region + " is " + st + " after the " +
                      (interop ? c.import_method + " import" : "upload") + ", not active";
    if (interop) {
      // The reason is in the import task's message; the stores that failed
      // in os_glance_failed_import.
      if (std::string failed = str(*img, "os_glance_failed_import"); !failed.empty())
        why += " (import failed for store(s) " + failed + ")";
      // The newest failed task is this run's.
      auto tasks = g->tasks(id);
      const json* last = nullptr;
      if (tasks.ok())
        for (const json& t : *tasks)
          if (t.is_object() && str(t, "status") == "failure" &&
              (!last || str(t, "created_at") > str(*last, "created_at")))
            last = &t;
      if (last) {
        std::string msg = str(*last, "message");
        std::replace(msg.begin(), msg.end(), '\n', ' ');
        msg = glance_limit_text(msg);
        why += ": task " + str(*last, "id") + ": " + (msg.empty() ? "failed (no message)" : msg);
      }
    }
    return Error{why};
  }
  std::string bad = digest_mismatch(*img, digests);
  if (!bad.empty()) return Error{"image " + id + " in " + region + ": " + bad};
  log_info("openstack: " + region + ": image " + id + " active, sha512 and md5 match the file");
  return id;
}

}  // namespace ch
