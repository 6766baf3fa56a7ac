// cloud: nocloud end to end, with the built binary: upload to a directory
// (sparse, atomic, sidecars, never replacing someone else's file), to S3
// (moto, read back with boto3), to GCS, OSS and OCI Object Storage in formats
// those clouds' imports refuse (their fakes, read back through the fakes'
// control APIs), import/publish answering that they do not apply, rollback,
// and re-runs after runs killed mid-copy and mid-upload.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "clouds/operations.h"
#include "metadata/image_metadata.h"
#include "tests/gcp_steps_fixture.h"
#include "tests/test_aws_env.h"
#include "tests/test_util.h"

namespace ch {
namespace {

using test::shell_quote;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Outcome {
  int code = -1;
  std::string out, err;
};

class NocloudSteps : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(mkdir(dir_.file("store").c_str(), 0755), 0);
    // 24 MiB: a data run, a hole, a run of written zeros, a data run.
    ASSERT_TRUE(test::make_sparse_file(dir_.file("disk.qcow2"), 24 << 20,
                                       {{0, 3 << 20}, {8 << 20, 4 << 20, true}, {20 << 20, 1 << 20}})
                    .ok());
    std::ofstream(dir_.file("disk.qcow2.sha256")) << "abc  disk.qcow2\n";
  }
  void write_yaml(const std::string& storage_url, const std::string& extra = "") {
    std::ofstream(dir_.file("n.yaml")) << "name: n\ncloud: nocloud\nimage_format: qcow2\n"
                                          "image_file: disk.qcow2\nstorage_url: "
                                       << storage_url << "\n"
                                       << extra;
  }
  Outcome run(const std::string& args, const std::string& env = "") {
    std::string cmd = "cd " + shell_quote(dir_.path()) + " && env " + env + " " +
                      shell_quote(CLOUD_HELPER_BINARY) + " --no-progress " + args + " >.out 2>.err";
    Outcome r;
    r.code = test::run_command(cmd).exit_code;
    r.out = slurp(dir_.file(".out"));
    r.err = slurp(dir_.file(".err"));
    return r;
  }
  ImageMetadata meta() {
    auto m = ImageMetadata::load(dir_.file("n.yaml"));
    EXPECT_TRUE(m.ok()) << m.message();
    return std::move(m).value();
  }
  std::string store_url() { return "file://" + dir_.file("store") + "/"; }
  test::TempDir dir_;
};

TEST_F(NocloudSteps, UploadsToADirectorySparseWithSidecarsThenRollsBack) {
  write_yaml(store_url());
  Outcome r = run("upload n.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  std::string copy = dir_.file("store/disk.qcow2");
  EXPECT_EQ(slurp(copy), slurp(dir_.file("disk.qcow2")));
  EXPECT_EQ(slurp(copy + ".sha256"), "abc  disk.qcow2\n");
  struct stat st;
  ASSERT_EQ(stat(copy.c_str(), &st), 0);
  // 4 MiB of data; the hole and the written zeros are holes in the copy.
  EXPECT_LE(static_cast<uint64_t>(st.st_blocks) * 512, 5u << 20);
  EXPECT_EQ(test::run_command("ls -a " + shell_quote(dir_.file("store")) + " | grep -c partial").output, "0\n");
  ImageMetadata m = meta();
  EXPECT_EQ(m.get_string("upload_url").value_or(""), "file://" + copy);
  EXPECT_TRUE(m.get_string("uploaded"));
  EXPECT_FALSE(op_get(m, "upload", "partial"));

  // Done once: skipped; import and publish do not apply (exit 0).
  r = run("upload n.yaml");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.err.find("already uploaded"), std::string::npos) << r.err;
  for (const char* action : {"import", "publish"}) {
    r = run(std::string(action) + " n.yaml");
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err, "cloud_helper: n.yaml: " + std::string(action) +
                         ": does not apply to cloud nocloud (storage only)\n");
  }

  r = run("rollback n.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(access(copy.c_str(), F_OK), 0);
  EXPECT_NE(access((copy + ".sha256").c_str(), F_OK), 0);
  m = meta();
  EXPECT_FALSE(m.get_string("upload_url"));
  EXPECT_FALSE(m.get_string("uploaded"));
}

