#include "clouds/alicloud/alicloud_config.h"

#include <algorithm>

#include "base/env.h"
#include "clouds/poll.h"
#include "clouds/signing/digest.h"
#include "helper/output.h"

namespace ch {

namespace {

bool region_name(const std::string& r) {
  return !r.empty() && std::all_of(r.begin(), r.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

const MetaValue* ali_field(const ImageMetadata& meta, std::string_view key) {
  const MetaValue* a = meta.get("alicloud");
  const MetaValue* v = a ? a->find(key) : nullptr;
  return v && v->is_scalar() && !v->is_null() ? v : nullptr;
}

Result<bool> ali_bool(const ImageMetadata& meta, std::string_view key, bool dflt) {
  const MetaValue* v = ali_field(meta, key);
  if (!v) return dflt;
  std::string s = v->scalar();
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  return Error{"alicloud." + std::string(key) + " must be true or false (got '" + v->scalar() + "')"};
}

}  // namespace

Result<std::pair<std::string, std::string>> parse_oss_url(const std::string& url) {
  if (url.rfind("oss://", 0) != 0) return Error{"storage_url '" + url + "' is not oss://bucket/prefix/"};
  std::string rest = url.substr(6);
  size_t slash = rest.find('/');
  std::string bucket = rest.substr(0, slash), prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
  // OSS bucket names: 3-63 of a-z 0-9 -, not starting or ending with -.
  bool ok = bucket.size() >= 3 && bucket.size() <= 63 && bucket.front() != '-' && bucket.back() != '-' &&
            std::all_of(bucket.begin(), bucket.end(),
                        [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
  if (!ok) return Error{"storage_url '" + url + "': '" + bucket + "' is not an OSS bucket name (3-63 of a-z 0-9 -)"};
  return std::pair{bucket, prefix};
}

Result<AliConfig> read_alicloud_config(const ImageMetadata& meta) {
  AliConfig c;
  c.name = meta.get_string("name").value_or("");
  if (c.name.empty()) return Error{"no name (the ECS image name)"};
  // ECS ImageName: 2-128 characters, starting with a letter, not http(s)://.
  if (c.name.size() < 2 || c.name.size() > 128 || !std::isalpha(static_cast<unsigned char>(c.name[0])))
    return Error{"name '" + c.name + "' is not a valid ECS image name (2-128 characters, starting with a letter)"};
  c.description = meta.get_string("description").value_or("");
  std::vector<std::string> regions = meta.get_list("regions");
  if (regions.empty()) regions = meta.get_list("region");
  if (const MetaValue* r = ali_field(meta, "region")) c.home_region = r->scalar();
  if (c.home_region.empty() && !regions.empty()) c.home_region = regions[0];
  if (c.home_region.empty()) return Error{"no regions (the first is where the image is imported)"};
  c.regions.push_back(c.home_region);
  for (const std::string& r : regions) {
    if (r == "all") return Error{"regions: all is not supported for alicloud; list the regions"};
    if (std::find(c.regions.begin(), c.regions.end(), r) == c.regions.end()) c.regions.push_back(r);
  }
  for (const std::string& r : c.regions)
    if (!region_name(r)) return Error{"region '" + r + "' is not an Alibaba Cloud region id (cn-hangzhou, eu-central-1, ...)"};
  auto storage = meta.get_string("storage_url");
  if (!storage) return Error{"no storage_url (set it to oss://bucket/prefix/)"};
  CH_ASSIGN(bp, parse_oss_url(*storage));
  c.bucket = bp.first;
  c.prefix = bp.second;
  std::string arch = meta.get_string("arch").value_or("x86_64");
  if (arch == "x86_64") c.architecture = "x86_64";
  else if (arch == "aarch64" || arch == "arm64") c.architecture = "arm64";
  else return Error{"arch '" + arch + "' is not x86_64 or aarch64"};
  std::string fw = meta.get_string("firmware").value_or(c.architecture == "arm64" ? "uefi" : "bios");
  if (fw == "uefi") c.boot_mode = "UEFI";
  else if (fw == "bios") c.boot_mode = "BIOS";
  else return Error{"firmware '" + fw + "' is not uefi or bios"};
  if (c.architecture == "arm64" && c.boot_mode == "BIOS") return Error{"arm64 images boot with UEFI only (firmware: uefi)"};
  CH_ASSIGN(pub, meta.get_bool("public"));
  c.is_public = pub.value_or(false);
  if (const MetaValue* t = meta.get("tags"); t && t->is_map())
    for (const auto& [k, v] : t->map())
      if (v.is_scalar()) c.tags.emplace_back(k, v.scalar());
  if (c.tags.size() > 20) return Error{"tags: ECS allows at most 20 tags per image"};
  if (const MetaValue* p = ali_field(meta, "platform")) c.platform = p->scalar();
  CH_ASSIGN(nvme, ali_bool(meta, "nvme", true));
  c.nvme = nvme;
  CH_ASSIGN(del, ali_bool(meta, "delete_object_after_import", false));
  c.delete_object_after_import = del;
  if (const MetaValue* p = ali_field(meta, "part_size")) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(p->scalar().c_str(), &end, 10);
    if (!end || *end || v < 100 * 1024 || v > (5ull << 30))
      return Error{"alicloud.part_size '" + p->scalar() + "' is outside OSS's 102400..5368709120 bytes"};
    c.part_size = v;
  }
  if (const MetaValue* s = ali_field(meta, "oss_signature")) {
    if (s->scalar() == "v1") c.oss_signature = OssSignature::kV1;
    else if (s->scalar() != "v4") return Error{"alicloud.oss_signature must be v4 or v1 (got '" + s->scalar() + "')"};
  }
  return c;
}

Result<std::unique_ptr<AliSession>> open_alicloud_session(const AliConfig& c) {
  auto s = std::make_unique<AliSession>();
  s->env = process_environment();
  std::string home = s->env.count("HOME") ? s->env["HOME"] : "";
  CH_ASSIGN(creds, resolve_alicloud_credentials(s->env, home));
  CH_ASSIGN(endpoints, alicloud_endpoints(s->env));
  log_info("alicloud: credentials from " + creds.source);
  HttpClient::Config config;
  config.max_in_flight = 16;
  config.ca_file = ca_file_from_env();
  s->http = std::make_unique<HttpClient>(config);
  s->client = std::make_unique<AliClient>(*s->http, std::move(creds), std::move(endpoints), c.oss_signature);
  return s;
}

std::string ali_client_token(const std::vector<std::string>& parts) {
  std::string joined;
  for (const std::string& p : parts) joined += p + '\n';
  return "ch-" + sha256_hex(joined).substr(0, 40);
}

Result<std::optional<AliImage>> describe_image(AliClient& c, const std::string& region, const std::string& id,
                                               const std::string& name) {
  // DescribeImages lists only Available images unless Status names the others.
  std::vector<std::pair<std::string, std::string>> p = {
      {"Status", "Creating,Waiting,Available,UnAvailable,CreateFailed,Deprecated"}, {"ImageOwnerAlias", "self"}};
  if (!id.empty()) p.emplace_back("ImageId", id);
  if (!name.empty()) p.emplace_back("ImageName", name);
  CH_ASSIGN(j, c.ecs(region, "DescribeImages", p));
  const auto& list = j.value("/Images/Image"_json_pointer, nlohmann::json::array());
  for (const auto& i : list) {
    AliImage img{i.value("ImageId", ""), i.value("ImageName", ""), i.value("Status", ""), i.value("Progress", ""), region};
    if ((id.empty() || img.id == id) && (name.empty() || img.name == name)) return std::optional<AliImage>(img);
  }
  return std::optional<AliImage>();
}

Status wait_image_available(AliClient& c, const std::string& region, const std::string& id,
                            const std::function<void(const std::string&)>& on_progress) {
  PollOptions po;
  po.initial = std::chrono::milliseconds(5000);
  po.max = std::chrono::milliseconds(30000);
  po.timeout = std::chrono::seconds(4 * 3600);  // ImportImage of a large image takes hours
  return poll_until("image " + id + " in " + region + " to become Available", po,
                    [&](std::string* state) -> Result<bool> {
                      CH_ASSIGN(img, describe_image(c, region, id));
                      if (!img) return Error{"image " + id + " in " + region + " disappeared"};
                      *state = img->status + (img->progress.empty() ? "" : " " + img->progress);
                      if (on_progress) on_progress(img->progress);
                      if (img->status == "Available") return true;
                      if (img->status == "CreateFailed" || img->status == "UnAvailable")
                        return Error{"image " + id + " in " + region + " ended " + img->status};
                      return false;
                    });
}

}  // namespace ch
