// cloud: gcp end to end: the built binary takes a sparse raw disk through
// convert, checksum, upload, import, publish and rollback against the fake
// Google Cloud (tests/gcp/fake_gcp.py); the object's bytes, the image and
// its IAM policy are read back from the fake. Also: every credential type
// (service account JWT, authorized user, workload identity federation, the
// metadata server), SIGKILL mid-upload, faults, dry runs, bad input, and no
// secret in a debug log.
#include <thread>

#include "tests/gcp_steps_fixture.h"

namespace ch::test::gcp_steps {
namespace {

std::string object_name(const ImageMetadata& m) {
  std::string url = m.get_string("upload_url").value_or("");
  size_t at = url.find('/', 5);
  return at == std::string::npos ? "" : url.substr(at + 1);
}

bool has_member(const json& policy, const std::string& role, const std::string& member) {
  for (const json& b : policy.value("bindings", json::array()))
    if (b.value("role", "") == role)
      for (const json& m : b.value("members", json::array()))
        if (m == member) return true;
  return false;
}

TEST_F(GcpSteps, FullFlowThenPublishConvergesKeepingOtherBindings) {
  make_disk("disk.img", 64 * kMiB);
  write("image.yaml", yaml_inputs("public: true\nend_of_life: 2099-05-01\n",
                                  "  image_users: [group:devs@example.com]\n  labels: {Team: Images}\n"));
  for (const char* action : {"convert", "checksum", "upload"}) {
    StepRun r = run(std::string(action) + " image.yaml");
    ASSERT_EQ(r.code, 0) << action << ": " << r.err;
  }
  ImageMetadata m = meta();
  std::string local = read(m.get_string("image_file").value_or(""));
  ASSERT_GT(local.size(), 3 * kMiB) << "several 256 KiB chunks";
  EXPECT_EQ(m.get_string("upload_url").value_or(""), "gs://" + bucket_ + "/images/" + name_ + ".tar.gz");
  EXPECT_EQ(object_bytes(object_name(m)), local) << "the object is the tarball, byte for byte";
  EXPECT_EQ(op_get(m, "upload", "state"), "complete");
  EXPECT_FALSE(op_get(m, "upload", "session")) << "no session left once done";

  StepRun im = run("import image.yaml");
  ASSERT_EQ(im.code, 0) << im.err;
  m = meta();
  EXPECT_EQ(m.get_string("import_id").value_or(""), "projects/fake-project/global/images/" + name_);
  EXPECT_EQ(m.get_string("import_region").value_or(""), "global");
  json image = api("GET", image_path());
  ASSERT_TRUE(image.is_object());
  EXPECT_EQ(image["status"], "READY");
  EXPECT_EQ(image["architecture"], "X86_64");
  EXPECT_EQ(image["family"], "alpine-3-21");
  EXPECT_EQ(image["description"], "Alpine Linux 3.21");
  EXPECT_EQ(image["rawDisk"]["source"], "https://storage.googleapis.com/" + bucket_ + "/images/" + name_ + ".tar.gz");
  EXPECT_EQ(image["labels"]["project"], "example");
  EXPECT_EQ(image["labels"]["team"], "images");
  std::vector<std::string> features;
  for (const json& f : image["guestOsFeatures"]) features.push_back(f["type"]);
  EXPECT_EQ(features, (std::vector<std::string>{"VIRTIO_SCSI_MULTIQUEUE", "GVNIC", "UEFI_COMPATIBLE", "SEV_CAPABLE"}));

  // Someone else's binding, set before publish, must survive it.
  json before = api("GET", image_path() + "/getIamPolicy");
  before["bindings"] = json::array({{{"role", "roles/compute.viewer"}, {"members", {"user:ops@example.com"}}}});
  ASSERT_TRUE(api("POST", image_path() + "/setIamPolicy", json{{"policy", before}}.dump()).is_object());

  StepRun pub = run("publish image.yaml");
  ASSERT_EQ(pub.code, 0) << pub.err;
  json policy = api("GET", image_path() + "/getIamPolicy");
  EXPECT_TRUE(has_member(policy, "roles/compute.imageUser", "allAuthenticatedUsers")) << policy.dump();
  EXPECT_TRUE(has_member(policy, "roles/compute.imageUser", "group:devs@example.com")) << policy.dump();
  EXPECT_TRUE(has_member(policy, "roles/compute.viewer", "user:ops@example.com")) << policy.dump();
  image = api("GET", image_path());
  EXPECT_EQ(image["deprecated"]["state"], "ACTIVE") << "end_of_life is ahead: only scheduled";
  EXPECT_EQ(image["deprecated"]["deprecated"], "2099-05-01T23:59:00Z");
  m = meta();
  EXPECT_EQ(map_get(m, "artifacts", "global").value_or(""), "projects/fake-project/global/images/" + name_);
  EXPECT_TRUE(m.get_string("published"));

  // Converges: nothing left to change, nothing sent but reads.
  std::string etag = policy["etag"];
  StepRun again = run("publish image.yaml");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("already has every member"), std::string::npos) << again.out;
  EXPECT_EQ(api("GET", image_path() + "/getIamPolicy")["etag"], etag);

