// cloud: azure end to end: the built binary takes a sparse raw disk through
// convert, checksum, upload, import, publish and rollback against Azurite
// and the fake Resource Manager; the blob is read back with the Azure SDK
// for JavaScript and the gallery through the REST API. Also: faults on both
// services, SIGKILL mid-upload and mid-import, existing definitions never
// changed, dry runs, bad input, and no secret in a debug log.
#include <openssl/evp.h>

#include "tests/azure_steps_fixture.h"

namespace ch::test::azure_steps {
namespace {

constexpr uint64_t kMiB = 1 << 20;

std::string md5_base64(const std::string& path) {
  std::string data = slurp(path);
  unsigned char md[16];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_md5(), nullptr);
  unsigned char out[32];
  EVP_EncodeBlock(out, md, 16);
  return reinterpret_cast<char*>(out);
}

uint64_t range_bytes(const json& check) {
  uint64_t n = 0;
  for (const json& r : check.value("pageRanges", json::array())) n += r[1].get<uint64_t>() - r[0].get<uint64_t>() + 1;
  return n;
}

TEST_F(AzureSteps, FullFlowGen1AndGen2PublicThenConvergesOnANewRegion) {
  make_disk("disk.img", 64 * kMiB);
  std::string community = "  community: {enable: true, public_name_prefix: chtest, publisher_uri: 'https://example.org',"
                          " publisher_contact: 'images@example.org', eula: 'https://example.org/eula'}\n";
  write("image.yaml", yaml_inputs("firmware: bios\nregions: [westeurope, eastus, northeurope]\npublic: true\n"
                                  "end_of_life: 2027-06-01\ntags: {project: cloud-helper-e2e}\n",
                                  community));
  // yaml_inputs says uefi first; the later key would be a duplicate.
  std::string text = read("image.yaml");
  text.erase(text.find("firmware: uefi\n"), 15);
  write("image.yaml", text);
  for (const char* action : {"convert", "checksum", "upload", "import", "publish"}) {
    StepRun r = run(std::string(action) + " image.yaml");
    ASSERT_EQ(r.code, 0) << action << "\n" << r.out << r.err << read("image.yaml");
  }
  ImageMetadata m = meta();
  std::string vhd = m.resolve(m.get_string("image_file").value_or(""));
  std::string url = m.get_string("upload_url").value_or("");
  ASSERT_FALSE(url.empty());
  json blob = blob_compare(url, vhd);
  EXPECT_TRUE(blob.value("equal", false)) << blob.dump();
  EXPECT_EQ(blob.value("contentMD5", ""), md5_base64(vhd));
  // Only non-zero 4 MiB chunks were written: 5 data runs, at most 2 chunks each.
  EXPECT_GT(range_bytes(blob), 0u);
  EXPECT_LE(range_bytes(blob), 10 * 4 * kMiB) << blob.dump();

  // Two definitions (Gen2 and Gen1), one version each, three regions.
  for (auto [def, gen] : {std::pair<std::string, std::string>{"alpine-3.21", "V2"}, {"alpine-3.21-gen1", "V1"}}) {
    json d = arm_get(gallery_path() + "/images/" + def);
    ASSERT_TRUE(d.is_object()) << def;
    EXPECT_EQ(d["properties"]["hyperVGeneration"], gen);
    EXPECT_EQ(d["properties"]["osState"], "Generalized");
    auto versions = arm_list(gallery_path() + "/images/" + def + "/versions");
    ASSERT_EQ(versions.size(), 1u) << def;
    EXPECT_EQ(versions[0]["name"], "3.21.1");
    EXPECT_EQ(versions[0]["properties"]["publishingProfile"]["targetRegions"].size(), 3u) << versions[0].dump();
    EXPECT_EQ(versions[0]["properties"]["publishingProfile"].value("endOfLifeDate", "").substr(0, 10), "2027-06-01");
    std::string artifact = map_get(m, "artifacts", def).value_or("");
    EXPECT_EQ(artifact.rfind("/CommunityGalleries/chtest-", 0), 0u) << artifact;
    EXPECT_NE(artifact.find("/Images/" + def + "/Versions/3.21.1"), std::string::npos) << artifact;
  }
  EXPECT_TRUE(m.get_string("published"));
  EXPECT_EQ(m.get_string("import_region").value_or(""), "westeurope");

  // Re-runs: upload and import are skipped; publish adds a new region only.
  for (const char* action : {"upload", "import"}) {
    StepRun r = run(std::string(action) + " image.yaml");
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find(std::string(action) + ": already"), std::string::npos) << r.err;
  }
  m = meta();
  m.set("regions", MetaValue::List{"westeurope", "eastus", "northeurope", "uksouth"});
  ASSERT_TRUE(m.save().ok());
  StepRun again = run("publish image.yaml");
  ASSERT_EQ(again.code, 0) << again.err;
  for (const char* def : {"alpine-3.21", "alpine-3.21-gen1"}) {
    auto versions = arm_list(gallery_path() + "/images/" + def + "/versions");
    ASSERT_EQ(versions.size(), 1u);
    EXPECT_EQ(versions[0]["properties"]["publishingProfile"]["targetRegions"].size(), 4u);
  }
  StepRun refused = run("rollback image.yaml");
  EXPECT_EQ(refused.code, 2) << refused.err;
}

