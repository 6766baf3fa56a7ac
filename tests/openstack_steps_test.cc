// cloud: openstack end to end: the built binary takes a sparse raw disk
// through convert, checksum, import (two regions) and publish against
// Debian's real Keystone and Glance; every image read back through Glance
// (bytes, os_hash_value, checksum, properties, visibility). Also: vmdk and
// raw, clouds.yaml with an application credential, shared images with
// members, rollback, SIGKILL mid-import and re-run, faults on Glance, bad
// credentials, dry runs and bad input, and no secret in a debug log; regions
// in parallel, Glance quotas (Keystone unified limits: 413 on create, an
// import task failing) and the converging re-run once lifted, an unknown
// region, tags and members converged by publish, glance-direct, and
// web-download (from the services' static HTTP server; and refused).
#include <sys/stat.h>

#include "tests/openstack_steps_fixture.h"

namespace ch::test::openstack_steps {
namespace {

constexpr uint64_t kMiB = 1 << 20;

TEST_F(OpenStackSteps, FullFlowTwoRegionsPublicReadBackThroughGlance) {
  make_disk("disk.img", 24 * kMiB);
  write("image.yaml", yaml_inputs("regions: [RegionOne, RegionTwo]\npublic: true\n"
                                  "openstack:\n  qemu_guest_agent: true\n  properties: {hw_rng_model: virtio}\n"));
  std::string env = password_env();
  for (const char* action : {"convert", "checksum", "upload", "import", "publish"}) {
    bool import = std::string(action) == "import";
    StepRun r = run(std::string(import ? "--log-level debug " : "") + action + " image.yaml", env);
    ASSERT_EQ(r.code, 0) << action << "\n" << r.out << r.err << read("image.yaml");
    if (std::string(action) == "upload") {
      EXPECT_NE(r.err.find("does not apply to cloud openstack"), std::string::npos) << r.err;
    }
    if (import) {
      // The regions go in parallel: RegionTwo's image is made while
      // RegionOne's data is still on its way (one after the other, its POST
      // would come after RegionOne's PUT answered).
      size_t post_two = r.err.find("http: POST " + glance_url("RegionTwo") + "/v2/images (");
      size_t put_one_done = r.err.find("/file -> ", r.err.find("http: PUT " + glance_url("RegionOne") + "/v2/images/"));
      EXPECT_NE(post_two, std::string::npos) << r.err;
      EXPECT_LT(post_two, put_one_done) << r.err;
    }
  }
  ImageMetadata m = meta();
  std::string qcow2 = m.resolve(m.get_string("image_file").value_or(""));
  std::string bytes = slurp(qcow2);
  ASSERT_FALSE(bytes.empty());
  for (const char* region : {"RegionOne", "RegionTwo"}) {
    std::string id = map_get(m, "artifacts", region).value_or("");
    ASSERT_FALSE(id.empty()) << region;
    EXPECT_EQ(op_get(m, "import", region).value_or(""), id);
    json img = image(region, id);
    ASSERT_TRUE(img.is_object()) << region;
    EXPECT_EQ(img["status"], "active");
    EXPECT_EQ(img["visibility"], "public");
    EXPECT_EQ(img["disk_format"], "qcow2");
    EXPECT_EQ(img["container_format"], "bare");
    EXPECT_EQ(img["min_disk"], 1);
    EXPECT_EQ(img["os_hash_algo"], "sha512");
    EXPECT_EQ(img["os_hash_value"], digest_hex(bytes, "sha512"));
    EXPECT_EQ(img["checksum"], digest_hex(bytes, "md5"));
    EXPECT_EQ(img["virtual_size"], 24 * kMiB) << "Glance's own qcow2 inspection";
    EXPECT_EQ(img["architecture"], "x86_64");
    EXPECT_EQ(img["hw_firmware_type"], "uefi");
    EXPECT_EQ(img["hw_machine_type"], "q35");
    EXPECT_EQ(img["hw_disk_bus"], "virtio");
    EXPECT_EQ(img["hw_vif_multiqueue_enabled"], "true");
    EXPECT_EQ(img["hw_qemu_guest_agent"], "yes");
    EXPECT_EQ(img["hw_rng_model"], "virtio");
    EXPECT_EQ(img["os_distro"], "os");
    EXPECT_EQ(img["os_version"], "3.21.0");
    EXPECT_TRUE(image_bytes(region, id) == bytes) << region << ": bytes read back through Glance differ";
    EXPECT_EQ(images_named(region).size(), 1u) << region;
  }
  EXPECT_EQ(m.get_string("import_region").value_or(""), "RegionOne");
  EXPECT_EQ(m.get_string("import_id").value_or(""), map_get(m, "artifacts", "RegionOne").value_or("?"));
  EXPECT_TRUE(m.get_string("published"));

  // Re-runs: import is skipped, publish converges (a visibility changed
  // behind its back is set again) and makes nothing new.
  StepRun again = run("import image.yaml", env);
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("import: already imported"), std::string::npos) << again.err;
  std::string two = map_get(m, "artifacts", "RegionTwo").value_or("");
  auto patched = glance("PATCH", "RegionTwo", "/v2/images/" + two, R"([{"op":"replace","path":"/visibility","value":"private"}])",
                        "application/openstack-images-v2.1-json-patch");
  ASSERT_TRUE(patched.ok() && patched->status == 200) << (patched.ok() ? patched->body : patched.message());
  StepRun pub = run("publish image.yaml", env);
  ASSERT_EQ(pub.code, 0) << pub.err;
  EXPECT_EQ(image("RegionTwo", two)["visibility"], "public");
  EXPECT_EQ(images_named("RegionTwo").size(), 1u);
  StepRun refused = run("rollback image.yaml", env);
  EXPECT_EQ(refused.code, 2) << refused.err;
}

TEST_F(OpenStackSteps, VmdkWithCloudsYamlApplicationCredentialThenRollback) {
  make_disk("disk.img", 16 * kMiB);
  write("image.yaml", yaml_inputs("image_format: vmdk\n", "bios"));
  // clouds.yaml in the working directory, the secret in secure.yaml beside it.
  write("clouds.yaml", "clouds:\n  test:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: " +
                           auth_url().substr(0, auth_url().size() - 3) + "\n      application_credential_id: " +
                           env_["CLOUD_HELPER_OS_APP_CRED_ID"] + "\n    region_name: RegionTwo\n"
                           "    interface: public\n    identity_api_version: 3\n");
  write("secure.yaml", "clouds:\n  test:\n    auth:\n      application_credential_secret: " +
                           env_["CLOUD_HELPER_OS_APP_CRED_SECRET"] + "\n");
  std::string env = "OS_CLOUD=test";
  for (const char* action : {"convert", "import"}) {
    StepRun r = run(std::string(action) + " image.yaml", env);
    ASSERT_EQ(r.code, 0) << action << "\n" << r.out << r.err << read("image.yaml");
  }
  ImageMetadata m = meta();
  std::string id = op_get(m, "import", "RegionTwo").value_or("");
  ASSERT_FALSE(id.empty()) << read("image.yaml");
  EXPECT_FALSE(op_get(m, "import", "RegionOne")) << "only the cloud's region_name";
  json img = image("RegionTwo", id);
  ASSERT_TRUE(img.is_object());
  EXPECT_EQ(img["disk_format"], "vmdk");
  EXPECT_EQ(img["vmware_disktype"], "streamOptimized");
  EXPECT_EQ(img["hw_firmware_type"], "bios");
  EXPECT_FALSE(img.contains("hw_machine_type"));
  EXPECT_EQ(img["visibility"], "private");
  EXPECT_TRUE(image_bytes("RegionTwo", id) == slurp(m.resolve(*m.get_string("image_file"))));

  StepRun rb = run("rollback image.yaml", env);
  ASSERT_EQ(rb.code, 0) << rb.err;
  EXPECT_TRUE(image("RegionTwo", id).is_null()) << "deleted in Glance";
  EXPECT_TRUE(images_named("RegionTwo").empty());
  m = meta();
  EXPECT_FALSE(m.get_string("imported"));
  EXPECT_FALSE(m.has("operations")) << read("image.yaml");
}

TEST_F(OpenStackSteps, RawSharedWithMembersByApplicationCredentialId) {
  make_disk("disk.img", 8 * kMiB);
  std::string partner = env_["CLOUD_HELPER_OS_PARTNER_PROJECT"];
  write("image.yaml", yaml_inputs("image_format: raw\nimage_file: disk.img\nregions: [RegionOne]\n"
                                  "openstack:\n  visibility: shared\n  members: [" + partner + "]\n  os_distro: alpine\n"));
  std::string env = "OS_AUTH_URL=" + shell_quote(auth_url()) + " OS_APPLICATION_CREDENTIAL_ID=" +
                    env_["CLOUD_HELPER_OS_APP_CRED_ID"] + " OS_APPLICATION_CREDENTIAL_SECRET=" +
                    env_["CLOUD_HELPER_OS_APP_CRED_SECRET"];
  for (const char* action : {"import", "publish", "publish"}) {
    StepRun r = run(std::string(action) + " image.yaml", env);
    ASSERT_EQ(r.code, 0) << action << "\n" << r.out << r.err << read("image.yaml");
  }
  ImageMetadata m = meta();
  std::string id = map_get(m, "artifacts", "RegionOne").value_or("");
  json img = image("RegionOne", id);
  ASSERT_TRUE(img.is_object());
  EXPECT_EQ(img["visibility"], "shared");
  EXPECT_EQ(img["disk_format"], "raw");
  EXPECT_EQ(img["os_distro"], "alpine");
  EXPECT_EQ(img["min_disk"], 1);
  EXPECT_EQ(img["checksum"], digest_hex(slurp(file("disk.img")), "md5"));
  auto members = glance("GET", "RegionOne", "/v2/images/" + id + "/members");
  ASSERT_TRUE(members.ok() && members->status == 200);
  json doc = json::parse(members->body);
  ASSERT_EQ(doc["members"].size(), 1u) << members->body;
  EXPECT_EQ(doc["members"][0]["member_id"], partner);
}

TEST_F(OpenStackSteps, KilledMidImportThenRerunLeavesOneImage) {
  // A raw image goes whole, holes included: 96 MiB keep Glance busy
  // (writing and hashing) long enough to be seen saving.
  Status s = make_sparse_file(file("disk.img"), 96 * kMiB, {{0, 8 * kMiB}, {90 * kMiB, 6 * kMiB}}, 7);
  ASSERT_TRUE(s.ok()) << s.message();
  write("image.yaml", yaml_inputs("image_format: raw\nimage_file: disk.img\nregions: [RegionOne]\n"));
  std::string env = password_env();
  int code = -1;
  // Killed while Glance writes the data: its file store (beside the env
  // file) holds part of the image. Watching the store, not the API: a
  // single-process Glance busy taking the data in may answer a GET only
  // once the upload is over.
  std::string env_file = std::getenv("CLOUD_HELPER_OS_ENV_FILE");
  std::string store = env_file.substr(0, env_file.rfind('/')) + "/images-RegionOne/";
  auto killed = run_and_kill_when(command("import image.yaml", env) + " >/dev/null 2>&1", file("image.yaml"),
                                  [&](const ImageMetadata& m) {
                                    auto id = op_get(m, "import", "RegionOne");
                                    struct stat st;
                                    return id && ::stat((store + *id).c_str(), &st) == 0 && st.st_size > 0 &&
                                           static_cast<uint64_t>(st.st_size) < 96 * kMiB;
                                  },
                                  &code);
  ASSERT_TRUE(killed.ok()) << killed.message();
  ImageMetadata before = meta();
  std::string first = op_get(before, "import", "RegionOne").value_or("");
  ASSERT_FALSE(first.empty());
  StepRun r = run("import image.yaml", env);
  ASSERT_EQ(r.code, 0) << r.err << read("image.yaml");
  ImageMetadata m = meta();
  std::string data = slurp(file("disk.img"));
  for (const char* region : {"RegionOne"}) {
    auto images = images_named(region);
    ASSERT_EQ(images.size(), 1u) << region << ": no duplicate left in Glance";
    EXPECT_EQ(images[0]["id"], op_get(m, "import", region).value_or("?"));
    EXPECT_EQ(images[0]["status"], "active");
    EXPECT_EQ(images[0]["os_hash_value"], digest_hex(data, "sha512"));
  }
  if (*killed) {
    // Glance puts an interrupted upload back to queued: the re-run uploads
    // into the same image. When the kill came after the last byte had left
    // (Glance still writing its store), Glance finishes the image itself and
    // the re-run adopts it. Either way: the same image, no second one.
    EXPECT_EQ(op_get(m, "import", "RegionOne").value_or(""), first);
    EXPECT_TRUE(r.err.find("is queued") != std::string::npos ||
                r.err.find("is already active with the file's digests") != std::string::npos)
        << r.err;
  } else {
    ADD_FAILURE() << "the import ended (exit " << code << ") before it could be killed mid-upload";
  }
}

TEST_F(OpenStackSteps, PublishGoesOnPastAFailingRegion) {
  make_disk("disk.img", 4 * kMiB);
  write("image.yaml", yaml_inputs("image_format: raw\nimage_file: disk.img\nregions: [RegionOne]\n"
                                  "openstack:\n  visibility: community\n"));
  std::string env = password_env();
  StepRun imp = run("import image.yaml", env);
  ASSERT_EQ(imp.code, 0) << imp.err;
  ImageMetadata m = meta();
  m.set("regions", MetaValue::List{"RegionNowhere", "RegionOne"});
  ASSERT_TRUE(m.save().ok());
  StepRun r = run("publish image.yaml", env);
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("no public image (Glance) endpoint in region RegionNowhere"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1 of 2 regions failed: RegionNowhere"), std::string::npos) << r.err;
  m = meta();
  std::string id = map_get(m, "artifacts", "RegionOne").value_or("");
  EXPECT_EQ(image("RegionOne", id)["visibility"], "community");
  EXPECT_FALSE(m.get_string("published"));
}

TEST_F(OpenStackSteps, GlanceFaultsStillComplete) {
  make_disk("disk.img", 8 * kMiB);
  write("image.yaml", yaml_inputs("regions: [RegionFault]\n"));
  // Through the proxy: a dropped POST, a 500 on the upload, an upload whose
  // answer is lost after Glance stored it, a 503 on a GET.
  json rule = {{"match", "^(POST|PUT|GET) "}, {"sequence", {"drop", "ok", "status500", "drop_after", "status503"}}};
  fault("POST", "/_fault/config?rule=" + name_, rule.dump());
  std::string env = password_env("");
  StepRun conv = run("convert image.yaml", env);
  ASSERT_EQ(conv.code, 0) << conv.err;
  StepRun r = run("import image.yaml", env);
  fault("DELETE", "/_fault/config?rule=" + name_);
  ASSERT_EQ(r.code, 0) << r.err << read("image.yaml");
  ImageMetadata m = meta();
  std::string id = op_get(m, "import", "RegionFault").value_or("");
  // RegionFault is RegionOne's Glance behind the proxy.
  auto images = images_named("RegionOne");
  ASSERT_EQ(images.size(), 1u);
  EXPECT_EQ(images[0]["id"], id);
  EXPECT_EQ(images[0]["status"], "active");
  EXPECT_TRUE(image_bytes("RegionOne", id) == slurp(m.resolve(*m.get_string("image_file"))));
}

TEST_F(OpenStackSteps, BadCredentialsFailInOneLineWithoutTheSecret) {
  make_disk("disk.img", 4 * kMiB);
  write("image.yaml", yaml_inputs("image_format: raw\nimage_file: disk.img\n"));
  std::string before = read("image.yaml");
  std::string env = "OS_AUTH_URL=" + shell_quote(auth_url()) +
                    " OS_USERNAME=admin OS_PASSWORD=wrong-password-123 OS_PROJECT_NAME=admin OS_REGION_NAME=RegionOne";
  StepRun r = run("import image.yaml", env);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("Keystone POST " + auth_url() + "/auth/tokens (user admin, project admin): HTTP 401 Unauthorized"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("(request id req-"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("wrong-password-123"), std::string::npos) << r.err;
  EXPECT_EQ(error_lines(r.err), 1) << r.err;
  EXPECT_TRUE(images_named("RegionOne").empty());
}

TEST_F(OpenStackSteps, DryRunAndBadInputChangeNothing) {
  make_disk("disk.img", 4 * kMiB);
  write("image.yaml", yaml_inputs("image_format: raw\nimage_file: disk.img\nregions: [RegionOne]\n"));
  std::string before = read("image.yaml");
  StepRun dry = run("--dry-run import image.yaml", password_env());
  EXPECT_EQ(dry.code, 0) << dry.err;
  EXPECT_NE(dry.out.find("would POST /v2/images " + name_), std::string::npos) << dry.out;
  EXPECT_EQ(read("image.yaml"), before);
  EXPECT_TRUE(images_named("RegionOne").empty());

  struct Case {
    std::string extra, env, message;
  };
  std::vector<Case> cases = {
      {"openstack:\n  visibility: everyone\n", password_env(), "openstack.visibility must be public, community, shared or private"},
      {"openstack:\n  members: [p1]\n", password_env(), "openstack.members needs openstack.visibility: shared"},
      {"openstack:\n  properties: {min_disk: '3'}\n", password_env(), "is a Glance image field"},
      {"", "OS_USERNAME=admin", "OS_AUTH_URL is not set"},
      {"", "OS_CLOUD=nope", "OS_CLOUD=nope: no clouds.yaml found"},
  };
  for (const Case& c : cases) {
    write("image.yaml", yaml_inputs("image_format: raw\nimage_file: disk.img\n" + c.extra));
    std::string text = read("image.yaml");
    StepRun r = run("import image.yaml", c.env);
    EXPECT_EQ(r.code, 2) << c.extra << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_EQ(read("image.yaml"), text);
  }
  write("image.yaml", yaml_inputs("image_format: vhd\nimage_file: disk.img\n"));
  StepRun vhd = run("import image.yaml", password_env());
  EXPECT_EQ(vhd.code, 2) << vhd.err;
  EXPECT_NE(vhd.err.find("Glance takes image_format qcow2, vmdk or raw"), std::string::npos) << vhd.err;
}

TEST_F(OpenStackSteps, DebugLogShowsNoSecret) {
  make_disk("disk.img", 4 * kMiB);
  write("image.yaml", yaml_inputs("image_format: raw\nimage_file: disk.img\n"));
  StepRun r = run("--log-level debug import image.yaml", password_env());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("http: PUT"), std::string::npos) << "the debug trace is on";
  EXPECT_EQ(r.err.find(password()), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(token()), std::string::npos);
  // Our own token is not theirs: look for any fernet token (gAAAAA...) instead.
  EXPECT_EQ(r.err.find("gAAAAA"), std::string::npos) << r.err;
  StepRun rb = run("--log-level debug rollback image.yaml", password_env());
  EXPECT_EQ(rb.code, 0) << rb.err;
  EXPECT_EQ(rb.err.find("gAAAAA"), std::string::npos) << rb.err;
}

// Regions are imported in parallel; a region whose Glance refuses the image
// (413, the project's image count limit in Keystone's unified limits, which
// RegionQuota's Glance enforces) does not stop the other; after the limit
// is lifted the re-run finishes with one image per region.
TEST_F(OpenStackSteps, QuotaRefusalThenLiftedConverges) {
  make_disk("disk.img", 4 * kMiB);
  std::string project = env_["CLOUD_HELPER_OS_QUOTA_PROJECT"];
  ASSERT_FALSE(project.empty()) << "the services predate the quota project: restart them";
  std::string limit_id = set_quota_limit("quota", project, "image_count_total", 0);
  ASSERT_FALSE(limit_id.empty());
  std::string env = password_env("", "quota");

  // One region: exit 1, one line with the status and Glance's message.
  write("image.yaml", yaml_inputs("image_format: raw\nimage_file: disk.img\nregions: [RegionQuota]\n"));
  StepRun one = run("import image.yaml", env);
  EXPECT_EQ(one.code, 1) << one.err;
  EXPECT_NE(one.err.find("Glance POST " + glance_url("RegionQuota") + "/v2/images (RegionQuota): HTTP 413 "),
            std::string::npos) << one.err;
  EXPECT_NE(one.err.find("HTTP 413 Request Entity Too Large: Project " + project +
                         " is over a limit for [Resource image_count_total is over limit of 0"),
            std::string::npos) << "Glance's message, without its boilerplate: " << one.err;
  EXPECT_NE(one.err.find("(request id req-"), std::string::npos) << one.err;
  EXPECT_EQ(error_lines(one.err), 1) << one.err;
  EXPECT_TRUE(images_named("RegionQuota").empty());
  EXPECT_FALSE(meta().get_string("imported"));

  // Two regions at once: RegionOne gets its image, RegionQuota is refused (exit 3).
  write("image.yaml", yaml_inputs("image_format: raw\nimage_file: disk.img\nregions: [RegionOne, RegionQuota]\n"));
  StepRun two = run("import image.yaml", env);
  EXPECT_EQ(two.code, 3) << two.err;
  EXPECT_NE(two.err.find("1 of 2 regions failed: RegionQuota: Glance POST"), std::string::npos) << two.err;
  ImageMetadata m = meta();
  std::string one_id = op_get(m, "import", "RegionOne").value_or("");
  std::string quota_id = op_get(m, "import", "RegionQuota").value_or("");
  EXPECT_FALSE(quota_id.empty()) << "recorded before the refused POST: " << read("image.yaml");
  EXPECT_FALSE(m.get_string("imported"));
  EXPECT_EQ(image("RegionOne", one_id)["status"], "active");
  EXPECT_TRUE(image("RegionQuota", quota_id).is_null());

  auto lifted = keystone("PATCH", "/limits/" + limit_id, json{{"limit", {{"resource_limit", 10}}}}.dump());
  ASSERT_TRUE(lifted.ok() && lifted->status == 200) << (lifted.ok() ? lifted->body : lifted.message());
  StepRun again = run("import image.yaml", env);
  ASSERT_EQ(again.code, 0) << again.err << read("image.yaml");
  m = meta();
  EXPECT_TRUE(m.get_string("imported"));
  EXPECT_EQ(op_get(m, "import", "RegionOne").value_or(""), one_id) << "adopted, not made again";
  EXPECT_EQ(op_get(m, "import", "RegionQuota").value_or(""), quota_id) << "the recorded id, created now";
  std::string data = slurp(file("disk.img"));
  for (const char* region : {"RegionOne", "RegionQuota"}) {
    auto images = images_named(region);
    ASSERT_EQ(images.size(), 1u) << region;
    EXPECT_EQ(images[0]["status"], "active") << region;
    EXPECT_EQ(images[0]["os_hash_value"], digest_hex(data, "sha512")) << region;
    EXPECT_EQ(images[0]["owner"], project) << region;
  }
}

TEST_F(OpenStackSteps, UnknownRegionRefusedBeforeAnyGlanceRequest) {
  make_disk("disk.img", 4 * kMiB);
  write("image.yaml", yaml_inputs("image_format: raw\nimage_file: disk.img\nregions: [RegionOne, RegionNowhere]\n"));
  std::string before = read("image.yaml");
  StepRun r = run("import image.yaml", password_env());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("region RegionNowhere is not in the service catalog: it has no public image (Glance) "
                       "endpoint there; regions with one: RegionOne, RegionTwo, RegionQuota, RegionFault"),
            std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("RegionNowhere"), r.err.rfind("RegionNowhere")) << "one line: " << r.err;
  EXPECT_EQ(read("image.yaml"), before);
  EXPECT_TRUE(images_named("RegionOne").empty()) << "no region was started";
}

// Tags and members are what the YAML lists: publish adds the missing ones
// and removes the others (also those added behind its back), and says so.
TEST_F(OpenStackSteps, TagsAndMembersConverge) {
  make_disk("disk.img", 4 * kMiB);
  std::string partner = env_["CLOUD_HELPER_OS_PARTNER_PROJECT"], quota = env_["CLOUD_HELPER_OS_QUOTA_PROJECT"];
  write("image.yaml", yaml_inputs("image_format: raw\nimage_file: disk.img\nregions: [RegionTwo]\n"
                                  "openstack:\n  visibility: shared\n  members: [" + partner + ", " + quota +
                                  "]\n  tags: [alpine, 'release 3.21']\n"));
  std::string env = password_env();
  StepRun imp = run("import image.yaml", env);
  ASSERT_EQ(imp.code, 0) << imp.err;
  std::string id = op_get(meta(), "import", "RegionTwo").value_or("");
  EXPECT_EQ(tags("RegionTwo", id), (std::vector<std::string>{"alpine", "release 3.21"})) << "set by the POST";
  StepRun pub = run("publish image.yaml", env);
  ASSERT_EQ(pub.code, 0) << pub.err;
  EXPECT_NE(pub.out.find("(visibility private → shared, +2 members)"), std::string::npos) << pub.out;
  std::vector<std::string> both = {partner, quota};
  std::sort(both.begin(), both.end());
  EXPECT_EQ(members("RegionTwo", id), both);

  // Someone tags it by hand; the YAML drops a tag, adds one, drops a member.
  auto hand = glance("PUT", "RegionTwo", "/v2/images/" + id + "/tags/by-hand");
  ASSERT_TRUE(hand.ok() && hand->status == 204) << (hand.ok() ? hand->body : hand.message());
  ImageMetadata m = meta();
  m.set("openstack", MetaValue::Map{{"visibility", "shared"},
                                    {"members", MetaValue::List{partner}},
                                    {"tags", MetaValue::List{"alpine", "latest"}}});
  ASSERT_TRUE(m.save().ok());
  StepRun again = run("publish image.yaml", env);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("(+1 tag, -2 tags, -1 member)"), std::string::npos) << again.out;
  EXPECT_EQ(tags("RegionTwo", id), (std::vector<std::string>{"alpine", "latest"}));
  EXPECT_EQ(members("RegionTwo", id), std::vector<std::string>{partner});
  StepRun same = run("publish image.yaml", env);
  ASSERT_EQ(same.code, 0) << same.err;
  EXPECT_NE(same.out.find(id + " shared (unchanged)"), std::string::npos) << same.out;
  EXPECT_EQ(images_named("RegionTwo").size(), 1u);
}