TEST_F(NocloudSteps, NeverReplacesSomeoneElsesFileWithoutForce) {
  write_yaml(store_url());
  std::ofstream(dir_.file("store/disk.qcow2")) << "theirs";
  Outcome r = run("upload n.yaml");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("already exists and no run of this image made it (--force replaces it)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(slurp(dir_.file("store/disk.qcow2")), "theirs");
  r = run("--force upload n.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(slurp(dir_.file("store/disk.qcow2")), slurp(dir_.file("disk.qcow2")));
}

TEST_F(NocloudSteps, BadStorageIsExit2AndLeavesTheYaml) {
  const std::string forms = "file:///dir/, s3://bucket/prefix/, gs://bucket/prefix/, oss://bucket/prefix/ or "
                            "oci://bucket@namespace/prefix/";
  for (std::string url : {"file://" + dir_.file("missing") + "/", std::string("ftp://x/y/"),
                          std::string("file:relative/"), std::string("https://storage.example/b/")}) {
    write_yaml(url);
    std::string before = slurp(dir_.file("n.yaml"));
    Outcome r = run("upload n.yaml");
    EXPECT_EQ(r.code, 2) << url << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    if (url.find("missing") == std::string::npos) {
      EXPECT_EQ(r.err, "cloud_helper: n.yaml: upload: storage_url '" + url +
                           "' is not a place cloud nocloud stores to (" + forms + ")\n");
    }
    EXPECT_EQ(slurp(dir_.file("n.yaml")), before);
  }
}

// The clouds' own uploads keep refusing what their imports cannot take
// (nocloud calls their *_store halves, which do not check).
TEST_F(NocloudSteps, TheCloudsOwnUploadsStillCheckTheFormat) {
  struct Case {
    const char* yaml;
    const char* message;
  } cases[] = {
      {"cloud: gcp\nimage_format: raw\nstorage_url: gs://b/\n", "Compute Engine imports a gzipped tar"},
      {"cloud: alicloud\nimage_format: vmdk\nstorage_url: oss://b/\nregions: [cn-hangzhou]\n",
       "ECS ImportImage takes qcow2, raw or vhd, not image_format 'vmdk'"},
      {"cloud: oci\nimage_format: raw\nstorage_url: oci://b@ns/\n", "OCI imports QCOW2 or VMDK images"},
  };
  for (const Case& c : cases) {
    std::string yaml = std::string("name: n\nimage_file: disk.qcow2\n") + c.yaml;
    std::ofstream(dir_.file("c.yaml")) << yaml;
    Outcome r = run("upload c.yaml");
    EXPECT_EQ(r.code, 2) << c.yaml << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_EQ(slurp(dir_.file("c.yaml")), yaml);
  }
  // Another cloud's import recorded in the file: nocloud's rollback leaves it alone.
  write_yaml("gs://b/images/", "import_id: projects/p/global/images/n\nupload_url: gs://b/images/disk.qcow2\n");
  std::string before = slurp(dir_.file("n.yaml"));
  Outcome r = run("rollback n.yaml");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("roll it back with the cloud that imported it"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(dir_.file("n.yaml")), before);
}

TEST_F(NocloudSteps, ARunKilledMidCopyIsFinishedByTheReRun) {
  // What a SIGKILL mid-copy leaves: the temporary file, recorded.
  std::string partial = dir_.file("store/.disk.qcow2.cloud_helper-partial");
  std::ofstream(partial) << "half";
  write_yaml(store_url(), "operations:\n  upload:\n    url: file://" + dir_.file("store/disk.qcow2") +
                              "\n    partial: " + partial + "\n");
  Outcome r = run("--dry-run upload n.yaml");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("would copy"), std::string::npos) << r.out;
  r = run("upload n.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(access(partial.c_str(), F_OK), 0);
  EXPECT_EQ(slurp(dir_.file("store/disk.qcow2")), slurp(dir_.file("disk.qcow2")));
}

TEST_F(NocloudSteps, UploadsToS3CompatibleStorage) {
  auto env = test::AwsTestEnv::load();
  if (!env.ok()) GTEST_SKIP() << env.message();
  std::string bucket = test::unique_name("nocloud");
  ASSERT_TRUE(env->boto3("s3.create_bucket(Bucket='" + bucket + "')").ok());
  write_yaml("s3://" + bucket + "/images/");
  std::string aws_env = "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 "
                        "HOME=" + shell_quote(dir_.path()) +
                        " AWS_ENDPOINT_URL_S3=" + shell_quote(env->moto_url);
  Outcome r = run("upload n.yaml", aws_env);
  ASSERT_EQ(r.code, 0) << r.err;
  auto got = env->boto3("import hashlib\nb = s3.get_object(Bucket='" + bucket +
                        "', Key='images/disk.qcow2')['Body'].read()\nprint(hashlib.sha256(b).hexdigest())");
  ASSERT_TRUE(got.ok()) << got.message();
  EXPECT_EQ(*got, test::digest_hex(slurp(dir_.file("disk.qcow2")), "sha256") + "\n");
  r = run("rollback n.yaml", aws_env);
  ASSERT_EQ(r.code, 0) << r.err;
  auto gone = env->boto3("print(error_code(lambda: s3.head_object(Bucket='" + bucket +
                         "', Key='images/disk.qcow2')))");
  ASSERT_TRUE(gone.ok()) << gone.message();
  EXPECT_NE(*gone, "ok\n");
}

// gs://, oss://, oci://: the other clouds' fakes, which every gtest has
// running. GCS through the gcp tests' fixture (reused: bucket, credentials,
// environment); OSS and OCI with the environment their own tests give the
// binary (test AccessKey; the OCI config file the oci fixture writes).
using test::env_or;
using test::StepRun;
using nlohmann::json;

class NocloudStore : public test::gcp_steps::GcpSteps {
 protected:
  virtual std::string scheme() const = 0;  // gs, oss or oci
  void SetUp() override {
    GcpSteps::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    oss_ = env_or("CLOUD_HELPER_ALICLOUD_OSS_ENDPOINT");
    ecs_ = env_or("CLOUD_HELPER_ALICLOUD_ECS_ENDPOINT");
    oci_ = env_or("CLOUD_HELPER_OCI_ENDPOINT");
    oci_config_ = env_or("CLOUD_HELPER_OCI_CONFIG");
    if (oss_.empty() || ecs_.empty() || oci_.empty() || oci_config_.empty())
      GTEST_SKIP() << "CLOUD_HELPER_ALICLOUD_*/CLOUD_HELPER_OCI_* unset (run through ctest)";
    scheme_ = scheme();
    if (scheme_ == "oss") control(ecs_, "POST", "/_fake/buckets", json{{"name", bucket_}, {"region", "cn-hangzhou"}}.dump());
    if (scheme_ == "oci") control(oci_, "POST", "/_fake/buckets", json{{"name", bucket_}}.dump());
  }

  // Each cloud reads only its own variables; all are given every run.
  std::string env() const {
    return "ALIBABA_CLOUD_OSS_ENDPOINT=" + shell_quote(oss_) + " ALIBABA_CLOUD_ECS_ENDPOINT=" + shell_quote(ecs_) +
           " ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_AK_ID ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_AK_SECRET"
           " OCI_CLI_CONFIG_FILE=" + shell_quote(oci_config_) + " OCI_OBJECTSTORAGE_ENDPOINT=" + shell_quote(oci_) +
           " OCI_IAAS_ENDPOINT=" + shell_quote(oci_);
  }
  StepRun go(const std::string& args) { return run(args, env()); }

  // The YAML of one image: what each store needs besides its credentials.
  std::string yaml(const std::string& image) const {
    std::string y = "name: " + name_ + "\ncloud: nocloud\narch: x86_64\nfirmware: uefi\n" + image;
    if (scheme_ == "gs") return y + "storage_url: gs://" + bucket_ + "/images/\ngcp:\n  upload_chunk_size: 262144\n";
    if (scheme_ == "oss")
      return y + "storage_url: oss://" + bucket_ + "/images/\nalicloud:\n  region: cn-hangzhou\n  part_size: 1048576\n";
    return y + "storage_url: oci://" + bucket_ + "@fakens/images/\noci:\n  part_size_mib: 1\n";
  }
  // upload_url as each cloud records it (OCI: the object's https URL).
  std::string upload_url(const std::string& key) const {
    if (scheme_ == "oci") return oci_ + "/n/fakens/b/" + bucket_ + "/o/images%2F" + key.substr(7);
    return scheme_ + "://" + bucket_ + "/" + key;
  }
  // The stored object, read through the fake's control API; nullopt: none.
  std::optional<std::string> stored(const std::string& key) {
    std::string url = scheme_ == "gs"    ? endpoint_ + "/_fake/object?bucket=" + bucket_ + "&name=" + key
                      : scheme_ == "oss" ? ecs_ + "/_fake/object?bucket=" + bucket_ + "&key=" + key
                                         : oci_ + "/_fake/object?bucket=" + bucket_ + "&name=" + key;
    auto r = test::loopback_http("GET", url);
    EXPECT_TRUE(r.ok()) << r.message();
    if (!r.ok() || r->status != 200) return std::nullopt;
    return r->body;
  }
  json control(const std::string& base, const std::string& method, const std::string& path,
               const std::string& body = "") {
    auto r = test::loopback_http(method, base + path, body);
    EXPECT_TRUE(r.ok() && r->status < 300) << path << ": " << (r.ok() ? r->body : r.message());
    return r.ok() ? json::parse(r->body, nullptr, false) : json();
  }

  std::string oss_, ecs_, oci_, oci_config_, scheme_;
};

class NocloudStores : public NocloudStore, public ::testing::WithParamInterface<std::string> {
  std::string scheme() const override { return GetParam(); }
};
class NocloudOciStore : public NocloudStore {
  std::string scheme() const override { return "oci"; }
};

// Formats the cloud's own import refuses (gcp: all but gce-tar; alicloud:
// vmdk; oci: raw) go up byte for byte; a re-run is skipped; rollback
// deletes the object and nothing else.
TEST_P(NocloudStores, StoresAnyFormatThenRollsBack) {
  // 3 MiB with 1 MiB of data: small, as the fakes hash every byte in Python.
  const uint64_t KiB = 1024;
  ASSERT_TRUE(test::make_sparse_file(file("disk.img"), 3072 * KiB,
                                     {{0, 300 * KiB}, {1024 * KiB + 777, 500 * KiB}, {2872 * KiB, 200 * KiB}})
                  .ok());
  std::vector<std::string> formats = {"raw", "qcow2"};
  if (scheme_ == "oss") formats.push_back("vmdk");
  for (const std::string& format : formats) {
    SCOPED_TRACE(format);
    std::string file = format + ".yaml";
    if (format == "raw") {
      write(file, yaml("image_file: disk.img\nimage_format: raw\n"));
    } else {
      write(file, yaml("local_image: disk.img\nimage_format: " + format + "\n"));
      StepRun c = go("convert " + file);
      ASSERT_EQ(c.code, 0) << c.err;
    }
    StepRun up = go("upload " + file);
    ASSERT_EQ(up.code, 0) << up.err;
    ImageMetadata m = meta(file);
    std::string image = m.resolve(*m.get_string("image_file"));
    std::string key = "images/" + base_name(image);
    EXPECT_EQ(stored(key), read(base_name(image)));
    EXPECT_EQ(m.get_string("upload_url").value_or(""), upload_url(key));
    EXPECT_TRUE(m.get_string("uploaded"));

    StepRun again = go("upload " + file);
    EXPECT_EQ(again.code, 0) << again.err;
    EXPECT_NE(again.err.find("already uploaded"), std::string::npos) << again.err;
    for (const char* action : {"import", "publish"}) {
      if (format != "raw") break;
      StepRun na = go(std::string(action) + " " + file);
      EXPECT_EQ(na.code, 0) << na.err;
      EXPECT_NE(na.err.find(std::string(action) + ": does not apply to cloud nocloud (storage only)"),
                std::string::npos) << na.err;
    }

    StepRun rb = go("rollback " + file);
    ASSERT_EQ(rb.code, 0) << rb.err;
    EXPECT_FALSE(stored(key)) << key << " is still there";
    m = meta(file);
    EXPECT_FALSE(m.get_string("upload_url"));
    EXPECT_FALSE(m.get_string("uploaded"));
    EXPECT_FALSE(m.has("operations"));
  }
}

// SIGKILL mid-upload (OCI: parts slowed by the fake, for this bucket only), then the re-run resumes the recorded multipart upload.
// One store is enough: the resume is that cloud's own, tested in its tests.
TEST_F(NocloudOciStore, AKilledUploadIsResumed) {
  make_disk("disk.img", 16 * test::gcp_steps::kMiB);
  write("raw.yaml", yaml("image_file: disk.img\nimage_format: raw\n"));
  control(oci_, "POST", "/_fake/faults?rule=" + bucket_,
          json{{"match", "PUT /n/fakens/b/" + bucket_ + "/u/"}, {"delay", 0.3}}.dump());
  auto parts_there = [&] {
    json state = control(oci_, "GET", "/_fake/state");
    for (auto& [k, u] : state["uploads"].items())
      if (k.rfind(bucket_ + "/", 0) == 0 && !u["parts"].empty()) return true;
    return false;
  };
  int code = 0;
  auto killed = test::run_and_kill_when(
      command("upload raw.yaml", env()) + " >/dev/null 2>" + shell_quote(file(".kerr")), file("raw.yaml"),
      [&](const ImageMetadata& m) { return op_get(m, "upload", "upload_id") && parts_there(); }, &code);
  control(oci_, "DELETE", "/_fake/faults?rule=" + bucket_);
  ASSERT_TRUE(killed.ok()) << killed.message();
  ASSERT_TRUE(*killed) << "the upload ended (exit " << code << ") before it could be killed: " << read(".kerr");
  std::string upload_id = op_get(meta("raw.yaml"), "upload", "upload_id").value_or("");
  ASSERT_FALSE(upload_id.empty());
  // Parts the killed process had sent are still being stored: let them land.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));

  StepRun up = go("upload raw.yaml");
  ASSERT_EQ(up.code, 0) << up.err;
  EXPECT_NE(up.err.find("resuming multipart upload " + upload_id), std::string::npos) << up.err;
  EXPECT_NE(up.out.find("already there"), std::string::npos) << up.out;
  EXPECT_EQ(stored("images/disk.img"), read("disk.img"));
  json state = control(oci_, "GET", "/_fake/state");
  for (auto& [k, u] : state["uploads"].items())
    EXPECT_NE(k.rfind(bucket_ + "/", 0), 0u) << "an unfinished upload is left: " << k;
}

INSTANTIATE_TEST_SUITE_P(Nocloud, NocloudStores, ::testing::Values("gs", "oss", "oci"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ch
