// End-to-end tests of `cloud_helper upload/import/publish/rollback` for
// cloud: alicloud: the built binary, run in a temporary directory with a
// hermetic environment, against the fake OSS and ECS of
// tests/alicloud/fake_alicloud.py (signatures verified there with the test
// AccessKey). Results are read back from the fake's control API: the object's
// bytes compared with the local image, images with their state, boot mode,
// tags and share permission.
//
// Every test has its own bucket and image name, so tests running in parallel
// never see each other's state; the fake's global controls are keyed to one
// test: throttle rules by the test's image name, copy_fail_regions and image
// quotas by regions only that test uses (cn-shenzhen; cn-beijing, us-west-1,
// ap-northeast-1).
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "clouds/operations.h"
#include "metadata/image_metadata.h"
#include "tests/test_aws_env.h"
#include "tests/step_fixture.h"
#include "tests/test_util.h"

namespace ch::test {
namespace {

using nlohmann::json;

constexpr char kHome[] = "cn-hangzhou";
constexpr char kOther[] = "eu-central-1";

class AlicloudSteps : public ::testing::Test, protected StepFixture {
 protected:
  void SetUp() override {
    oss_ = env_or("CLOUD_HELPER_ALICLOUD_OSS_ENDPOINT");
    ecs_ = env_or("CLOUD_HELPER_ALICLOUD_ECS_ENDPOINT");
    if (oss_.empty() || ecs_.empty()) GTEST_SKIP() << "CLOUD_HELPER_ALICLOUD_*_ENDPOINT unset (run through ctest)";
    name_ = unique_name("img");
    bucket_ = unique_name("b").substr(0, 63);
    fake("POST", "/_fake/buckets", json{{"name", bucket_}, {"region", kHome}}.dump());
  }

  // Nothing inherited but PATH: no developer credentials leak in.
  std::string env_text(const std::string& extra_env) const {
    std::string creds = extra_env.find("ALIBABA_CLOUD_ACCESS_KEY") == std::string::npos && !use_profile_
                            ? "ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_AK_ID ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_AK_SECRET "
                            : "";
    return hermetic_env("ALIBABA_CLOUD_OSS_ENDPOINT=" + oss_ + " ALIBABA_CLOUD_ECS_ENDPOINT=" + ecs_ +
                        " CLOUD_HELPER_RETRY_SCALE=0.01 CLOUD_HELPER_POLL_SCALE=0.01 " + creds + extra_env);
  }
  std::string command(const std::string& args, const std::string& extra_env) const {
    return command_with(env_text(extra_env), args);
  }
  StepRun run(const std::string& args, const std::string& extra_env = "") const {
    return run_with(env_text(extra_env), args);
  }
  // Runs ACTIONS in order on image.yaml, each expected to exit 0.
  void steps(std::initializer_list<const char*> actions, const std::string& extra_env = "") {
    for (const char* a : actions) {
      StepRun r = run(std::string(a) + " image.yaml", extra_env);
      ASSERT_EQ(r.code, 0) << a << ":\n" << r.err << r.out;
    }
  }


  // A sparse raw disk of SIZE bytes with data runs (seeded pattern).
  void make_disk(uint64_t size, uint64_t seed = 1) {
    const uint64_t MiB = 1 << 20;
    Status s = make_sparse_file(dir_.file("disk.img"), size,
                                {{0, MiB + 4096}, {size / 4 + 12345, 700 * 1024}, {size / 2, 2 * MiB},
                                 {size - MiB - 777, MiB}},
                                seed);
    ASSERT_TRUE(s.ok()) << s.message();
  }

  std::string yaml(const std::string& extra = "", const std::string& ali = "", const std::string& format = "") const {
    return "name: " + name_ + "\ncloud: alicloud\narch: x86_64\nfirmware: uefi\nlocal_image: disk.img\n" +
           (format.empty() ? "" : "image_format: " + format + "\n") + "storage_url: oss://" + bucket_ +
           "/images/\n" + (extra.find("regions:") == std::string::npos ? std::string("regions: [") + kHome + "]\n" : "") +
           "description: test image\ntags: {project: cloud-helper, os: alpine}\n" +
           extra + "alicloud:\n  part_size: 1048576\n" + ali;
  }

