// End-to-end tests of `cloud_helper upload/import/publish/rollback` for
// cloud: oci: the built binary, run with a hermetic environment (an OCI
// config file and API keys made by tests/oci/emulators.py) against the fake
// OCI service (tests/oci/fake_oci.py), which verifies every request's
// signature. Results are read back through the fake's own controls
// (/_fake/object, /_fake/state), not through the code under test.
//
// Every test has its own bucket and image name, so tests running in
// parallel never see each other's state.
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "clouds/operations.h"
#include "metadata/image_metadata.h"
#include "tests/test_aws_env.h"
#include "tests/step_fixture.h"
#include "tests/test_util.h"

namespace ch::test {
namespace {

using nlohmann::json;
constexpr uint64_t kMiB = 1 << 20;
constexpr char kCompartment[] = "ocid1.compartment.oc1..aaaaaaaafakecompartment";
constexpr char kPassPhrase[] = "fake-oci-pass-phrase";

// Lines of stderr but the info line naming where the credentials came from.
int lines(const std::string& s) {
  int n = 0;
  size_t at = 0;
  while (at < s.size()) {
    size_t end = s.find('\n', at);
    if (end == std::string::npos) end = s.size();
    n += s.compare(at, 32, "cloud_helper: oci: credentials f") != 0;
    at = end + 1;
  }
  return n;
}

class OciSteps : public ::testing::Test, protected StepFixture {
 protected:
  void SetUp() override {
    endpoint_ = env_or("CLOUD_HELPER_OCI_ENDPOINT");
    config_ = env_or("CLOUD_HELPER_OCI_CONFIG");
    if (endpoint_.empty() || config_.empty())
      GTEST_SKIP() << "CLOUD_HELPER_OCI_ENDPOINT / CLOUD_HELPER_OCI_CONFIG unset (run through ctest)";
    std::string h = digest_hex(dir_.path() + ::testing::UnitTest::GetInstance()->current_test_info()->name(), "sha256");
    name_ = "alpine-test-" + h.substr(0, 10);
    bucket_ = "bk-" + h.substr(0, 12);
    fake("POST", "/_fake/buckets", json{{"name", bucket_}}.dump());
  }

  std::string env_text(const std::string& extra_env) const {
    return hermetic_env("OCI_CLI_CONFIG_FILE=" + shell_quote(config_) + " OCI_OBJECTSTORAGE_ENDPOINT=" +
                        shell_quote(endpoint_) + " OCI_IAAS_ENDPOINT=" + shell_quote(endpoint_) +
                        " CLOUD_HELPER_RETRY_SCALE=0.01 CLOUD_HELPER_POLL_SCALE=0.01 " + extra_env);
  }
  std::string command(const std::string& args, const std::string& extra_env) const {
    return command_with(env_text(extra_env), args);
  }
  StepRun run(const std::string& args, const std::string& extra_env = "") const {
    return run_with(env_text(env_ + " " + extra_env), args);
  }

  json fake(const std::string& method, const std::string& path, const std::string& body = "") {
    auto r = loopback_http(method, endpoint_ + path, body);
    EXPECT_TRUE(r.ok()) << r.message();
    if (!r.ok()) return nullptr;
    EXPECT_LT(r->status, 300) << path << ": " << r->body;
    return json::parse(r->body, nullptr, false);
  }
  std::string object_bytes(const std::string& object) {
    auto r = loopback_http("GET", endpoint_ + "/_fake/object?bucket=" + bucket_ + "&name=" + object);
    EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.message());
    return r.ok() ? r->body : "";
  }
  // The fake's images of this test (any state).
  std::vector<json> images() {
    std::vector<json> out;
    json state = fake("GET", "/_fake/state");
    for (auto& [id, img] : state["images"].items())
      if (img["displayName"] == name_) out.push_back(img);
    return out;
  }
  json uploads_of_bucket() {
    json out = json::object();
    json state = fake("GET", "/_fake/state");
    for (auto& [k, v] : state["uploads"].items())
      if (k.rfind(bucket_ + "/", 0) == 0) out[k] = v;
    return out;
  }


  // A sparse raw disk, converted to qcow2 by the YAML convert step.
  void make_image(uint64_t size = 12 * kMiB, const std::string& extra = "", const std::string& oci_extra = "") {
    std::vector<DataRun> runs = {{0, kMiB + 4096}, {size / 3, 3 * kMiB + 777}, {size - kMiB, kMiB}};
    ASSERT_TRUE(make_sparse_file(dir_.file("disk.img"), size, runs).ok());
    write("image.yaml", "name: " + name_ + "\ncloud: oci\narch: x86_64\nfirmware: uefi\nlocal_image: disk.img\n"
                        "storage_url: oci://" + bucket_ + "@fakens/images/\nregion: us-ashburn-1\n" + extra +
                        "oci:\n  compartment_id: " + kCompartment + "\n  part_size_mib: 1\n"
                        "  shapes: [VM.Standard.E4.Flex, VM.Standard.A1.Flex]\n" + oci_extra);
    StepRun c = run("convert image.yaml");
    ASSERT_EQ(c.code, 0) << c.err;
    StepRun s = run("checksum image.yaml");
    ASSERT_EQ(s.code, 0) << s.err;
  }
  std::string qcow2_path() { return dir_.file(meta().get_string("image_file").value_or("")); }

