// cloud: nocloud end to end, with the built binary: upload to a directory
// (sparse, atomic, sidecars, never replacing someone else's file), to S3
// (moto, read back with boto3), import/publish answering that they do not
// apply, rollback, and a re-run after a run killed mid-copy.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "clouds/operations.h"
#include "metadata/image_metadata.h"
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
  for (std::string url : {"file://" + dir_.file("missing") + "/", std::string("ftp://x/y/"),
                          std::string("file:relative/")}) {
    write_yaml(url);
    std::string before = slurp(dir_.file("n.yaml"));
    Outcome r = run("upload n.yaml");
    EXPECT_EQ(r.code, 2) << url << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(slurp(dir_.file("n.yaml")), before);
  }
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

}  // namespace
}  // namespace ch