TEST_F(AzureSteps, RawImageStreamsWithAFooterAndRollbackRemovesEverything) {
  make_disk("disk.img", 40 * kMiB + 4096);  // not a whole MiB: padded
  std::string text = yaml_inputs();
  text.replace(text.find("image_format: vhd"), 17, "image_format: raw");
  text += "image_file: disk.img\n";
  write("image.yaml", text);
  // The VHD the upload must equal, made by convert.
  ASSERT_EQ(mkdir(file("ref").c_str(), 0755), 0);
  ASSERT_EQ(run("convert -i disk.img -o ref/disk.vhd -O vhd").code, 0);  // the footer's UUID comes from the name
  for (const char* action : {"upload", "import"}) {
    StepRun r = run(std::string(action) + " image.yaml");
    ASSERT_EQ(r.code, 0) << action << "\n" << r.err << read("image.yaml");
  }
  ImageMetadata m = meta();
  std::string url = m.get_string("upload_url").value_or("");
  EXPECT_NE(url.find("/disk.vhd"), std::string::npos) << url;
  json blob = blob_compare(url, file("ref/disk.vhd"));
  EXPECT_TRUE(blob.value("equal", false)) << blob.dump();
  ASSERT_TRUE(arm_get(gallery_path() + "/images/alpine-3.21/versions/3.21.1").is_object());

  StepRun rb = run("rollback image.yaml");
  ASSERT_EQ(rb.code, 0) << rb.err;
  EXPECT_TRUE(arm_get(gallery_path() + "/images/alpine-3.21/versions/3.21.1").is_null());
  EXPECT_TRUE(arm_get(gallery_path() + "/images/alpine-3.21").is_null()) << "the definition this image made";
  EXPECT_TRUE(arm_get(gallery_path()).is_object()) << "galleries are never deleted";
  auto r = run_command("cd " + shell_quote(node_dir_) + " && AZURE_STORAGE_CONNECTION_STRING=" +
                       shell_quote(connection_string()) + " node blob_check.js compare " + shell_quote(url) + " " +
                       shell_quote(file("ref/disk.vhd")) + " >/dev/null 2>&1");
  EXPECT_NE(r.exit_code, 0) << "the blob is gone";
  m = meta();
  EXPECT_FALSE(m.get_string("uploaded"));
  EXPECT_FALSE(m.get_string("imported"));
  EXPECT_FALSE(m.has("operations")) << read("image.yaml");
}