  // Starts an upload with slowed parts and SIGKILLs it once the fake holds
  // at least one part; returns the recorded upload id.
  std::string kill_mid_upload() {
    fake("POST", "/_fake/faults?rule=" + bucket_,
         json{{"match", "PUT /n/fakens/b/" + bucket_ + "/u/"}, {"status503", 0.6}, {"seed", 7}, {"delay", 0.1}}.dump());
    int code = 0;
    auto killed = run_and_kill_when(command("upload image.yaml", "") + " >/dev/null 2>&1", dir_.file("image.yaml"),
                                    [&](const ImageMetadata& m) {
                                      if (!op_get(m, "upload", "upload_id")) return false;
                                      json ups = uploads_of_bucket();
                                      for (auto& [k, u] : ups.items())
                                        if (!u["parts"].empty()) return true;
                                      return false;
                                    },
                                    &code);
    fake("DELETE", "/_fake/faults?rule=" + bucket_);
    EXPECT_TRUE(killed.ok()) << killed.message();
    EXPECT_TRUE(killed.ok() && *killed) << "the upload ended (exit " << code << ") before it could be killed";
    // Parts the killed process had sent are still being stored: let them land
    // (a dead client's requests end one way or the other on a real service too).
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    EXPECT_EQ(uploads_of_bucket().size(), 1u);
    return op_get(meta(), "upload", "upload_id").value_or("");
  }

  // Endpoints per region: the fake serves region R under /R/ (tests/oci/README.md).
  void use_regional_endpoints() {
    env_ = "OCI_OBJECTSTORAGE_ENDPOINT=" + shell_quote(endpoint_ + "/{region}") +
           " OCI_IAAS_ENDPOINT=" + shell_quote(endpoint_ + "/{region}");
  }
  // This test's images in REGION that are not DELETED.
  std::vector<json> live_images(const std::string& region) {
    std::vector<json> out;
    for (json& img : images())
      if (img["region"] == region && img["lifecycleState"] != "DELETED") out.push_back(img);
    return out;
  }
  // The fake's PARs on this test's bucket: {id: {..., deleted}}.
  json pars() {
    json out = json::object();
    json state = fake("GET", "/_fake/state");
    for (auto& [id, par] : state["pars"].items())
      if (par["bucket"] == bucket_) out[id] = par;
    return out;
  }
  void set_image_limit(const std::string& region, json limit) {
    fake("POST", "/_fake/config", json{{"image_limits", {{region, limit}}}}.dump());
  }
  // upload + import of a YAML with REGIONS (the first is home).
  void imported(const std::string& regions, const std::string& home_bucket_region = "") {
    use_regional_endpoints();
    if (!home_bucket_region.empty())
      fake("POST", "/_fake/buckets", json{{"name", bucket_}, {"region", home_bucket_region}}.dump());
    make_image(4 * kMiB, "regions: [" + regions + "]\n");
    StepRun up = run("upload image.yaml");
    ASSERT_EQ(up.code, 0) << up.err;
    StepRun im = run("import image.yaml");
    ASSERT_EQ(im.code, 0) << im.err;
  }
  // Every region of REGIONS has exactly one live image of this test, AVAILABLE,
  // with its capability schema and shapes, and artifacts names it.
  void expect_published(const std::vector<std::string>& regions) {
    ImageMetadata m = meta();
    json state = fake("GET", "/_fake/state");
    for (const std::string& region : regions) {
      auto live = live_images(region);
      ASSERT_EQ(live.size(), 1u) << region;
      const json& img = live[0];
      EXPECT_EQ(img["lifecycleState"], "AVAILABLE") << region;
      EXPECT_EQ(img["compartmentId"], kCompartment);
      EXPECT_EQ(img["launchMode"], "PARAVIRTUALIZED");
      EXPECT_EQ(map_get(m, "artifacts", region).value_or(""), img["id"]) << region;
      int schemas = 0;
      for (auto& [id, sc] : state["schemas"].items())
        if (sc["imageId"] == img["id"] && sc["lifecycleState"] == "ACTIVE") {
          ++schemas;
          EXPECT_EQ(sc["region"], region);
          EXPECT_EQ(sc["schemaData"]["Compute.Firmware"]["defaultValue"], "UEFI_64");
        }
      EXPECT_EQ(schemas, 1) << region;
      json shapes = state["shapes"][img["id"].get<std::string>()];
      EXPECT_TRUE(shapes.contains("VM.Standard.E4.Flex") && shapes.contains("VM.Standard.A1.Flex")) << shapes.dump();
    }
    EXPECT_EQ(map_entries(m, "artifacts").size(), regions.size());
    EXPECT_TRUE(m.get_string("published"));
    for (const char* section : {"publish", "publish_pars", "publish_work_requests", "publish_schemas"})
      EXPECT_TRUE(op_entries(m, section).empty()) << section;
    json ps = pars();
    for (auto& [id, par] : ps.items()) EXPECT_TRUE(par["deleted"].get<bool>()) << id;
  }