// glance-direct over the project's image_size_total limit (2 MiB, a 4 MiB
// image): the staging works, Glance's import task fails and puts the image
// back to queued; the step says so in one line with the task's message.
// With the limit lifted the re-run makes the image again (Glance keeps the
// failed import's staged data and refuses to stage over it) and imports.
TEST_F(OpenStackSteps, GlanceDirectImportTaskFailsOverQuotaThenConverges) {
  make_disk("disk.img", 4 * kMiB);
  std::string project = env_["CLOUD_HELPER_OS_QUOTA_DIRECT_PROJECT"];
  ASSERT_FALSE(project.empty()) << "the services predate the quota project: restart them";
  std::string limit_id = set_quota_limit("quota-direct", project, "image_size_total", 2);
  ASSERT_FALSE(limit_id.empty());
  write("image.yaml", yaml_inputs("image_format: raw\nimage_file: disk.img\nregions: [RegionQuota]\n"
                                  "openstack:\n  import_method: glance-direct\n  tags: [direct]\n"));
  std::string env = password_env("", "quota-direct");
  StepRun over = run("import image.yaml", env);
  EXPECT_EQ(over.code, 1) << over.err;
  std::string id = op_get(meta(), "import", "RegionQuota").value_or("");
  EXPECT_NE(over.err.find("image " + id + " in RegionQuota is queued after the glance-direct import, not active: task "),
            std::string::npos) << over.err;
  EXPECT_NE(over.err.find("image_size_total"), std::string::npos) << "the task's message: " << over.err;
  EXPECT_EQ(error_lines(over.err), 1) << over.err;
  EXPECT_EQ(image("RegionQuota", id)["status"], "queued");
  EXPECT_FALSE(meta().get_string("imported"));

  auto lifted = keystone("PATCH", "/limits/" + limit_id, json{{"limit", {{"resource_limit", 100}}}}.dump());
  ASSERT_TRUE(lifted.ok() && lifted->status == 200) << (lifted.ok() ? lifted->body : lifted.message());
  StepRun r = run("--log-level debug import image.yaml", env);
  ASSERT_EQ(r.code, 0) << r.err << read("image.yaml");
  EXPECT_NE(r.err.find("/stage ->"), std::string::npos) << "staged, not PUT to /file";
  EXPECT_EQ(r.err.find("/file ->"), std::string::npos);
  std::string id2 = op_get(meta(), "import", "RegionQuota").value_or("");
  EXPECT_NE(id2, id);
  EXPECT_TRUE(image("RegionQuota", id).is_null()) << "the failed one deleted";
  json img = image("RegionQuota", id2);
  EXPECT_EQ(img["status"], "active");
  EXPECT_EQ(img["tags"], json::array({"direct"}));
  EXPECT_TRUE(image_bytes("RegionQuota", id2) == slurp(file("disk.img")));
  EXPECT_EQ(images_named("RegionQuota").size(), 1u);
}