  json fake(const std::string& method, const std::string& path, const std::string& body = "") {
    auto r = loopback_http(method, ecs_ + path, body);
    EXPECT_TRUE(r.ok()) << r.message();
    if (!r.ok()) return nullptr;
    EXPECT_LT(r->status, 300) << path << ": " << r->body;
    return json::parse(r->body, nullptr, false);
  }
  json state() { return fake("GET", "/_fake/state"); }
  json image(const std::string& id) { return state()["images"].value(id, json()); }
  // SHA-256 of an object's bytes, read back from the fake; file_sha256 of a local file.
  std::string file_sha256(const std::string& path) { return digest_hex(slurp(path), "sha256"); }
  std::string object_bytes(const std::string& key) {
    auto r = loopback_http("GET", ecs_ + "/_fake/object?bucket=" + bucket_ + "&key=" + key);
    EXPECT_TRUE(r.ok() && r->status == 200) << key;
    return digest_hex(r.ok() ? r->body : "", "sha256");
  }
  // Images of this test's name, by region.
  std::map<std::string, json> images_named() {
    std::map<std::string, json> out;
    json s = state();
    for (auto& [id, img] : s["images"].items())
      if (img.value("ImageName", "") == name_) out[img.value("RegionId", "")] = img;
    return out;
  }
  // Fault rules live in one server: named after the test, removed at the end.
  void add_fault(const json& rule) {
    fault_rule_ = name_;
    fake("POST", "/_fake/faults?rule=" + fault_rule_, rule.dump());
  }
  // ECS throttling answers (one per code, in order) for requests matching
  // MATCH: the rule is named after the test, so parallel tests keep theirs.
  void add_throttle(const std::string& rule, const std::string& match, const std::vector<std::string>& codes) {
    throttle_rules_.push_back(name_ + "-" + rule);
    fake("POST", "/_fake/throttle?rule=" + throttle_rules_.back(), json{{"match", match}, {"codes", codes}}.dump());
  }
  size_t throttles_left() {
    json rules = fake("GET", "/_fake/throttle");
    size_t left = 0;
    for (const std::string& r : throttle_rules_) left += rules[r]["codes"].size();
    return left;
  }
  // The custom image quota of REGION (a region only this test uses).
  void set_quota(const std::string& region, int images) {
    fake("POST", "/_fake/quota", json{{"region", region}, {"images", images}}.dump());
    quota_regions_.push_back(region);
  }
  void lift_quota(const std::string& region) { fake("DELETE", "/_fake/quota?region=" + region); }
  int stat(const std::string& key) { return state()["stats"].value(key, 0); }
  // Lines of TEXT containing NEEDLE.
  static std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
      if (line.find(needle) != std::string::npos) out.push_back(line);
    return out;
  }
  void TearDown() override {
    if (!fault_rule_.empty()) fake("DELETE", "/_fake/faults?rule=" + fault_rule_);
    for (const std::string& r : throttle_rules_) fake("DELETE", "/_fake/throttle?rule=" + r);
    for (const std::string& r : quota_regions_) lift_quota(r);
  }