  std::string endpoint_, config_, name_, bucket_, env_;
};

TEST_F(OciSteps, UploadImportPublishEndToEnd) {
  make_image();
  StepRun up = run("upload image.yaml");
  ASSERT_EQ(up.code, 0) << up.err;
  ImageMetadata m = meta();
  std::string object = "images/" + *m.get_string("image_file");
  EXPECT_EQ(object_bytes(object), slurp(qcow2_path()));
  EXPECT_EQ(m.get_string("upload_url").value_or(""), endpoint_ + "/n/fakens/b/" + bucket_ + "/o/images%2F" +
                                                          *m.get_string("image_file"));
  EXPECT_FALSE(op_get(m, "upload", "upload_id"));
  json state = fake("GET", "/_fake/state");
  json obj = state["objects"][bucket_ + "/" + object];
  EXPECT_EQ(obj["metadata"]["opc-meta-sha256"], digest_hex(slurp(qcow2_path()), "sha256"));
  EXPECT_TRUE(uploads_of_bucket().empty());

  StepRun im = run("import image.yaml");
  ASSERT_EQ(im.code, 0) << im.err;
  m = meta();
  std::string image_id = m.get_string("import_id").value_or("");
  EXPECT_EQ(m.get_string("import_region").value_or(""), "us-ashburn-1");
  auto imgs = images();
  ASSERT_EQ(imgs.size(), 1u);
  EXPECT_EQ(imgs[0]["id"], image_id);
  EXPECT_EQ(imgs[0]["lifecycleState"], "AVAILABLE");
  EXPECT_EQ(imgs[0]["launchMode"], "PARAVIRTUALIZED");
  EXPECT_EQ(imgs[0]["sourceImageType"], "QCOW2");
  EXPECT_EQ(imgs[0]["compartmentId"], kCompartment);
  state = fake("GET", "/_fake/state");
  std::string schema_id = op_get(m, "import", "schema_id").value_or("");
  json schema = state["schemas"][schema_id];
  ASSERT_TRUE(schema.is_object()) << state["schemas"].dump();
  EXPECT_EQ(schema["imageId"], image_id);
  EXPECT_EQ(schema["schemaData"]["Compute.Firmware"]["defaultValue"], "UEFI_64");
  EXPECT_EQ(schema["schemaData"]["Compute.SecureBoot"]["defaultValue"], false);
  EXPECT_EQ(schema["schemaData"]["Compute.LaunchMode"]["values"], json::array({"PARAVIRTUALIZED"}));
  EXPECT_EQ(schema["schemaData"]["Network.AttachmentType"]["defaultValue"], "PARAVIRTUALIZED");
  json shapes = state["shapes"][image_id];
  EXPECT_TRUE(shapes.contains("VM.Standard.E4.Flex") && shapes.contains("VM.Standard.A1.Flex")) << shapes.dump();

  StepRun pub = run("publish image.yaml");
  ASSERT_EQ(pub.code, 0) << pub.err;
  m = meta();
  EXPECT_EQ(map_get(m, "artifacts", "us-ashburn-1").value_or(""), image_id);
  EXPECT_TRUE(m.get_string("published"));

  for (const char* action : {"upload", "import"}) {
    StepRun r = run(std::string(action) + " image.yaml");
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find(std::string(action) + ": already"), std::string::npos) << r.err;
  }
  // A re-import with --force adopts the image instead of making another.
  StepRun again = run("import --force image.yaml");
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(images().size(), 1u);
  EXPECT_EQ(run("rollback image.yaml").code, 2);  // published
}

