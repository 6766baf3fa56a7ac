#include "clouds/gcp/gcp_config.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "clouds/gcp/google_auth.h"
#include "clouds/signing/digest.h"

namespace ch {

namespace {

using json = nlohmann::json;

// Compute's guestOsFeatures types (images resource reference).
constexpr const char* kFeatures[] = {
    "UEFI_COMPATIBLE", "VIRTIO_SCSI_MULTIQUEUE", "GVNIC", "IDPF", "SEV_CAPABLE", "SEV_SNP_CAPABLE",
    "SEV_LIVE_MIGRATABLE", "SEV_LIVE_MIGRATABLE_V2", "TDX_CAPABLE", "SECURE_BOOT", "MULTI_IP_SUBNET",
    "WINDOWS", "SUSPEND_RESUME_COMPATIBLE"};

std::string shorten(std::string s, std::string_view original, size_t max) {
  if (s.size() <= max) return s;
  std::string h = sha256_hex(original).substr(0, 8);
  s = s.substr(0, max - 9);
  while (!s.empty() && (s.back() == '-' || s.back() == '_')) s.pop_back();
  return s + "-" + h;
}

Result<std::string> read_file(const std::string& path, const std::string& key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{key + ": cannot read " + path};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A key for shieldedInstanceInitialState: {content: base64, fileType}. A
// certificate (PEM or DER) goes as DER, X509; anything else (a dbx hash
// list) as BIN.
Result<json> shielded_key(const ImageMetadata& meta, const std::string& file, const std::string& key) {
  std::string path = meta.resolve(file);
  CH_ASSIGN(data, read_file(path, key));
  if (data.empty()) return Error{key + ": " + path + " is empty"};
  std::string der;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())), BIO_free);
  if (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    unsigned char* out = nullptr;
    int n = i2d_X509(x, &out);
    if (n > 0) der.assign(reinterpret_cast<char*>(out), n);
    OPENSSL_free(out);
    X509_free(x);
    if (der.empty()) return Error{key + ": " + path + ": cannot encode the certificate"};
    return json{{"content", base64_encode(bytes_of(der))}, {"fileType", "X509"}};
  }
  if (data.find("-----BEGIN") != std::string::npos) return Error{key + ": " + path + " is PEM but not a certificate"};
  const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data());
  if (X509* x = d2i_X509(nullptr, &p, static_cast<long>(data.size()))) {
    X509_free(x);
    return json{{"content", base64_encode(bytes_of(data))}, {"fileType", "X509"}};
  }
  return json{{"content", base64_encode(bytes_of(data))}, {"fileType", "BIN"}};
}

std::vector<std::string> scalars(const MetaValue* v) {
  std::vector<std::string> out;
  if (!v || v->is_null()) return out;
  if (v->is_scalar()) {
    out.push_back(v->scalar());
  } else if (v->is_list()) {
    for (const MetaValue& i : v->list())
      if (i.is_scalar() && !i.is_null()) out.push_back(i.scalar());
  }
  return out;
}

}  // namespace

std::string gcp_image_name(std::string_view text) {
  std::string s;
  for (char ch : text) {
    char c = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (ok) s += c;
    else if (!s.empty() && s.back() != '-') s += '-';
  }
  while (!s.empty() && s.back() == '-') s.pop_back();
  if (s.empty() || !(s[0] >= 'a' && s[0] <= 'z')) s = "image-" + s;
  while (!s.empty() && s.back() == '-') s.pop_back();
  return shorten(s, text, 63);
}

std::string gcp_label_text(std::string_view text, bool key) {
  std::string s;
  for (char ch : text) {
    char c = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    s += ok ? c : '_';
  }
  if (key && (s.empty() || !(s[0] >= 'a' && s[0] <= 'z'))) s = "k" + s;
  return shorten(s, text, 63);
}