TEST_F(AzureSteps, ExistingDefinitionsAreSharedNeverChanged) {
  make_disk("disk.img", 16 * kMiB);
  write("image.yaml", yaml_inputs());
  for (const char* action : {"convert", "upload", "import"}) ASSERT_EQ(run(std::string(action) + " image.yaml").code, 0) << action;
  // A second image into the same definition: adopted as it is.
  std::string second = yaml_inputs();
  second.replace(second.find("release: 3.21.0-r1"), 18, "release: 3.21.2-r0");
  second.replace(second.find("name: " + name_), 6 + name_.size(), "name: " + name_ + "-b");
  second.replace(second.find("local_image: disk.img"), 21, "image_file: " + name_ + ".vhd");
  write("second.yaml", second);
  StepRun up2 = run("upload --force second.yaml");  // the same blob name: replaced on purpose
  ASSERT_EQ(up2.code, 0) << up2.err;
  StepRun im2 = run("import second.yaml");
  ASSERT_EQ(im2.code, 0) << im2.err;
  EXPECT_EQ(arm_list(gallery_path() + "/images/alpine-3.21/versions").size(), 2u);
  // Rolling the second back leaves the definition: it was not its own.
  ASSERT_EQ(run("rollback second.yaml").code, 0);
  EXPECT_TRUE(arm_get(gallery_path() + "/images/alpine-3.21").is_object());
  EXPECT_EQ(arm_list(gallery_path() + "/images/alpine-3.21/versions").size(), 1u);

  // A third that needs Gen1 in that Gen2 definition: refused, nothing changed.
  std::string third = second;
  third.replace(third.find("release: 3.21.2-r0"), 18, "release: 3.21.3-r0");
  third += "  hyper_v_generations: [V1]\n";
  write("third.yaml", third);
  std::string before = read("third.yaml");
  ASSERT_EQ(run("upload --force third.yaml").code, 0);
  before = read("third.yaml");
  StepRun im3 = run("import third.yaml");
  EXPECT_EQ(im3.code, 1) << im3.err;
  EXPECT_NE(im3.err.find("hyperVGeneration V2 (needs V1)"), std::string::npos) << im3.err;
  EXPECT_NE(im3.err.find("never changed"), std::string::npos) << im3.err;
  EXPECT_FALSE(meta("third.yaml").get_string("imported"));
  EXPECT_EQ(arm_get(gallery_path() + "/images/alpine-3.21")["properties"]["hyperVGeneration"], "V2");
}

TEST_F(AzureSteps, DropsThrottlingAndServerErrorsOnBothServicesStillFinishOnce) {
  std::string fault = env_or("CLOUD_HELPER_AZURE_FAULT_ENDPOINT");
  if (fault.empty()) GTEST_SKIP() << "no fault proxy";
  make_disk("disk.img", 48 * kMiB, 3, 12 * kMiB);
  write("image.yaml", yaml_inputs("regions: [westeurope, eastus]\n"));
  ASSERT_EQ(run("convert image.yaml").code, 0);
  blob_endpoint_ = env_or("CLOUD_HELPER_AZURITE_FAULT_URL");
  std::string rule = "?rule=" + name_;
  fake("POST", "/_fake/faults" + rule,
       json{{"match", resource_group_}, {"throttle", 0.15}, {"status500", 0.1}, {"drop", 0.08}, {"drop_after", 0.05},
            {"seed", 7}}.dump());
  auto blob_rule = loopback_http("POST", fault + "/_fault/config" + rule,
                                 json{{"match", container_}, {"drop", 0.1}, {"status500", 0.1}, {"status503", 0.1},
                                      {"seed", 11}}.dump());
  ASSERT_TRUE(blob_rule.ok() && blob_rule->status < 300) << (blob_rule.ok() ? blob_rule->body : blob_rule.message());
  for (const char* action : {"upload", "import", "publish"}) {
    StepRun r = run(std::string(action) + " image.yaml");
    ASSERT_EQ(r.code, 0) << action << "\n" << r.err;
    if (std::string(action) == "upload") {
      // The proxy stood between us and Azurite; the blob's address, the one
      // Resource Manager knows its account by, is Azurite's.
      std::string text = read("image.yaml");
      std::string from = env_or("CLOUD_HELPER_AZURITE_FAULT_URL"), to = azurite_;
      for (size_t at; (at = text.find(from)) != std::string::npos;) text.replace(at, from.size(), to);
      write("image.yaml", text);
    }
  }
  json stats = fake("GET", "/_fake/stats");
  loopback_http("DELETE", fault + "/_fault/config" + rule);
  fake("DELETE", "/_fake/faults" + rule);
  EXPECT_FALSE(stats.is_null());
  ImageMetadata m = meta();
  json blob = blob_compare(m.get_string("upload_url").value_or(""), m.resolve(*m.get_string("image_file")));
  EXPECT_TRUE(blob.value("equal", false)) << blob.dump();
  auto versions = arm_list(gallery_path() + "/images/alpine-3.21/versions");
  ASSERT_EQ(versions.size(), 1u);
  EXPECT_EQ(versions[0]["properties"]["publishingProfile"]["targetRegions"].size(), 2u);
}