TEST_F(OciSteps, RollbackDeletesSchemaImageAndObject) {
  make_image(6 * kMiB, "", "  launch_mode: native\n  secure_boot: true\n");
  ASSERT_EQ(run("upload image.yaml").code, 0);
  StepRun im = run("import image.yaml");
  ASSERT_EQ(im.code, 0) << im.err;
  ImageMetadata m = meta();
  std::string image_id = *m.get_string("import_id"), schema_id = *op_get(m, "import", "schema_id");
  json state = fake("GET", "/_fake/state");
  EXPECT_EQ(state["schemas"][schema_id]["schemaData"]["Compute.SecureBoot"]["defaultValue"], true);
  EXPECT_EQ(state["images"][image_id]["launchMode"], "NATIVE");

  std::string before = slurp(dir_.file("image.yaml"));
  StepRun dry = run("--dry-run rollback image.yaml");
  EXPECT_EQ(dry.code, 0) << dry.err;
  EXPECT_NE(dry.out.find("would DeleteImage " + image_id), std::string::npos) << dry.out;
  EXPECT_EQ(slurp(dir_.file("image.yaml")), before);

  StepRun rb = run("rollback image.yaml");
  ASSERT_EQ(rb.code, 0) << rb.err;
  state = fake("GET", "/_fake/state");
  EXPECT_EQ(state["images"][image_id]["lifecycleState"], "DELETED");
  EXPECT_EQ(state["schemas"][schema_id]["lifecycleState"], "DELETED");
  EXPECT_FALSE(state["objects"].contains(bucket_ + "/images/" + *m.get_string("image_file")));
  m = meta();
  for (const char* k : {"uploaded", "upload_url", "imported", "import_id", "operations"}) EXPECT_FALSE(m.has(k)) << k;
  StepRun again = run("rollback image.yaml");
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_NE((again.out + again.err).find("nothing to roll back"), std::string::npos) << again.out << again.err;
}

TEST_F(OciSteps, KilledUploadResumesWithoutASecondUpload) {
  make_image(24 * kMiB);
  std::string upload_id = kill_mid_upload();
  ASSERT_FALSE(upload_id.empty());

  StepRun up = run("upload image.yaml");
  ASSERT_EQ(up.code, 0) << up.err;
  EXPECT_NE(up.err.find("resuming multipart upload " + upload_id), std::string::npos) << up.err;
  EXPECT_NE(up.out.find("already there"), std::string::npos) << up.out;
  EXPECT_EQ(object_bytes("images/" + *meta().get_string("image_file")), slurp(qcow2_path()));
  EXPECT_TRUE(uploads_of_bucket().empty()) << uploads_of_bucket().dump();  // no second, orphaned upload
}

TEST_F(OciSteps, RollbackAbortsAKilledUpload) {
  make_image(24 * kMiB);
  std::string upload_id = kill_mid_upload();
  ASSERT_FALSE(upload_id.empty());
  StepRun rb = run("rollback image.yaml");
  ASSERT_EQ(rb.code, 0) << rb.err;
  EXPECT_NE(rb.out.find("aborted multipart upload " + upload_id), std::string::npos) << rb.out;
  EXPECT_TRUE(uploads_of_bucket().empty()) << uploads_of_bucket().dump();
  EXPECT_FALSE(meta().has("operations"));
}

TEST_F(OciSteps, FaultsAreRetriedAndNothingIsDuplicated) {
  make_image(8 * kMiB);
  // 5xx, throttling, connections dropped before and after the server acted.
  fake("POST", "/_fake/faults?rule=" + bucket_,
       json{{"match", "/n/fakens/b/" + bucket_ + "/"},
            {"sequence", {"status500", "throttle", "drop", "ok", "drop_after", "status503", "drop_after"}}}.dump());
  StepRun up = run("upload image.yaml");
  EXPECT_EQ(fake("GET", "/_fake/faults?rule=" + bucket_)["sequence_left"], 0);
  fake("DELETE", "/_fake/faults?rule=" + bucket_);
  ASSERT_EQ(up.code, 0) << up.err;
  EXPECT_EQ(object_bytes("images/" + *meta().get_string("image_file")), slurp(qcow2_path()));
  // The uploads CreateMultipartUpload made before its answers were lost are aborted.
  EXPECT_TRUE(uploads_of_bucket().empty()) << uploads_of_bucket().dump();
  EXPECT_NE(up.err.find("aborted a stray multipart upload"), std::string::npos) << up.err;

  // CreateImage's answer lost after the image was made: the retry, with the
  // same opc-retry-token, gets the same image.
  fake("POST", "/_fake/faults?rule=" + name_,
       json{{"match", "^POST /20160918/(images|computeImageCapabilitySchemas)$"},
            {"sequence", {"drop_after", "throttle", "drop_after"}}}.dump());
  StepRun im = run("import image.yaml");
  EXPECT_EQ(fake("GET", "/_fake/faults?rule=" + name_)["sequence_left"], 0);
  fake("DELETE", "/_fake/faults?rule=" + name_);
  ASSERT_EQ(im.code, 0) << im.err;
  EXPECT_EQ(images().size(), 1u);
  int schemas = 0;
  json state = fake("GET", "/_fake/state");
  for (auto& [id, s] : state["schemas"].items()) schemas += s["imageId"] == meta().get_string("import_id").value_or("");
  EXPECT_EQ(schemas, 1);
}