  std::string oss_, ecs_, name_, bucket_, fault_rule_;
  std::vector<std::string> quota_regions_, throttle_rules_;
  bool use_profile_ = false;
};

TEST_F(AlicloudSteps, FullFlowQcow2TwoRegionsPublic) {
  make_disk(24 << 20);
  write("image.yaml", yaml(std::string("public: true\nregions: [") + kHome + ", " + kOther + "]\n"));
  steps({"convert", "checksum", "upload", "import", "publish"});
  ImageMetadata m = meta();
  EXPECT_EQ(m.get_string("image_format"), "qcow2");
  std::string key = "images/" + base_name(*m.get_string("image_file"));
  EXPECT_EQ(m.get_string("upload_url"), "oss://" + bucket_ + "/" + key);
  // The object, read back, is the qcow2 file byte for byte.
  EXPECT_EQ(object_bytes(key), file_sha256(m.resolve(*m.get_string("image_file"))));
  EXPECT_FALSE(op_get(m, "upload", "upload_id"));

  std::string src = m.get_string("import_id").value_or("");
  EXPECT_EQ(m.get_string("import_region"), kHome);
  json img = image(src);
  EXPECT_EQ(img.value("Status", ""), "Available");
  EXPECT_EQ(img.value("BootMode", ""), "UEFI");
  EXPECT_EQ(img.value("Architecture", ""), "x86_64");
  EXPECT_EQ(img["Features"].value("NvmeSupport", ""), "supported");
  EXPECT_EQ(img.value("Size", 0), 1);
  EXPECT_EQ(img["DiskDeviceMappings"]["DiskDeviceMapping"][0].value("Format", ""), "QCOW2");

  auto by_region = images_named();
  ASSERT_EQ(by_region.size(), 2u);
  for (const char* r : {kHome, kOther}) {
    const json& i = by_region[r];
    EXPECT_EQ(map_get(m, "artifacts", r), i.value("ImageId", "")) << r;
    EXPECT_EQ(i.value("Status", ""), "Available") << r;
    EXPECT_TRUE(i.value("IsPublic", false)) << r;
    EXPECT_EQ(i["Tags"].value("project", ""), "cloud-helper") << r;
  }
  EXPECT_EQ(by_region[kOther].value("Description", ""), "test image");
  EXPECT_TRUE(m.get_string("published"));

  // publish converges: a re-run after someone made an image private fixes it, copies nothing.
  StepRun again = run("--force publish image.yaml");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(images_named().size(), 2u);
  // upload and import are skipped once done.
  StepRun skip = run("upload image.yaml");
  EXPECT_EQ(skip.code, 0);
  EXPECT_NE(skip.err.find("already uploaded"), std::string::npos) << skip.err;
}

TEST_F(AlicloudSteps, RawWithV1SignatureAndStsProfile) {
  make_disk(12 << 20, 7);
  ASSERT_EQ(mkdir(dir_.file("home/.aliyun").c_str(), 0700), 0);
  write("home/.aliyun/config.json",
        R"({"current":"sts","profiles":[{"name":"default","mode":"AK","access_key_id":"nope","access_key_secret":"nope"},)"
        R"({"name":"sts","mode":"StsToken","access_key_id":"TEST_STS_ID","access_key_secret":"TEST_STS_SECRET",)"
        R"("sts_token":"TEST_STS_TOKEN","region_id":"cn-hangzhou"}]})");
  use_profile_ = true;
  write("image.yaml", yaml("", "  oss_signature: v1\n  nvme: false\n  delete_object_after_import: true\n", "raw"));
  steps({"convert", "upload"});
  ImageMetadata m = meta();
  std::string key = "images/" + base_name(*m.get_string("image_file"));
  EXPECT_EQ(object_bytes(key), file_sha256(m.resolve(*m.get_string("image_file"))));
  StepRun imp = run("--log-level debug import image.yaml");
  ASSERT_EQ(imp.code, 0) << imp.err;
  EXPECT_NE(imp.err.find("profile sts"), std::string::npos) << imp.err;
  for (const char* secret : {"TEST_STS_SECRET", "TEST_STS_TOKEN"}) EXPECT_EQ(imp.err.find(secret), std::string::npos);
  json img = image(*meta().get_string("import_id"));
  EXPECT_EQ(img["DiskDeviceMappings"]["DiskDeviceMapping"][0].value("Format", ""), "RAW");
  EXPECT_EQ(img["Features"].value("NvmeSupport", ""), "unsupported");
  EXPECT_EQ(img.value("Size", 0), 1);
  // delete_object_after_import: the object is gone.
  EXPECT_FALSE(state()["buckets"][bucket_]["objects"].contains(key));
}

TEST_F(AlicloudSteps, RollbackDeletesImageAndObject) {
  make_disk(8 << 20, 3);
  write("image.yaml", yaml());
  steps({"convert", "upload", "import"});
  std::string id = *meta().get_string("import_id");
  ASSERT_FALSE(image(id).is_null());
  StepRun dry = run("--dry-run rollback image.yaml");
  ASSERT_EQ(dry.code, 0) << dry.err;
  EXPECT_NE(dry.out.find("would DeleteImage " + id), std::string::npos) << dry.out;
  StepRun r = run("rollback image.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(image(id).is_null());
  EXPECT_TRUE(state()["buckets"][bucket_]["objects"].empty());
  ImageMetadata m = meta();
  for (const char* k : {"uploaded", "upload_url", "imported", "import_id", "operations"}) EXPECT_FALSE(m.has(k)) << k;
}

TEST_F(AlicloudSteps, KilledUploadResumesWithoutDuplicates) {
  make_disk(16 << 20, 5);
  write("image.yaml", yaml("", "", "raw"));
  steps({"convert"});
  fake("POST", "/_fake/config", R"({"part_delay": 0.15})");
  int code = 0;
  auto killed = run_and_kill_when(
      command("upload image.yaml", "") + " >/dev/null 2>&1", dir_.file("image.yaml"),
      [&](const ImageMetadata& m) {
        auto id = op_get(m, "upload", "upload_id");
        if (!id) return false;
        json u = state()["uploads"].value(*id, json());
        return u.is_object() && u["parts"].size() >= 3;
      },
      &code);
  fake("POST", "/_fake/config", R"({"part_delay": 0})");
  ASSERT_TRUE(killed.ok()) << killed.message();
  ASSERT_TRUE(*killed) << "upload ended first with " << code;
  std::string upload_id = *op_get(meta(), "upload", "upload_id");
  size_t had = state()["uploads"][upload_id]["parts"].size();
  StepRun r = run("upload image.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming multipart upload " + upload_id), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("already there"), std::string::npos) << r.out;
  ImageMetadata m = meta();
  std::string key = "images/" + base_name(*m.get_string("image_file"));
  EXPECT_EQ(object_bytes(key), file_sha256(m.resolve(*m.get_string("image_file"))));
  json s = state();
  EXPECT_FALSE(s["uploads"].contains(upload_id));  // completed, not left behind
  EXPECT_GE(had, 3u);
}

TEST_F(AlicloudSteps, FaultsAreRetriedAndAFailedRegionIsPartial) {
  // The fake's copy_fail_regions is global: a region no other test copies to.
  constexpr char kFailing[] = "cn-shenzhen";
  make_disk(8 << 20, 9);
  write("image.yaml", yaml(std::string("regions: [") + kHome + ", " + kFailing + ", ap-southeast-1]\n"));
  steps({"convert"});
  // Transport drops, 5xx and throttling on this test's bucket and ECS calls.
  add_fault({{"match", bucket_ + "|ECS (ImportImage|DescribeImages|CopyImage) .*" + name_},
             {"sequence", {"throttle", "status503", "drop", "status500", "drop_after", "throttle", "drop"}}});
  fake("POST", "/_fake/config", json{{"copy_fail_regions", {kFailing}}}.dump());
  steps({"upload", "import"});
  StepRun pub = run("publish image.yaml");
  fake("POST", "/_fake/config", R"({"copy_fail_regions": []})");
  EXPECT_EQ(pub.code, 3) << pub.err << pub.out;
  EXPECT_NE(pub.err.find(std::string(kFailing) + ": failed"), std::string::npos) << pub.err;
  ImageMetadata m = meta();
  EXPECT_TRUE(map_get(m, "artifacts", "ap-southeast-1"));
  EXPECT_FALSE(map_get(m, "artifacts", kFailing));
  EXPECT_FALSE(m.get_string("published"));
  // The re-run replaces the failed copy and converges.
  StepRun again = run("publish image.yaml");
  ASSERT_EQ(again.code, 0) << again.err;
  auto by_region = images_named();
  ASSERT_EQ(by_region.size(), 3u);
  EXPECT_EQ(map_get(meta(), "artifacts", kFailing), by_region[kFailing].value("ImageId", ""));
  EXPECT_EQ(by_region[kFailing].value("Status", ""), "Available");
}

// A region id ECS does not know: its CopyImage is refused in one line naming
// the region and ECS's error code; the known region is still published, and
// the YAML says which one is missing.
TEST_F(AlicloudSteps, AnUnknownRegionIsOneLineAndTheOthersArePublished) {
  make_disk(4 << 20, 11);
  write("image.yaml", yaml(std::string("regions: [") + kHome + ", " + kOther + ", xx-nowhere-9]\n"));
  steps({"convert", "upload", "import"});
  StepRun pub = run("publish image.yaml");
  EXPECT_EQ(pub.code, 3) << pub.err << pub.out;
  size_t at = pub.err.find("xx-nowhere-9: failed");
  ASSERT_NE(at, std::string::npos) << pub.err;
  std::string line = pub.err.substr(at, pub.err.find('\n', at) - at);
  EXPECT_NE(line.find("InvalidRegionId.NotFound"), std::string::npos) << line;
  ImageMetadata m = meta();
  EXPECT_TRUE(map_get(m, "artifacts", kOther));
  EXPECT_FALSE(map_get(m, "artifacts", "xx-nowhere-9"));
  EXPECT_FALSE(m.get_string("published"));
  EXPECT_EQ(images_named().size(), 2u);
}

TEST_F(AlicloudSteps, WrongSecretIsOneClearLine) {
  make_disk(4 << 20, 2);
  write("image.yaml", yaml());
  steps({"convert"});
  StepRun r = run("--log-level warn upload image.yaml", "ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_AK_ID ALIBABA_CLOUD_ACCESS_KEY_SECRET=wrong-secret");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("HTTP 403 SignatureDoesNotMatch"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("request id"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("wrong-secret"), std::string::npos);

  steps({"upload"});
  StepRun i = run("--log-level warn import image.yaml", "ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_AK_ID ALIBABA_CLOUD_ACCESS_KEY_SECRET=wrong-secret");
  EXPECT_EQ(i.code, 1);
  EXPECT_EQ(std::count(i.err.begin(), i.err.end(), '\n'), 1) << i.err;
  EXPECT_NE(i.err.find("ECS DescribeImages (cn-hangzhou): HTTP 400 SignatureDoesNotMatch"), std::string::npos) << i.err;
}

TEST_F(AlicloudSteps, ExistingDifferentObjectIsNotOverwritten) {
  make_disk(4 << 20, 2);
  write("image.yaml", yaml());
  steps({"convert", "upload"});
  // Another image, same object name: refused without --force.
  make_disk(4 << 20, 3);
  write("image.yaml", yaml());
  steps({"convert"});
  StepRun r = run("upload image.yaml");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("already exists"), std::string::npos) << r.err;
  StepRun f = run("--force upload image.yaml");
  ASSERT_EQ(f.code, 0) << f.err;
  ImageMetadata m = meta();
  EXPECT_EQ(object_bytes("images/" + base_name(*m.get_string("image_file"))),
            file_sha256(m.resolve(*m.get_string("image_file"))));
}

TEST_F(AlicloudSteps, DryRunAndBadInputChangeNothing) {
  make_disk(4 << 20, 2);
  write("image.yaml", yaml());
  steps({"convert"});
  std::string before = slurp(dir_.file("image.yaml"));
  StepRun dry = run("--dry-run upload image.yaml");
  EXPECT_EQ(dry.code, 0) << dry.err;
  EXPECT_NE(dry.out.find("would upload"), std::string::npos) << dry.out;
  EXPECT_EQ(slurp(dir_.file("image.yaml")), before);
  EXPECT_TRUE(state()["buckets"][bucket_]["objects"].empty());

  struct Case {
    std::string yaml, message;
  } cases[] = {
      {"name: x1\ncloud: alicloud\nimage_file: disk.img\nstorage_url: s3://b/\nregions: [cn-hangzhou]\n", "oss://"},
      {"name: x1\ncloud: alicloud\nimage_file: disk.img\nstorage_url: oss://bucket/\n", "no regions"},
      {"name: x1\ncloud: alicloud\nimage_file: disk.img\nstorage_url: oss://bucket/\nregions: [cn-hangzhou]\n"
       "arch: sparc\n", "arch 'sparc'"},
      {"name: x1\ncloud: alicloud\nimage_file: disk.img\nimage_format: vmdk\nstorage_url: oss://bucket/\n"
       "regions: [cn-hangzhou]\n", "image_format 'vmdk'"},
      {"name: x1\ncloud: alicloud\nimage_file: disk.img\nstorage_url: oss://bucket/\nregions: [cn-hangzhou]\n"
       "alicloud: {part_size: 10}\n", "alicloud.part_size"},
  };
  for (const Case& c : cases) {
    write("bad.yaml", c.yaml);
    StepRun r = run("upload bad.yaml", "ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_AK_ID ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_AK_SECRET");
    EXPECT_EQ(r.code, 2) << c.yaml << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_EQ(slurp(dir_.file("bad.yaml")), c.yaml);
  }
  StepRun imp = run("import image.yaml");
  EXPECT_EQ(imp.code, 2);
  EXPECT_NE(imp.err.find("run upload first"), std::string::npos) << imp.err;
}

// Over the custom image quota, ImportImage is refused once (not retried) in
// one line naming the call, 403, QuotaExceed.Image, ECS's message, the
// request id and what to do; the YAML keeps only the ClientToken, so the
// run after the quota is raised imports with it and converges.
TEST_F(AlicloudSteps, ImportOverQuotaIsOneLineAndTheRerunImports) {
  constexpr char kRegion[] = "cn-beijing";  // no other test imports or copies here
  bucket_ = unique_name("q").substr(0, 63);
  fake("POST", "/_fake/buckets", json{{"name", bucket_}, {"region", kRegion}}.dump());
  make_disk(4 << 20, 13);
  write("image.yaml", yaml(std::string("regions: [") + kRegion + "]\n", "", "raw"));
  steps({"convert", "upload"});
  set_quota(kRegion, 0);
  StepRun r = run("import image.yaml");
  EXPECT_EQ(r.code, 1) << r.err;
  auto lines = lines_with(r.err, "QuotaExceed.Image");
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find("ECS ImportImage (cn-beijing): HTTP 403 QuotaExceed.Image: The Image Quota exceeds. "
                          "(request id "),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[0].find("custom image quota of cn-beijing is used up"), std::string::npos) << lines[0];
  EXPECT_EQ(r.err.find("retrying"), std::string::npos) << r.err;
  EXPECT_EQ(stat("quota ImportImage cn-beijing"), 1);
  ImageMetadata m = meta();
  EXPECT_FALSE(m.has("imported"));
  EXPECT_FALSE(m.has("import_id"));
  auto token = op_get(m, "import", "client_token");
  EXPECT_TRUE(token);
  EXPECT_FALSE(op_get(m, "import", "image_id"));
  EXPECT_TRUE(images_named().empty());