std::vector<std::string> gcp_default_features(const std::string& architecture, const std::string& firmware) {
  std::vector<std::string> f = {"VIRTIO_SCSI_MULTIQUEUE", "GVNIC"};
  if (firmware == "uefi" || architecture == "ARM64") f.push_back("UEFI_COMPATIBLE");
  // Confidential VMs (AMD SEV) are x86 and boot with UEFI.
  if (architecture == "X86_64" && firmware == "uefi") f.push_back("SEV_CAPABLE");
  return f;
}

Result<GcpConfig> read_gcp_config(const ImageMetadata& meta, const std::string& env_project) {
  GcpConfig c;
  const MetaValue* g = meta.get("gcp");
  if (g && !g->is_null() && !g->is_map()) return Error{"gcp must be a mapping"};
  auto get = [&](const char* key) -> std::string {
    const MetaValue* v = g ? g->find(key) : nullptr;
    return v && v->is_scalar() && !v->is_null() ? v->scalar() : "";
  };
  auto list = [&](const char* key) { return scalars(g ? g->find(key) : nullptr); };
  static const char* kKnown[] = {"project", "image_name", "family", "labels", "guest_os_features", "licenses",
                                 "storage_locations", "image_users", "shielded_instance_initial_state",
                                 "obsolete_on", "delete_on", "upload_chunk_size"};
  if (g && g->is_map())
    for (const auto& [k, v] : g->map())
      if (std::find_if(std::begin(kKnown), std::end(kKnown), [&](const char* n) { return k == n; }) == std::end(kKnown))
        return Error{"gcp." + k + ": unknown key"};

  c.project = get("project");
  if (c.project.empty()) c.project = env_project;
  if (!c.project.empty()) {
    bool ok = c.project.size() >= 6 && c.project.size() <= 63;
    for (char ch : c.project) ok &= (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == ':' || ch == '.';
    if (!ok) return Error{"gcp.project '" + c.project + "' is not a project id"};
  }
  std::string name = get("image_name");
  if (name.empty()) name = meta.get_string("name").value_or("");
  if (name.empty()) return Error{"no name (or gcp.image_name) to name the image"};
  c.image_name = gcp_image_name(name);
  if (!get("image_name").empty() && c.image_name != get("image_name"))
    return Error{"gcp.image_name '" + get("image_name") + "' is not a valid image name (try '" + c.image_name + "')"};
  c.family = get("family");
  if (!c.family.empty() && gcp_image_name(c.family) != c.family)
    return Error{"gcp.family '" + c.family + "' is not a valid family name (try '" + gcp_image_name(c.family) + "')"};
  c.description = meta.get_string("description").value_or("");

  std::string arch = meta.get_string("arch").value_or("x86_64");
  if (arch == "x86_64" || arch == "amd64") c.architecture = "X86_64";
  else if (arch == "aarch64" || arch == "arm64") c.architecture = "ARM64";
  else return Error{"arch '" + arch + "' is not x86_64 or aarch64"};
  std::string firmware = meta.get_string("firmware").value_or(c.architecture == "ARM64" ? "uefi" : "bios");
  if (firmware != "uefi" && firmware != "bios") return Error{"firmware '" + firmware + "' is not uefi or bios"};
  if (firmware == "bios" && c.architecture == "ARM64") return Error{"firmware bios: Compute Engine boots ARM64 with UEFI only"};

  const MetaValue* feats = g ? g->find("guest_os_features") : nullptr;
  c.guest_os_features = feats && !feats->is_null() ? list("guest_os_features")
                                                  : gcp_default_features(c.architecture, firmware);
  for (const std::string& f : c.guest_os_features)
    if (std::find_if(std::begin(kFeatures), std::end(kFeatures), [&](const char* k) { return f == k; }) == std::end(kFeatures)) {
      std::string known;
      for (const char* k : kFeatures) known += (known.empty() ? "" : ", ") + std::string(k);
      return Error{"gcp.guest_os_features: unknown feature '" + f + "' (" + known + ")"};
    }

  if (const MetaValue* t = meta.get("tags"); t && t->is_map())
    for (const auto& [k, v] : t->map())
      if (v.is_scalar() && !v.is_null()) c.labels[gcp_label_text(k, true)] = gcp_label_text(v.scalar(), false);
  if (const MetaValue* l = g ? g->find("labels") : nullptr; l && !l->is_null()) {
    if (!l->is_map()) return Error{"gcp.labels must be a mapping"};
    for (const auto& [k, v] : l->map())
      if (v.is_scalar() && !v.is_null()) c.labels[gcp_label_text(k, true)] = gcp_label_text(v.scalar(), false);
  }
  if (c.labels.size() > 64) return Error{"gcp.labels: more than 64 labels"};
  c.licenses = list("licenses");
  c.storage_locations = list("storage_locations");
  c.image_users = list("image_users");
  for (const std::string& m : c.image_users)
    if (m.find(':') == std::string::npos)
      return Error{"gcp.image_users: '" + m + "' is not an IAM member (user:, group:, serviceAccount:, domain:)"};
  CH_ASSIGN(pub, meta.get_bool("public"));
  c.is_public = pub.value_or(false);

  if (const MetaValue* s = g ? g->find("shielded_instance_initial_state") : nullptr; s && !s->is_null()) {
    if (!s->is_map()) return Error{"gcp.shielded_instance_initial_state must be a mapping (pk, keks, dbs, dbxs)"};
    for (const auto& [k, v] : s->map()) {
      std::string key = "gcp.shielded_instance_initial_state." + k;
      if (k == "pk") {
        if (!v.is_scalar()) return Error{key + " must be one file"};
        CH_ASSIGN(j, shielded_key(meta, v.scalar(), key));
        c.shielded["pk"] = j;
      } else if (k == "keks" || k == "dbs" || k == "dbxs") {
        json arr = json::array();
        for (const std::string& f : scalars(&v)) {
          CH_ASSIGN(j, shielded_key(meta, f, key));
          arr.push_back(j);
        }
        c.shielded[k] = arr;
      } else {
        return Error{key + ": unknown key (pk, keks, dbs, dbxs)"};
      }
    }
  }

  if (auto eol = meta.get_string("end_of_life")) {
    CH_ASSIGN(on, end_of_life_utc(*eol));
    c.deprecated_on = on;
  }
  for (auto [key, out] : {std::pair{"obsolete_on", &c.obsolete_on}, std::pair{"delete_on", &c.delete_on}}) {
    std::string v = get(key);
    if (v.empty()) continue;
    CH_ASSIGN(on, end_of_life_utc(v, "gcp." + std::string(key)));
    *out = on;
  }
  if (std::string cs = get("upload_chunk_size"); !cs.empty()) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(cs.c_str(), &end, 10);
    if (*end || v == 0 || v % kGcsChunkQuantum != 0)
      return Error{"gcp.upload_chunk_size '" + cs + "' is not a positive multiple of 262144 (256 KiB)"};
    c.chunk_size = v;
  }
  return c;
}

json gcp_image_body(const GcpConfig& c, const std::string& source_url) {
  json body = {{"name", c.image_name}, {"rawDisk", {{"source", source_url}}}, {"architecture", c.architecture}};
  if (!c.family.empty()) body["family"] = c.family;
  if (!c.description.empty()) body["description"] = c.description;
  if (!c.labels.empty()) body["labels"] = c.labels;
  json feats = json::array();
  for (const std::string& f : c.guest_os_features) feats.push_back({{"type", f}});
  body["guestOsFeatures"] = feats;
  if (!c.licenses.empty()) body["licenses"] = c.licenses;
  if (!c.storage_locations.empty()) body["storageLocations"] = c.storage_locations;
  if (!c.shielded.empty()) body["shieldedInstanceInitialState"] = c.shielded;
  return body;
}

}  // namespace ch