TEST_F(OciSteps, AnExistingObjectIsAdoptedWhenSameAndOtherwiseNotReplaced) {
  make_image(4 * kMiB);
  ASSERT_EQ(run("upload image.yaml").code, 0);
  std::string text = slurp(dir_.file("image.yaml"));
  // A second YAML naming the same object, without this run's records.
  ImageMetadata m = meta();
  m.remove("operations");
  m.remove("uploaded");
  m.remove("upload_url");
  std::string clean = m.to_yaml();
  write("same.yaml", clean);
  StepRun same = run("upload same.yaml");
  EXPECT_EQ(same.code, 0) << same.err;
  EXPECT_NE(same.out.find("adopted"), std::string::npos) << same.out;

  std::string sha = m.get("checksums")->find("sha256")->scalar();
  std::string other = clean;
  other.replace(other.find(sha), 64, std::string(64, 'a'));
  write("other.yaml", other);
  StepRun refused = run("upload other.yaml");
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("already exists and is not this image"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--force replaces it"), std::string::npos) << refused.err;
  StepRun forced = run("upload --force other.yaml");
  EXPECT_EQ(forced.code, 0) << forced.err;
  EXPECT_EQ(object_bytes("images/" + *m.get_string("image_file")), slurp(qcow2_path()));
  EXPECT_TRUE(uploads_of_bucket().empty());
}

TEST_F(OciSteps, WrongKeyFailsWithOneClearLine) {
  make_image(4 * kMiB);
  StepRun r = run("upload image.yaml", "OCI_CLI_PROFILE=WRONGKEY");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("HTTP 401"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("check the API key"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("opc-request-id"), std::string::npos) << r.err;
  EXPECT_FALSE(meta().has("operations"));

  StepRun missing = run("upload image.yaml", "OCI_CLI_PROFILE=NOPE");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("has no profile [NOPE]"), std::string::npos) << missing.err;
}

TEST_F(OciSteps, EncryptedKeyAndNoSecretInDebugOutput) {
  make_image(4 * kMiB);
  StepRun r = run("--log-level debug upload image.yaml", "OCI_CLI_PROFILE=ENCRYPTED");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("http: PUT"), std::string::npos) << r.err;
  for (const std::string& text : {r.err, r.out}) {
    EXPECT_EQ(text.find(kPassPhrase), std::string::npos);
    EXPECT_EQ(text.find("signature=\""), std::string::npos);
    EXPECT_EQ(text.find("PRIVATE KEY"), std::string::npos);
  }
}

TEST_F(OciSteps, DryRunAndBadInputChangeNothing) {
  make_image(4 * kMiB);
  std::string before = slurp(dir_.file("image.yaml"));
  StepRun dry = run("--dry-run upload image.yaml");
  EXPECT_EQ(dry.code, 0) << dry.err;
  EXPECT_NE(dry.out.find("would upload"), std::string::npos) << dry.out;
  EXPECT_EQ(slurp(dir_.file("image.yaml")), before);
  json state = fake("GET", "/_fake/state");
  for (auto& [k, v] : state["objects"].items()) EXPECT_NE(k.rfind(bucket_ + "/", 0), 0u) << k;

  auto expect_bad = [&](const std::string& yaml_text, const std::string& action, const std::string& message) {
    write("bad.yaml", yaml_text);
    std::string was = slurp(dir_.file("bad.yaml"));
    StepRun r = run(action + " bad.yaml");
    EXPECT_EQ(r.code, 2) << action << ": " << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_EQ(slurp(dir_.file("bad.yaml")), was);
  };
  std::string good = before;
  std::string s3 = good;
  s3.replace(s3.find("oci://"), 6, "s3://");
  expect_bad(s3, "upload", "is not an oci://bucket@namespace/prefix/ URL");
  std::string no_comp = good;
  no_comp.replace(no_comp.find("compartment_id:"), 15, "compartment_xx:");
  no_comp += "uploaded: 2026-01-01T00:00:00Z\nupload_url: " + endpoint_ + "/n/fakens/b/" + bucket_ + "/o/x.qcow2\n";
  expect_bad(no_comp, "import", "import needs oci.compartment_id");
  std::string regions = good;
  regions.replace(regions.find("region: us-ashburn-1"), 20, "regions: [us-ashburn-1, eu-frankfurt-1]");
  regions += "imported: 2026-01-01T00:00:00Z\nimport_id: ocid1.image.oc1..x\n";
  // One endpoint for every region (OCI_IAAS_ENDPOINT without {region}) cannot serve a second region.
  expect_bad(regions, "publish", "no Compute endpoint for region eu-frankfurt-1");
  std::string lm = good;
  lm.replace(lm.find("  part_size_mib: 1\n"), 18, "  part_size_mib: 1\n  launch_mode: fast\n");
  expect_bad(lm, "upload", "oci.launch_mode must be NATIVE, EMULATED or PARAVIRTUALIZED");
  expect_bad("name: x\ncloud: oci\nstorage_url: [\n", "upload", "invalid YAML");
}