TEST_F(AzureSteps, KilledMidUploadAndMidImportTheRerunsFinishWithoutDuplicates) {
  make_disk("disk.img", 512 * kMiB, 5, 200 * kMiB);
  write("image.yaml", yaml_inputs());
  ASSERT_EQ(run("convert image.yaml").code, 0);
  int code = 0;
  bool killed = run_and_kill("upload image.yaml", "image.yaml", [](const ImageMetadata& m) {
    return op_get(m, "upload", "state") == "uploading";
  }, &code);
  ASSERT_TRUE(killed) << "upload ended (exit " << code << ") before it could be killed";
  StepRun up = run("upload image.yaml");
  ASSERT_EQ(up.code, 0) << up.err;
  EXPECT_NE(up.err.find("resuming"), std::string::npos) << up.err;
  ImageMetadata m = meta();
  json blob = blob_compare(m.get_string("upload_url").value_or(""), m.resolve(*m.get_string("image_file")));
  EXPECT_TRUE(blob.value("equal", false)) << blob.dump();

  killed = run_and_kill("import image.yaml", "image.yaml", [](const ImageMetadata& m) {
    return op_get(m, "import", "version/alpine-3.21").has_value();
  }, &code);
  ASSERT_TRUE(killed) << "import ended (exit " << code << ") before it could be killed";
  StepRun im = run("import image.yaml");
  ASSERT_EQ(im.code, 0) << im.err;
  auto versions = arm_list(gallery_path() + "/images/alpine-3.21/versions");
  ASSERT_EQ(versions.size(), 1u);
  EXPECT_EQ(versions[0]["properties"]["provisioningState"], "Succeeded");
  EXPECT_EQ(meta().get_string("import_id").value_or(""), gallery_path() + "/images/alpine-3.21/versions/3.21.1");
}

TEST_F(AzureSteps, DryRunSendsNothingAndBadInputChangesNothing) {
  make_disk("disk.img", 8 * kMiB);
  write("image.yaml", yaml_inputs());
  ASSERT_EQ(run("convert image.yaml").code, 0);
  StepRun dry = run("--dry-run upload image.yaml");
  ASSERT_EQ(dry.code, 0) << dry.err;
  EXPECT_NE(dry.out.find("would upload"), std::string::npos) << dry.out;
  EXPECT_FALSE(meta().get_string("uploaded"));
  EXPECT_TRUE(arm_get(rg_path(), "2021-04-01").is_null());

  std::string text = read("image.yaml");
  std::string bad = text;
  bad.erase(bad.find("  gallery: "), bad.find('\n', bad.find("  gallery: ")) - bad.find("  gallery: ") + 1);
  write("image.yaml", bad);
  ASSERT_EQ(run("upload image.yaml").code, 0);
  std::string before = read("image.yaml");
  StepRun r = run("import image.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("azure.gallery is missing"), std::string::npos) << r.err;
  EXPECT_EQ(read("image.yaml"), before);
  EXPECT_TRUE(arm_get(gallery_path()).is_null()) << "nothing was created";

  // Not a fixed VHD of whole MiB: refused before any request.
  write("odd.vhd", std::string(1000, 'x'));
  std::string odd = yaml_inputs();
  odd.replace(odd.find("local_image: disk.img"), 21, "image_file: odd.vhd");
  write("odd.yaml", odd);
  StepRun o = run("upload odd.yaml");
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.err.find("not a fixed VHD"), std::string::npos) << o.err;
}

TEST_F(AzureSteps, NoSecretInADebugLog) {
  make_disk("disk.img", 8 * kMiB);
  write("image.yaml", yaml_inputs());
  ASSERT_EQ(run("convert image.yaml").code, 0);
  for (const char* action : {"upload", "import"}) {
    StepRun r = run(std::string("--log-level debug ") + action + " image.yaml");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("http: "), std::string::npos) << "a debug trace was written";
    EXPECT_EQ(r.err.find(kClientSecret), std::string::npos);
    EXPECT_EQ(r.err.find(kAzuriteKey), std::string::npos);
    EXPECT_EQ(r.err.find("SharedKey devstoreaccount1:"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("Bearer ey"), std::string::npos);
  }
}

}  // namespace
}  // namespace ch::test::azure_steps
