#include "clouds/azure/azure_config.h"

#include "base/time.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <regex>

namespace ch {

namespace {

constexpr uint64_t kMaxPart = 2147483647;

bool digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A decimal part ≤ kMaxPart, or nullopt.
std::optional<uint64_t> part(std::string_view s) {
  if (!digits(s) || s.size() > 10) return std::nullopt;
  uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  if (v > kMaxPart) return std::nullopt;
  return v;
}

std::string joined(uint64_t a, uint64_t b, uint64_t c) {
  return std::to_string(a) + "." + std::to_string(b) + "." + std::to_string(c);
}

// The `azure` mapping's KEY as text; "" when absent or null.
std::string text(const MetaValue* azure, std::string_view key) {
  const MetaValue* v = azure ? azure->find(key) : nullptr;
  return v && v->is_scalar() && !v->is_null() ? v->scalar() : "";
}

Result<std::optional<bool>> boolean(const MetaValue* azure, std::string_view key) {
  std::string s = text(azure, key);
  if (s.empty()) return std::optional<bool>();
  std::string l = s;
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  if (l == "true" || l == "yes" || l == "on") return std::optional<bool>(true);
  if (l == "false" || l == "no" || l == "off") return std::optional<bool>(false);
  return Error{"azure." + std::string(key) + " must be true or false (got '" + s + "')"};
}

std::vector<std::string> strings(const MetaValue* v) {
  std::vector<std::string> out;
  if (!v) return out;
  if (v->is_scalar() && !v->is_null()) out.push_back(v->scalar());
  if (v->is_list())
    for (const MetaValue& i : v->list())
      if (i.is_scalar() && !i.is_null()) out.push_back(i.scalar());
  return out;
}

// Azure names: resource groups 1-90 of [-\w._()], galleries [A-Za-z0-9._],
// definitions [A-Za-z0-9._-]; all 1-80 chars and not ending in '.'.
bool valid_name(std::string_view s, std::string_view extra, size_t max_len) {
  if (s.empty() || s.size() > max_len || s.back() == '.') return false;
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || extra.find(c) != std::string_view::npos;
  });
}

// azure.create: true (all four) or a list of them.
Status read_create(const MetaValue* az, AzureConfig* c) {
  const MetaValue* create = az->find("create");
  if (create && create->is_scalar() && !create->is_null()) {
    CH_ASSIGN(all, boolean(az, "create"));
    c->create_resource_group = c->create_storage_account = c->create_container = c->create_gallery =
        all.value_or(false);
  } else {
    for (const std::string& what : strings(create)) {
      if (what == "resource_group") c->create_resource_group = true;
      else if (what == "storage_account") c->create_storage_account = true;
      else if (what == "container") c->create_container = true;
      else if (what == "gallery") c->create_gallery = true;
      else return Error{"azure.create: '" + what + "' is not resource_group, storage_account, container or gallery"};
    }
  }

  return {};
}

}  // namespace

bool is_azure_gallery_version(std::string_view v) {
  size_t a = v.find('.');
  if (a == std::string_view::npos) return false;
  size_t b = v.find('.', a + 1);
  if (b == std::string_view::npos) return false;
  return part(v.substr(0, a)) && part(v.substr(a + 1, b - a - 1)) && part(v.substr(b + 1));
}

Result<std::string> azure_gallery_version(std::string_view release) {
  std::string r(release);
  std::smatch m;
  auto fail = [&] {
    return Error{"cannot make an Azure gallery version (N.N.N) of release '" + r +
                 "': set azure.image_version"};
  };
  // Date-index forms first: their middle dot would read as N.N.N otherwise.
  static const std::regex kDated(R"(^(\d+)(?:\.(\d+))?[-.](\d{8})\.(\d+)$)");
  if (std::regex_match(r, m, kDated)) {
    auto major = part(m[1].str());
    auto date = part(m[3].str());
    auto index = part(m[4].str());
    if (!major || !date || !index) return fail();
    if (!m[2].matched) return joined(*major, *date, *index);
    auto minor = part(m[2].str());
    if (!minor || *index >= 100) return fail();
    uint64_t third = *date * 100 + *index;
    if (third > kMaxPart) return fail();
    return joined(*major, *minor, third);
  }
  static const std::regex kSemver(R"(^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-_]r(\d+))?$)");
  if (!std::regex_match(r, m, kSemver)) return fail();
  auto a = part(m[1].str());
  auto b = m[2].matched ? part(m[2].str()) : std::optional<uint64_t>(0);
  auto c = m[3].matched ? part(m[3].str()) : std::optional<uint64_t>(0);
  auto k = m[4].matched ? part(m[4].str()) : std::optional<uint64_t>(0);
  if (!a || !b || !c || !k) return fail();
  if (!m[4].matched) return joined(*a, *b, *c);
  if (!m[3].matched) return joined(*a, *b, *k);  // N.N-rK
  if (*k >= 100) return fail();
  uint64_t third = *c * 100 + *k;
  if (third > kMaxPart) return fail();
  return joined(*a, *b, third);
}