TEST_F(OciSteps, PublishesToOtherRegionsThroughPreauthenticatedRequests) {
  imported("us-ashburn-1, eu-frankfurt-1, uk-london-1");
  std::string before = slurp(dir_.file("image.yaml"));
  StepRun dry = run("--dry-run publish image.yaml");
  ASSERT_EQ(dry.code, 0) << dry.err;
  EXPECT_NE(dry.out.find("eu-frankfurt-1: would adopt an image named " + name_), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("uk-london-1: would adopt"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("CreatePreauthenticatedRequest (ObjectRead"), std::string::npos) << dry.out;
  EXPECT_EQ(slurp(dir_.file("image.yaml")), before);
  EXPECT_TRUE(live_images("eu-frankfurt-1").empty());
  EXPECT_TRUE(pars().empty());

  StepRun pub = run("publish image.yaml");
  ASSERT_EQ(pub.code, 0) << pub.err;
  expect_published({"us-ashburn-1", "eu-frankfurt-1", "uk-london-1"});
  EXPECT_EQ(pars().size(), 2u);  // one per other region, both deleted
  EXPECT_NE(pub.out.find("deleted 2 pre-authenticated request(s)"), std::string::npos) << pub.out;
  // The PAR URL is a credential: never printed, never stored.
  for (const std::string& text : {pub.out, pub.err, slurp(dir_.file("image.yaml"))})
    EXPECT_EQ(text.find("/p/"), std::string::npos) << text;

  // A re-run converges: the same images, checked, nothing new.
  StepRun again = run("publish image.yaml");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("eu-frankfurt-1: " + *map_get(meta(), "artifacts", "eu-frankfurt-1") + " (checked)"),
            std::string::npos) << again.out;
  expect_published({"us-ashburn-1", "eu-frankfurt-1", "uk-london-1"});
  EXPECT_EQ(pars().size(), 2u);
}

TEST_F(OciSteps, AFailedRegionDoesNotStopTheOthersAndAReRunAddsNoDuplicate) {
  imported("us-ashburn-1, ap-tokyo-1, ap-osaka-1");
  // Every CreateImage answer in ap-osaka-1 lost after the image was made.
  fake("POST", "/_fake/faults?rule=" + name_,
       json{{"match", "^POST /ap-osaka-1/20160918/images$"}, {"drop_after", 1.0}}.dump());
  StepRun pub = run("publish image.yaml");
  fake("DELETE", "/_fake/faults?rule=" + name_);
  EXPECT_EQ(pub.code, 3) << pub.err;
  EXPECT_NE(pub.out.find("ap-osaka-1: FAILED: "), std::string::npos) << pub.out;
  EXPECT_NE(pub.out.find("ap-tokyo-1: ocid1.image."), std::string::npos) << pub.out;
  EXPECT_NE(pub.err.find("1 of 3 regions failed (ap-osaka-1: "), std::string::npos) << pub.err;
  ImageMetadata m = meta();
  EXPECT_FALSE(m.get_string("published"));
  EXPECT_TRUE(map_get(m, "artifacts", "ap-tokyo-1"));
  EXPECT_FALSE(map_get(m, "artifacts", "ap-osaka-1"));
  EXPECT_TRUE(op_get(m, "publish_pars", "ap-osaka-1"));  // recorded before CreateImage
  EXPECT_EQ(live_images("ap-osaka-1").size(), 1u);       // made, answer lost

  StepRun again = run("publish image.yaml");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("ap-osaka-1: "), std::string::npos);
  EXPECT_NE(again.out.find("(adopted)"), std::string::npos) << again.out;
  expect_published({"us-ashburn-1", "ap-tokyo-1", "ap-osaka-1"});
}

TEST_F(OciSteps, KilledPublishResumesWithoutDuplicates) {
  imported("us-ashburn-1, eu-amsterdam-1, eu-paris-1");
  // Slow work requests there, so the kill lands while publish waits.
  fake("POST", "/_fake/faults?rule=" + name_,
       json{{"match", "^GET /eu-(amsterdam|paris)-1/20160918/workRequests/"}, {"delay", 1.0}}.dump());
  int code = 0;
  auto killed = run_and_kill_when(command("publish image.yaml", env_) + " >/dev/null 2>&1", dir_.file("image.yaml"),
                                  [](const ImageMetadata& m) {
                                    return op_get(m, "publish", "eu-amsterdam-1") && op_get(m, "publish", "eu-paris-1");
                                  },
                                  &code);
  fake("DELETE", "/_fake/faults?rule=" + name_);
  ASSERT_TRUE(killed.ok()) << killed.message();
  ASSERT_TRUE(*killed) << "publish ended (exit " << code << ") before it could be killed";
  ImageMetadata m = meta();
  EXPECT_FALSE(m.get_string("published"));
  EXPECT_TRUE(op_get(m, "publish_pars", "eu-paris-1"));
  StepRun again = run("publish image.yaml");
  ASSERT_EQ(again.code, 0) << again.err;
  expect_published({"us-ashburn-1", "eu-amsterdam-1", "eu-paris-1"});
  EXPECT_EQ(pars().size(), 2u);  // the recorded ones, reused through the images already made
}