  lift_quota(kRegion);
  StepRun again = run("import image.yaml");
  ASSERT_EQ(again.code, 0) << again.err;
  m = meta();
  EXPECT_EQ(op_get(m, "import", "client_token"), token);
  auto by_region = images_named();
  ASSERT_EQ(by_region.size(), 1u);
  EXPECT_EQ(m.get_string("import_id"), by_region[kRegion].value("ImageId", ""));
  EXPECT_EQ(by_region[kRegion].value("Status", ""), "Available");
}

// One destination over its quota: its CopyImage is refused once, the other
// regions are published (exit 3) and the YAML records only them; after the
// quota is raised the re-run copies the missing region only.
TEST_F(AlicloudSteps, PublishWithARegionOverQuotaIsPartialThenConverges) {
  constexpr char kFull[] = "us-west-1", kFine[] = "ap-northeast-1";  // regions only this test uses
  make_disk(4 << 20, 17);
  write("image.yaml", yaml(std::string("regions: [") + kHome + ", " + kFull + ", " + kFine + "]\n"));
  steps({"convert", "upload", "import"});
  set_quota(kFull, 0);
  StepRun pub = run("publish image.yaml");
  EXPECT_EQ(pub.code, 3) << pub.err << pub.out;
  auto lines = lines_with(pub.err, "QuotaExceed.Image");
  ASSERT_EQ(lines.size(), 1u) << pub.err;
  EXPECT_NE(lines[0].find(std::string(kFull) + ": failed: ECS CopyImage (cn-hangzhou): HTTP 403 QuotaExceed.Image: "
                          "The number of images exceeds the limit (0). (request id "),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[0].find("custom image quota of us-west-1 is used up"), std::string::npos) << lines[0];
  EXPECT_EQ(stat(std::string("quota CopyImage ") + kFull), 1);
  ImageMetadata m = meta();
  EXPECT_FALSE(map_get(m, "artifacts", kFull));
  EXPECT_FALSE(op_get(m, "publish", kFull));
  EXPECT_TRUE(map_get(m, "artifacts", kHome));
  auto fine = map_get(m, "artifacts", kFine);
  ASSERT_TRUE(fine);
  EXPECT_FALSE(m.get_string("published"));

  lift_quota(kFull);
  StepRun again = run("publish image.yaml");
  ASSERT_EQ(again.code, 0) << again.err;
  m = meta();
  EXPECT_EQ(map_get(m, "artifacts", kFine), fine);  // not copied again
  int named = 0;
  json s = state();
  for (auto& [id, img] : s["images"].items()) named += img.value("ImageName", "") == name_;
  EXPECT_EQ(named, 3);
  auto by_region = images_named();
  EXPECT_EQ(map_get(m, "artifacts", kFull), by_region[kFull].value("ImageId", ""));
  EXPECT_EQ(by_region[kFull].value("Status", ""), "Available");
  EXPECT_TRUE(m.get_string("published"));
}