Result<AzureConfig> read_azure_config(const ImageMetadata& meta, const std::string& subscription_from_env) {
  AzureConfig c;
  const MetaValue* az = meta.get("azure");
  if (!az || !az->is_map()) return Error{"no `azure` mapping (resource_group, gallery, image_definition, ...)"};
  auto need = [&](std::string_view key, std::string* out) -> Status {
    *out = text(az, key);
    if (out->empty()) return Error{"azure." + std::string(key) + " is missing"};
    return {};
  };
  c.subscription_id = text(az, "subscription_id");
  if (c.subscription_id.empty()) c.subscription_id = subscription_from_env;
  if (c.subscription_id.empty())
    return Error{"no Azure subscription: set azure.subscription_id or AZURE_SUBSCRIPTION_ID"};
  CH_TRY(need("resource_group", &c.resource_group));
  CH_TRY(need("gallery", &c.gallery));
  CH_TRY(need("publisher", &c.publisher));
  CH_TRY(need("offer", &c.offer));
  std::string definition, sku;
  CH_TRY(need("image_definition", &definition));
  CH_TRY(need("sku", &sku));
  if (!valid_name(c.resource_group, "-_.()", 90))
    return Error{"azure.resource_group '" + c.resource_group + "' is not a valid resource group name"};
  if (!valid_name(c.gallery, "._", 80))
    return Error{"azure.gallery '" + c.gallery + "' is not a valid gallery name (letters, digits, '.', '_')"};
  c.storage_resource_group = text(az, "storage_resource_group");
  if (c.storage_resource_group.empty()) c.storage_resource_group = c.resource_group;

  // Regions: `regions` (or all); the home location first.
  std::vector<std::string> regions = meta.get_list("regions");
  c.all_regions = regions.size() == 1 && regions[0] == "all";
  c.location = text(az, "location");
  if (c.location.empty() && !c.all_regions && !regions.empty()) c.location = regions[0];
  if (c.location.empty()) return Error{"azure.location is missing (or list `regions`, the first is home)"};
  c.regions.push_back(c.location);
  if (!c.all_regions) {
    for (const std::string& r : regions) {
      if (r == "all") return Error{"regions: 'all' cannot be combined with named regions"};
      if (!valid_name(r, "", 40))
        return Error{"regions: '" + r + "' is not an Azure region name (like westeurope)"};
      if (std::find(c.regions.begin(), c.regions.end(), r) == c.regions.end()) c.regions.push_back(r);
    }
  }

  // Architecture and generations.
  std::string arch = meta.get_string("arch").value_or("x86_64");
  if (arch == "x86_64" || arch == "amd64" || arch == "x64") c.architecture = "x64";
  else if (arch == "aarch64" || arch == "arm64") c.architecture = "Arm64";
  else return Error{"arch '" + arch + "' is not supported on Azure (x86_64, aarch64)"};
  std::string firmware = meta.get_string("firmware").value_or("uefi");
  if (firmware != "uefi" && firmware != "bios" && firmware != "uefi-preferred" && firmware != "hybrid")
    return Error{"firmware '" + firmware + "' is not uefi, bios, hybrid or uefi-preferred"};
  bool bios = firmware != "uefi";
  if (bios && c.architecture == "Arm64" && firmware == "bios")
    return Error{"firmware bios is not possible for arm64 on Azure (Hyper-V generation 2, UEFI only)"};
  std::vector<std::string> gens = strings(az->find("hyper_v_generations"));
  if (gens.empty()) {
    gens = {"V2"};
    if (bios && c.architecture == "x64") gens = {"V2", "V1"};
  }
  std::string gen1_name = text(az, "image_definition_gen1");
  if (gen1_name.empty()) gen1_name = definition + "-gen1";
  std::sort(gens.begin(), gens.end(), std::greater<>());  // V2 first
  gens.erase(std::unique(gens.begin(), gens.end()), gens.end());
  for (const std::string& g : gens) {
    if (g == "V2") c.definitions.push_back({definition, "V2", sku});
    else if (g == "V1" && c.architecture == "Arm64")
      return Error{"azure.hyper_v_generations: V1 is not possible for arm64 (Gen2 only)"};
    else if (g == "V1") c.definitions.push_back({gen1_name, "V1", sku + "-gen1"});
    else return Error{"azure.hyper_v_generations: '" + g + "' is not V1 or V2"};
  }
  if (gens.size() == 1 && gens[0] == "V1") c.definitions[0].name = definition, c.definitions[0].sku = sku;
  for (const AzureDefinition& d : c.definitions)
    if (!valid_name(d.name, "._-", 80))
      return Error{"image definition name '" + d.name + "' is not valid (letters, digits, '.', '_', '-')"};

  // Version.
  c.version = text(az, "image_version");
  if (!c.version.empty()) {
    if (!is_azure_gallery_version(c.version))
      return Error{"azure.image_version '" + c.version + "' is not N.N.N (each part 0..2147483647)"};
  } else {
    std::string release = meta.get_string("release").value_or(meta.get_string("version").value_or(""));
    if (release.empty()) return Error{"no azure.image_version and no `release` to make it from"};
    CH_ASSIGN(v, azure_gallery_version(release));
    c.version = v;
  }

  std::string source = text(az, "source");
  if (source == "managed-image") c.managed_image = true;
  else if (!source.empty() && source != "blob")
    return Error{"azure.source '" + source + "' is not blob or managed-image"};
  if (std::string n = text(az, "replica_count"); !n.empty()) {
    auto v = part(n);
    if (!v || *v < 1 || *v > 100) return Error{"azure.replica_count '" + n + "' is not 1..100"};
    c.replica_count = static_cast<int>(*v);
  }
  if (std::string t = text(az, "storage_account_type"); !t.empty()) {
    if (t != "Standard_LRS" && t != "Standard_ZRS" && t != "Premium_LRS")
      return Error{"azure.storage_account_type '" + t + "' is not Standard_LRS, Standard_ZRS or Premium_LRS"};
    c.storage_account_type = t;
  }
  CH_ASSIGN(excl, boolean(az, "exclude_from_latest"));
  c.exclude_from_latest = excl.value_or(false);

  CH_TRY(read_create(az, &c));
  if (const MetaValue* f = az->find("features"); f && f->is_map()) {
    if (std::string d = text(f, "disk_controller_types"); !d.empty()) c.disk_controller_types = d;
    CH_ASSIGN(an, boolean(f, "accelerated_networking"));
    c.accelerated_networking = an.value_or(true);
    CH_ASSIGN(tl, boolean(f, "trusted_launch"));
    c.trusted_launch = tl.value_or(false);
  }
  if (const MetaValue* cm = az->find("community"); cm && cm->is_map()) {
    CH_ASSIGN(en, boolean(cm, "enable"));
    c.community_enable = en.value_or(false);
    c.public_name_prefix = text(cm, "public_name_prefix");
    c.publisher_uri = text(cm, "publisher_uri");
    c.publisher_contact = text(cm, "publisher_contact");
    c.community_eula = text(cm, "eula");
    // Azure refuses a community gallery without all four.
    if (!c.public_name_prefix.empty() &&
        (c.publisher_uri.empty() || c.publisher_contact.empty() || c.community_eula.empty()))
      return Error{"azure.community: a community gallery needs public_name_prefix, publisher_uri, "
                   "publisher_contact and eula"};
  }
  c.description = text(az, "description");
  if (c.description.empty()) c.description = meta.get_string("description").value_or("");
  c.eula = text(az, "eula");
  c.release_note_uri = text(az, "release_note_uri");
  c.privacy_statement_uri = text(az, "privacy_statement_uri");

  CH_ASSIGN(pub, meta.get_bool("public"));
  c.is_public = pub.value_or(false);
  CH_ASSIGN(eol, end_of_life_utc(meta.get_string("end_of_life").value_or("")));
  c.end_of_life = eol;
  if (const MetaValue* t = meta.get("tags"); t && t->is_map())
    for (const auto& [k, v] : t->map())
      if (v.is_scalar() && !v.is_null()) c.tags.emplace_back(k, v.scalar());
  if (auto name = meta.get_string("name")) c.tags.emplace_back("Name", *name);
  return c;
}