// web-download: Glance fetches the file from the services' static HTTP
// server (127.0.0.1:base+4, allowed by every Glance's import filter) into
// its staging area and imports it; the step waits for the task and checks
// the digests. Read back through Glance; the re-run is skipped.
TEST_F(OpenStackSteps, WebDownloadFromAllowedSourceImportsAndReadsBack) {
  std::string web_dir = env_["CLOUD_HELPER_OS_WEB_DIR"], web_url = env_["CLOUD_HELPER_OS_WEB_URL"];
  ASSERT_FALSE(web_dir.empty() || web_url.empty()) << "the services predate the web source: restart them";
  make_disk("disk.img", 4 * kMiB);
  std::string bytes = slurp(file("disk.img"));
  {
    std::ofstream out(web_dir + "/" + name_ + ".img", std::ios::binary);
    out << bytes;
    ASSERT_TRUE(out.good()) << web_dir;
  }
  std::string source = web_url + "/" + name_ + ".img";
  write("image.yaml", yaml_inputs("image_format: raw\nimage_file: disk.img\nregions: [RegionOne]\n"
                                  "openstack:\n  import_method: web-download\n  source_url: " + source + "\n"));
  std::string env = password_env();
  StepRun r = run("--log-level debug import image.yaml", env);
  ASSERT_EQ(r.code, 0) << r.err << read("image.yaml");
  EXPECT_NE(r.err.find("import web-download from " + source), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("/file ->"), std::string::npos) << "no data sent by the step: " << r.err;
  EXPECT_EQ(r.err.find("/stage ->"), std::string::npos) << r.err;
  // Glance's own GET of the file, in the static server's log.
  EXPECT_NE(slurp(web_dir + "/../web.log").find("\"GET /" + name_ + ".img HTTP/1.1\" 200"), std::string::npos);
  ImageMetadata m = meta();
  std::string id = op_get(m, "import", "RegionOne").value_or("");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(m.get_string("import_id").value_or(""), id);
  EXPECT_TRUE(m.get_string("imported"));
  json img = image("RegionOne", id);
  EXPECT_EQ(img["status"], "active");
  EXPECT_EQ(img["disk_format"], "raw");
  EXPECT_EQ(img["size"], 4 * kMiB);
  EXPECT_EQ(img["os_hash_value"], digest_hex(bytes, "sha512"));
  EXPECT_EQ(img["checksum"], digest_hex(bytes, "md5"));
  EXPECT_TRUE(image_bytes("RegionOne", id) == bytes) << "bytes read back through Glance differ";

  StepRun again = run("import image.yaml", env);
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("import: already imported"), std::string::npos) << again.err;
  EXPECT_EQ(images_named("RegionOne").size(), 1u);
}

// A source the import filter does not allow (port 9: only 80, 443 and the
// static server's port are) is refused by Glance: one line, exit 1.
TEST_F(OpenStackSteps, WebDownloadRefusedByGlanceInOneLine) {
  make_disk("disk.img", 4 * kMiB);
  write("image.yaml", yaml_inputs("image_format: raw\nimage_file: disk.img\nregions: [RegionOne]\n"
                                  "openstack:\n  import_method: web-download\n"
                                  "  source_url: http://127.0.0.1:9/images/disk.img\n"));
  StepRun r = run("import image.yaml", password_env());
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("/import (RegionOne): HTTP 400 Bad Request: URI for web-download does not pass filtering: "
                       "http://127.0.0.1:9/images/disk.img (request id req-"),
            std::string::npos) << r.err;
  EXPECT_EQ(error_lines(r.err), 1) << r.err;
  std::string id = op_get(meta(), "import", "RegionOne").value_or("");
  EXPECT_EQ(image("RegionOne", id)["status"], "queued") << "made, waiting for its data";
}

}  // namespace
}  // namespace ch::test::openstack_steps