  StepRun rb = run("rollback image.yaml");
  EXPECT_EQ(rb.code, 2) << "refused once published: " << rb.err;
}

TEST_F(GcpSteps, RollbackDeletesTheImageAndTheObject) {
  make_disk("disk.img", 16 * kMiB, 2);
  write("image.yaml", yaml_inputs());
  for (const char* action : {"convert", "upload", "import"}) {
    StepRun r = run(std::string(action) + " image.yaml");
    ASSERT_EQ(r.code, 0) << action << ": " << r.err;
  }
  std::string object = object_name(meta());
  ASSERT_TRUE(api("GET", image_path()).is_object());
  StepRun rb = run("rollback image.yaml");
  ASSERT_EQ(rb.code, 0) << rb.err;
  EXPECT_TRUE(api("GET", image_path()).is_null()) << "image deleted";
  EXPECT_TRUE(api("GET", "/storage/v1/b/" + bucket_ + "/o/images%2F" + name_ + ".tar.gz").is_null()) << "object deleted";
  ImageMetadata m = meta();
  for (const char* key : {"uploaded", "upload_url", "imported", "import_id", "import_region", "operations"})
    EXPECT_FALSE(m.has(key)) << key;
  EXPECT_FALSE(object.empty());
}

TEST_F(GcpSteps, KilledMidUploadTheRerunResumesTheSessionAndSendsOnlyTheRest) {
  make_disk("disk.img", 32 * kMiB, 3);
  write("image.yaml", yaml_inputs());
  ASSERT_EQ(run("convert image.yaml").code, 0);
  // 256 KiB chunks, 60 ms each: the upload takes about a second.
  fake("POST", "/_fake/config", R"({"chunk_delay": 0.06})");
  auto since = std::make_shared<std::chrono::steady_clock::time_point>();
  int code = 0;
  bool killed = run_and_kill("upload image.yaml", "image.yaml", [since](const ImageMetadata& m) {
    if (!op_get(m, "upload", "session")) return false;
    if (*since == std::chrono::steady_clock::time_point()) *since = std::chrono::steady_clock::now();
    return std::chrono::steady_clock::now() - *since > std::chrono::milliseconds(400);
  }, &code);
  fake("POST", "/_fake/config", R"({"chunk_delay": 0})");
  ASSERT_TRUE(killed) << "upload ended (exit " << code << ") before it could be killed";
  std::string key = bucket_ + "/images/" + name_ + ".tar.gz";
  uint64_t before = fake("GET", "/_fake/stats")["upload_bytes"].value(key, 0);
  ImageMetadata m = meta();
  uint64_t size = read(m.get_string("image_file").value_or("")).size();
  ASSERT_GT(before, 0u) << "some chunks went out before the kill";
  ASSERT_LT(before, size) << "killed before the end";

  StepRun up = run("upload image.yaml");
  ASSERT_EQ(up.code, 0) << up.err;
  EXPECT_NE(up.err.find("resuming the resumable upload"), std::string::npos) << up.err;
  uint64_t after = fake("GET", "/_fake/stats")["upload_bytes"].value(key, 0);
  EXPECT_LE(after, size + 256 * 1024) << "only the rest was sent (at most one chunk again)";
  m = meta();
  EXPECT_EQ(object_bytes(object_name(m)), read(m.get_string("image_file").value_or("")));
  int objects = 0, sessions = 0;
  json st = state();
  for (auto& [k, v] : st["objects"].items()) objects += k.rfind(bucket_ + "/", 0) == 0;
  for (auto& [k, v] : st["sessions"].items()) sessions += v["object"] == key;
  EXPECT_EQ(objects, 1) << "no second object";
  EXPECT_EQ(sessions, 1) << "the session was resumed, not replaced";
}

TEST_F(GcpSteps, FaultsOnEveryServiceStillFinishOnce) {
  make_disk("disk.img", 16 * kMiB, 4);
  std::string project = "faults-" + name_.substr(name_.size() - 12);
  write("image.yaml", yaml_inputs("public: true\n", "", project));
  ASSERT_EQ(run("convert image.yaml").code, 0);
  json rule = {{"match", bucket_ + "|projects/" + project + "/"}, {"status503", 0.15}, {"throttle", 0.1},
               {"drop", 0.1}, {"drop_after", 0.1}, {"seed", 7}, {"max_faults", 25}};
  fake("POST", "/_fake/faults?rule=" + name_, rule.dump());
  for (const char* action : {"upload", "import", "publish"}) {
    StepRun r = run(std::string(action) + " image.yaml");
    EXPECT_EQ(r.code, 0) << action << ": " << r.err;
  }
  fake("DELETE", "/_fake/faults?rule=" + name_);
  ImageMetadata m = meta();
  EXPECT_EQ(object_bytes(object_name(m)), read(m.get_string("image_file").value_or("")));
  json st = state();
  int images = 0;
  for (auto& [k, v] : st["images"].items()) images += k.rfind(project + "/", 0) == 0;
  EXPECT_EQ(images, 1);
  EXPECT_TRUE(has_member(api("GET", image_path(project) + "/getIamPolicy"), "roles/compute.imageUser",
                         "allAuthenticatedUsers"));
}

TEST_F(GcpSteps, EveryCredentialTypeAndTheMetadataServer) {
  make_disk("disk.img", 8 * kMiB, 5);
  write("image.yaml", yaml_inputs());
  ASSERT_EQ(run("convert image.yaml").code, 0);
  struct Case {
    std::string creds, extra, source;
  } cases[] = {
      {env_or("CLOUD_HELPER_GCP_USER_JSON"), "", "authorized user"},
      {env_or("CLOUD_HELPER_GCP_EXTERNAL_JSON"), "", "external account"},
      {"", "GCE_METADATA_HOST=" + endpoint_.substr(7), "metadata server"},
  };
  for (const Case& c : cases) {
    StepRun r = run("--force upload image.yaml", c.extra, c.creds);
    EXPECT_EQ(r.code, 0) << c.source << ": " << r.err;
    EXPECT_NE(r.err.find(c.source), std::string::npos) << r.err;
  }
  // The project from the metadata server when the YAML names none.
  std::string yaml = read("image.yaml");
  yaml.replace(yaml.find("  project: fake-project\n"), 24, "");
  write("image.yaml", yaml);
  StepRun im = run("import image.yaml", "GCE_METADATA_HOST=" + endpoint_.substr(7), "");
  ASSERT_EQ(im.code, 0) << im.err;
  EXPECT_EQ(meta().get_string("import_id").value_or(""), "projects/fake-metadata-project/global/images/" + name_);

  // A service account whose key the fake does not know: the JWT signature fails, one line.
  json forged = json::parse(slurp(sa_json_));
  auto key = run_command("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null");
  forged["private_key"] = key.output;
  write("forged.json", forged.dump());
  StepRun bad = run("--force upload image.yaml", "", dir_.file("forged.json"));
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("HTTP 400 invalid_grant: Invalid JWT Signature."), std::string::npos) << bad.err;
}