Result<AzureStorageOptions> read_azure_storage_options(const ImageMetadata& meta,
                                                       const std::string& subscription_from_env) {
  AzureStorageOptions o;
  const MetaValue* az = meta.get("azure");
  if (!az || !az->is_map()) return o;
  AzureConfig c;
  CH_TRY(read_create(az, &c));
  o.create_storage_account = c.create_storage_account;
  o.create_container = c.create_container;
  o.create_resource_group = c.create_resource_group;
  o.subscription_id = text(az, "subscription_id");
  if (o.subscription_id.empty()) o.subscription_id = subscription_from_env;
  o.resource_group = text(az, "storage_resource_group");
  if (o.resource_group.empty()) o.resource_group = text(az, "resource_group");
  if (std::string g = text(az, "upload_merge_gap"); !g.empty()) {
    auto v = part(g);
    if (!v || *v > (4u << 20))
      return Error{"azure.upload_merge_gap '" + g + "' is not a byte count of 0 to 4194304"};
    o.merge_gap = *v;
  }
  o.location = text(az, "location");
  if (o.location.empty()) {
    std::vector<std::string> regions = meta.get_list("regions");
    if (!regions.empty() && regions[0] != "all") o.location = regions[0];
  }
  if (o.create_storage_account && (o.subscription_id.empty() || o.resource_group.empty() || o.location.empty()))
    return Error{"azure.create storage_account needs azure.subscription_id (or AZURE_SUBSCRIPTION_ID), "
                 "azure.resource_group and azure.location"};
  return o;
}

}  // namespace ch