// ECS flow control (Throttling, Throttling.User, Throttling.Api: 400;
// ServiceUnavailable: 503) is retried with backoff and the step succeeds;
// throttling that outlasts the retry budget fails in one line saying how
// many attempts were made, with the YAML as a re-run needs it.
TEST_F(AlicloudSteps, ThrottledCallsAreRetriedThenSucceed) {
  make_disk(4 << 20, 19);
  write("image.yaml", yaml(std::string("regions: [") + kHome + ", " + kOther + "]\n"));
  steps({"convert", "upload"});
  // Budget: 8 attempts (RetryPolicy), all 8 throttled.
  add_throttle("budget", "^ECS ImportImage .*ImageName=" + name_ + "( |$)",
               std::vector<std::string>(8, "Throttling.User"));
  StepRun r = run("import image.yaml");
  EXPECT_EQ(r.code, 1) << r.err;
  auto failed = lines_with(r.err, "after 8 attempts");
  ASSERT_EQ(failed.size(), 1u) << r.err;
  EXPECT_NE(failed[0].find("ECS ImportImage (cn-hangzhou): HTTP 400 Throttling.User: Request was denied due to user "
                           "flow control. (request id "),
            std::string::npos)
      << failed[0];
  EXPECT_EQ(lines_with(r.err, "retrying ECS ImportImage (cn-hangzhou) after HTTP 400 Throttling.User (").size(), 7u)
      << r.err;
  EXPECT_EQ(throttles_left(), 0u);
  EXPECT_TRUE(op_get(meta(), "import", "client_token"));
  EXPECT_FALSE(op_get(meta(), "import", "image_id"));
  EXPECT_TRUE(images_named().empty());

  add_throttle("import", "^ECS ImportImage .*ImageName=" + name_ + "( |$)",
               {"Throttling", "Throttling.User", "Throttling.Api", "ServiceUnavailable"});
  add_throttle("copy", "^ECS CopyImage .*ImageName=" + name_ + "( |$)", {"Throttling.Api", "Throttling"});
  StepRun imp = run("import image.yaml");
  ASSERT_EQ(imp.code, 0) << imp.err;
  for (const char* cause : {"HTTP 400 Throttling (", "HTTP 400 Throttling.User (", "HTTP 400 Throttling.Api (",
                            "HTTP 503 ServiceUnavailable ("})
    EXPECT_EQ(lines_with(imp.err, std::string("retrying ECS ImportImage (cn-hangzhou) after ") + cause).size(), 1u)
        << cause << "\n" << imp.err;
  StepRun pub = run("publish image.yaml");
  ASSERT_EQ(pub.code, 0) << pub.err;
  EXPECT_EQ(lines_with(pub.err, "retrying ECS CopyImage").size(), 2u) << pub.err;
  EXPECT_EQ(throttles_left(), 0u);
  auto by_region = images_named();
  ASSERT_EQ(by_region.size(), 2u);  // every retry of a create carried the same ClientToken
  ImageMetadata m = meta();
  EXPECT_EQ(map_get(m, "artifacts", kOther), by_region[kOther].value("ImageId", ""));
  EXPECT_TRUE(m.get_string("published"));
}

}  // namespace
}  // namespace ch::test