TEST_F(GcpSteps, DryRunSendsNothingAndBadInputChangesNothing) {
  make_disk("disk.img", 8 * kMiB, 6);
  write("image.yaml", yaml_inputs());
  ASSERT_EQ(run("convert image.yaml").code, 0);
  std::string before = read("image.yaml");
  StepRun dry = run("--dry-run upload image.yaml");
  ASSERT_EQ(dry.code, 0) << dry.err;
  EXPECT_NE(dry.out.find("uploadType=resumable"), std::string::npos) << dry.out;
  EXPECT_EQ(read("image.yaml"), before);
  EXPECT_TRUE(state()["objects"].is_object());
  for (auto& [k, v] : state()["objects"].items()) EXPECT_NE(k.rfind(bucket_ + "/", 0), 0u) << "nothing uploaded";

  std::string bad = before + "";
  bad.replace(bad.find("  family: alpine-3-21\n"), 22, "  family: alpine-3-21\n  guest_os_features: [FOO]\n");
  write("image.yaml", bad);
  StepRun r = run("upload image.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("gcp.guest_os_features: unknown feature 'FOO'"), std::string::npos) << r.err;
  EXPECT_EQ(read("image.yaml"), bad);

  std::string s3 = before;
  s3.replace(s3.find("gs://"), 5, "s3://");
  write("image.yaml", s3);
  r = run("upload image.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("is not a gs://bucket/prefix/ URL"), std::string::npos) << r.err;
  EXPECT_EQ(read("image.yaml"), s3);

  write("image.yaml", before);
  r = run("import image.yaml");
  EXPECT_EQ(r.code, 2) << "not uploaded yet";
  EXPECT_NE(r.err.find("run upload first"), std::string::npos) << r.err;
}

TEST_F(GcpSteps, AnObjectNoRunMadeIsNotOverwrittenWithoutForce) {
  make_disk("disk.img", 8 * kMiB, 8);
  write("image.yaml", yaml_inputs());
  ASSERT_EQ(run("convert image.yaml").code, 0);
  ASSERT_EQ(run("upload image.yaml").code, 0);
  // Same content under another image's YAML: adopted, nothing sent.
  write("other.yaml", yaml_inputs("image_file: " + meta().get_string("image_file").value_or("") + "\nimage_format: gce-tar\n"));
  StepRun same = run("upload other.yaml");
  EXPECT_EQ(same.code, 0) << same.err;
  EXPECT_NE(same.err.find("already there"), std::string::npos) << same.err;
  // Different content: refused.
  std::string y = yaml_inputs();
  y.replace(y.find("name: " + name_), 6 + name_.size(), "name: " + name_ + "\nimage_file: conflict/" + name_ + ".tar.gz");
  ASSERT_EQ(run_command("mkdir -p " + shell_quote(dir_.file("conflict"))).exit_code, 0);
  ASSERT_EQ(run_command("head -c 300000 /dev/urandom > " + shell_quote(dir_.file("conflict/" + name_ + ".tar.gz"))).exit_code, 0);
  y += "image_format: gce-tar\n";
  write("third.yaml", y);
  StepRun diff = run("upload third.yaml");
  EXPECT_EQ(diff.code, 1);
  EXPECT_NE(diff.err.find("already exists"), std::string::npos) << diff.err;
  EXPECT_NE(diff.err.find("--force"), std::string::npos) << diff.err;
}

TEST_F(GcpSteps, AFailedImportOperationIsOneLineAndTheRerunStartsAfresh) {
  // Not a tar holding disk.raw: Compute's operation ends with an error.
  ASSERT_EQ(run_command("head -c 700000 /dev/urandom > " + shell_quote(dir_.file("junk.tar.gz"))).exit_code, 0);
  write("image.yaml", yaml_inputs("image_file: junk.tar.gz\nimage_format: gce-tar\n"));
  ASSERT_EQ(run("upload image.yaml").code, 0);
  StepRun im = run("import image.yaml");
  EXPECT_EQ(im.code, 1);
  EXPECT_NE(im.err.find("operation operation-"), std::string::npos) << im.err;
  EXPECT_NE(im.err.find("failed (HTTP 400): INVALID_IMAGE_FILE: "), std::string::npos) << im.err;
  std::string last = im.err.substr(im.err.rfind('\n', im.err.size() - 2) + 1);
  EXPECT_NE(last.find("import: images.insert projects/fake-project/global/images/" + name_ + ": operation"),
            std::string::npos) << "one line naming the step, the image and the cause: " << last;
  ImageMetadata m = meta();
  EXPECT_FALSE(op_get(m, "import", "operation"));
  EXPECT_FALSE(m.get_string("imported"));
  EXPECT_TRUE(api("GET", image_path()).is_null());
}

TEST_F(GcpSteps, NoSecretInADebugLog) {
  make_disk("disk.img", 8 * kMiB, 10);
  write("image.yaml", yaml_inputs("public: true\n"));
  ASSERT_EQ(run("convert image.yaml").code, 0);
  json sa = json::parse(slurp(sa_json_));
  std::string key_line = sa["private_key"].get<std::string>().substr(40, 40);
  for (const char* action : {"upload", "import", "publish"}) {
    StepRun r = run(std::string("--log-level debug ") + action + " image.yaml");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("http: "), std::string::npos) << "a debug trace was written";
    EXPECT_EQ(r.err.find("ya29."), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find(key_line), std::string::npos);
    // The session id is a write capability: never printed, not even in the
    // Location header of the answer that creates it.
    EXPECT_EQ(r.err.find("upload_id=ADPycd"), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("ya29."), std::string::npos);
  }
  StepRun u = run("--log-level debug --force upload image.yaml", "", env_or("CLOUD_HELPER_GCP_USER_JSON"));
  EXPECT_EQ(u.code, 0) << u.err;
  EXPECT_EQ(u.err.find("fake-refresh-token"), std::string::npos);
  EXPECT_EQ(u.err.find("fake-client-secret"), std::string::npos);
}

}  // namespace
}  // namespace ch::test::gcp_steps