TEST_F(OciSteps, AParDeletedMidImportFailsTheRegionAndAReRunImportsAgain) {
  imported("us-ashburn-1, ap-seoul-1");
  // The work request is slow to answer; its PAR is deleted meanwhile.
  fake("POST", "/_fake/faults?rule=" + name_,
       json{{"match", "^GET /ap-seoul-1/20160918/workRequests/"}, {"delay", 0.5}}.dump());
  bool revoked = false;
  int code = 0;
  std::string out = dir_.file(".pub");
  auto killed = run_and_kill_when(command("publish image.yaml", env_) + " >" + shell_quote(out) + " 2>&1",
                                  dir_.file("image.yaml"),
                                  [&](const ImageMetadata& m) {
                                    if (!revoked && op_get(m, "publish", "ap-seoul-1")) {
                                      fake("POST", "/_fake/pars/revoke", json{{"bucket", bucket_}}.dump());
                                      revoked = true;
                                    }
                                    return false;
                                  },
                                  &code);
  fake("DELETE", "/_fake/faults?rule=" + name_);
  ASSERT_TRUE(killed.ok()) << killed.message();
  ASSERT_TRUE(revoked);
  EXPECT_EQ(code, 3) << slurp(out);
  EXPECT_NE(slurp(out).find("ap-seoul-1: FAILED: importing image " + name_ + ": work request "), std::string::npos)
      << slurp(out);
  EXPECT_NE(slurp(out).find("FAILED: ImageSourceNotFound"), std::string::npos) << slurp(out);
  EXPECT_TRUE(live_images("ap-seoul-1").empty());

  StepRun again = run("publish image.yaml");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("is DELETED; importing again"), std::string::npos) << again.err;
  expect_published({"us-ashburn-1", "ap-seoul-1"});
  EXPECT_EQ(pars().size(), 2u);  // the revoked one and the re-run's
}

TEST_F(OciSteps, QuotaInOneRegionThenRollbackRemovesEveryRegion) {
  imported("us-ashburn-1, ca-toronto-1, ca-montreal-1");
  set_image_limit("ca-montreal-1", 0);
  // ca-toronto-1's image is made but never recorded: every answer lost.
  fake("POST", "/_fake/faults?rule=" + name_,
       json{{"match", "^POST /ca-toronto-1/20160918/images$"}, {"drop_after", 1.0}}.dump());
  StepRun pub = run("publish image.yaml");
  fake("DELETE", "/_fake/faults?rule=" + name_);
  set_image_limit("ca-montreal-1", nullptr);
  EXPECT_EQ(pub.code, 3) << pub.err;
  EXPECT_NE(pub.out.find("ca-montreal-1: FAILED: OCI CreateImage (POST /ca-montreal-1/20160918/images): HTTP 400 "
                         "LimitExceeded: The service limit custom-image-count (0)"),
            std::string::npos) << pub.out;
  EXPECT_EQ(live_images("ca-toronto-1").size(), 1u);
  EXPECT_TRUE(live_images("ca-montreal-1").empty());
  std::string toronto = live_images("ca-toronto-1")[0]["id"];
  EXPECT_FALSE(op_get(meta(), "publish", "ca-toronto-1"));

  StepRun dry = run("--dry-run rollback image.yaml");
  EXPECT_EQ(dry.code, 0) << dry.err;
  EXPECT_NE(dry.out.find("DeletePreauthenticatedRequest"), std::string::npos) << dry.out;
  StepRun rb = run("rollback image.yaml");
  ASSERT_EQ(rb.code, 0) << rb.err;
  EXPECT_NE(rb.out.find("deleted image " + toronto + " in ca-toronto-1"), std::string::npos) << rb.out;
  for (const char* region : {"us-ashburn-1", "ca-toronto-1", "ca-montreal-1"})
    EXPECT_TRUE(live_images(region).empty()) << region;
  json state = fake("GET", "/_fake/state");
  for (auto& [id, sc] : state["schemas"].items())
    if (sc["displayName"] == name_ + "-capabilities") {
      EXPECT_EQ(sc["lifecycleState"], "DELETED") << id;
    }
  json ps = pars();
  EXPECT_FALSE(ps.empty());
  for (auto& [id, par] : ps.items()) EXPECT_TRUE(par["deleted"].get<bool>()) << id;
  ImageMetadata m = meta();
  for (const char* k : {"uploaded", "imported", "import_id", "artifacts", "operations"}) EXPECT_FALSE(m.has(k)) << k;
}

TEST_F(OciSteps, QuotaOnImportIsOneLineAndAReRunConverges) {
  fake("POST", "/_fake/buckets", json{{"name", bucket_}, {"region", "sa-saopaulo-1"}}.dump());
  use_regional_endpoints();
  make_image(4 * kMiB, "regions: [sa-saopaulo-1, sa-vinhedo-1]\n");
  ASSERT_EQ(run("upload image.yaml").code, 0);
  set_image_limit("sa-saopaulo-1", 0);
  StepRun im = run("import image.yaml");
  set_image_limit("sa-saopaulo-1", nullptr);
  EXPECT_EQ(im.code, 1) << im.err;
  EXPECT_EQ(lines(im.err), 1) << im.err;
  EXPECT_NE(im.err.find("OCI CreateImage (POST /sa-saopaulo-1/20160918/images): HTTP 400 LimitExceeded: "
                        "The service limit custom-image-count (0) for region sa-saopaulo-1 has been reached"),
            std::string::npos) << im.err;
  EXPECT_NE(im.err.find("(opc-request-id "), std::string::npos) << im.err;
  ImageMetadata m = meta();
  EXPECT_FALSE(m.get_string("imported"));
  EXPECT_FALSE(m.get_string("import_id"));
  EXPECT_FALSE(op_get(m, "import", "image_id"));
  EXPECT_TRUE(m.get_string("uploaded"));
  EXPECT_TRUE(live_images("sa-saopaulo-1").empty());

  ASSERT_EQ(run("import image.yaml").code, 0);
  StepRun pub = run("publish image.yaml");
  ASSERT_EQ(pub.code, 0) << pub.err;
  expect_published({"sa-saopaulo-1", "sa-vinhedo-1"});
}

TEST_F(OciSteps, UnknownRegionOrMissingEndpointIsBadInputBeforeAnyRequest) {
  use_regional_endpoints();
  make_image(4 * kMiB, "regions: [me-jeddah-1, mars-base-1]\n");
  std::string yaml = slurp(dir_.file("image.yaml")) + "uploaded: 2026-01-01T00:00:00Z\nupload_url: " + endpoint_ +
                     "/me-jeddah-1/n/fakens/b/" + bucket_ + "/o/x.qcow2\nimported: 2026-01-01T00:00:00Z\n"
                     "import_id: ocid1.image.oc1.me-jeddah-1.x\nimport_region: me-jeddah-1\n";
  write("image.yaml", yaml);
  for (const char* flags : {"", "--dry-run "}) {
    StepRun r = run(std::string(flags) + "publish image.yaml");
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("regions: 'mars-base-1' is not an OCI region id"), std::string::npos) << r.err;
  }
  EXPECT_EQ(slurp(dir_.file("image.yaml")), yaml);
  // A plain OCI_IAAS_ENDPOINT (no {region}, no OCI_IAAS_ENDPOINT_ME_RIYADH_1) has no endpoint for a second region.
  std::string two = yaml;
  two.replace(two.find("mars-base-1"), 11, "me-riyadh-1");
  write("image.yaml", two);
  StepRun r = run("publish image.yaml", "OCI_IAAS_ENDPOINT=" + shell_quote(endpoint_));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("no Compute endpoint for region me-riyadh-1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("OCI_IAAS_ENDPOINT_ME_RIYADH_1"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(dir_.file("image.yaml")), two);
  json stats = fake("GET", "/_fake/stats");
  for (const char* region : {"me-jeddah-1", "mars-base-1", "me-riyadh-1"})
    EXPECT_FALSE(stats["regions"].contains(region)) << stats["regions"].dump();
}

TEST_F(OciSteps, AGoneObjectIsExportedFromTheHomeImageFirst) {
  imported("us-ashburn-1, af-johannesburg-1");
  ImageMetadata m = meta();
  std::string object = "images/" + *m.get_string("image_file");
  fake("DELETE", "/_fake/object?bucket=" + bucket_ + "&name=" + object);
  std::string before = slurp(dir_.file("image.yaml"));
  StepRun dry = run("--dry-run publish image.yaml");
  EXPECT_EQ(dry.code, 0) << dry.err;
  EXPECT_NE(dry.out.find("(ExportImage first if the object is gone)"), std::string::npos) << dry.out;
  EXPECT_EQ(slurp(dir_.file("image.yaml")), before);

  StepRun pub = run("publish image.yaml");
  ASSERT_EQ(pub.code, 0) << pub.err;
  EXPECT_NE(pub.err.find("the uploaded object oci://" + bucket_ + "@fakens/" + object + " is gone; exporting image " +
                         *m.get_string("import_id") + " to " + object + ".exported.qcow2"),
            std::string::npos) << pub.err;
  expect_published({"us-ashburn-1", "af-johannesburg-1"});
  json ps = pars();
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps.begin().value()["objectName"], object + ".exported.qcow2");
  json state = fake("GET", "/_fake/state");
  EXPECT_FALSE(state["objects"].contains(bucket_ + "/" + object + ".exported.qcow2"));  // deleted with the PARs
  EXPECT_FALSE(op_get(meta(), "publish_export", "object"));
}

}  // namespace
}  // namespace ch::test
