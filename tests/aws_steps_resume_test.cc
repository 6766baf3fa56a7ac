// cloud: aws end to end after an interruption: cloud_helper killed with
// SIGKILL in the middle of upload, import and publish (once the YAML records
// the remote id it is working on) and re-run must finish the job without a
// leak or a duplicate; rollback removes everything upload, import and a
// partial publish made.
#include "tests/aws_steps_fixture.h"

namespace ch::test::aws_steps {
namespace {

constexpr uint64_t kMiB = 1 << 20;

TEST_F(AwsSteps, UploadKilledMidwayResumesTheMultipartUpload) {
  make_bucket(bucket_);
  make_disk("big.raw", 200 * kMiB, 7, 4 * kMiB);
  write("image.yaml", yaml_inputs("image_file: big.raw\nregions: [us-east-1]\n"));
  // Through a private proxy, to see parts land before the kill.
  auto proxy = PrivateFaultProxy::start(aws().endpoint, file("proxy.log"));
  ASSERT_TRUE(proxy.ok()) << proxy.message();
  endpoint_ = (*proxy)->url;
  int code = 0;
  bool killed = run_and_kill("upload image.yaml", "image.yaml", [&](const ImageMetadata& m) {
    if (!op_get(m, "upload", "upload_id")) return false;
    auto stats = (*proxy)->stats();
    return stats.ok() && (*stats)["forwarded"].value("PUT s3:UploadPart", 0) >= 2;
  }, &code);
  ASSERT_TRUE(killed) << "upload ended (exit " << code << ") before it could be killed";
  ImageMetadata m = meta();
  std::string upload_id = op_get(m, "upload", "upload_id").value_or("");
  ASSERT_FALSE(upload_id.empty());
  EXPECT_FALSE(m.get_string("uploaded"));

  StepRun r = run("upload image.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("upload: resuming multipart upload of s3://" + bucket_ + "/prefix/big.raw"),
            std::string::npos) << r.err;
  EXPECT_NE(r.out.find(" resumed)"), std::string::npos) << r.out;
  EXPECT_FALSE(op_get(meta(), "upload", "upload_id")) << read("image.yaml");
  EXPECT_TRUE(meta().get_string("uploaded"));
  ASSERT_CHECK(got, check("B = " + py(bucket_) + "\nprint(json.dumps({'object': object_sha256(B, 'prefix/big.raw'), "
                          "'file': file_sha256(" + py(file("big.raw")) + "), 'uploads': multipart_uploads(B)}))"));
  EXPECT_EQ(got["object"], got["file"]);
  EXPECT_EQ(got["uploads"], json::array());
}

TEST_F(AwsSteps, ImportKilledAfterStartSnapshotResumesIt) {
  make_disk("disk.img", 64 * kMiB, 8, 24 * kMiB);
  write("image.yaml", yaml_inputs("regions: [us-east-1]\n"));
  int code = 0;
  bool killed = run_and_kill("import image.yaml", "image.yaml", [](const ImageMetadata& m) {
    return op_get(m, "import", "snapshot_id").has_value();
  }, &code);
  ASSERT_TRUE(killed) << "import ended (exit " << code << ") before it could be killed";
  std::string snapshot = op_get(meta(), "import", "snapshot_id").value_or("");
  EXPECT_FALSE(meta().get_string("imported"));

  StepRun r = run("import image.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  ImageMetadata m = meta();
  EXPECT_EQ(op_get(m, "import", "snapshot_id").value_or(""), snapshot);
  std::string import_id = m.get_string("import_id").value_or("");
  ASSERT_CHECK(got, check("NAME, SNAP = " + py(name_) + ", " + py(snapshot) +
                          "\nprint(json.dumps({'snapshot': compare_snapshot(SNAP, " + py(file("disk.img")) +
                          "), 'tagged': tagged_snapshots('us-east-1', NAME), 'images': amis('us-east-1', NAME)}))"));
  EXPECT_TRUE(got["snapshot"]["match"].get<bool>()) << got["snapshot"].dump();
  EXPECT_EQ(got["tagged"], json({snapshot}));
  ASSERT_EQ(got["images"].size(), 1u) << got.dump();
  EXPECT_EQ(got["images"][0]["id"], import_id);
  EXPECT_EQ(got["images"][0]["snapshots"], json({snapshot}));
}

// Killed once every copy is recorded, while the regions are still being
// made public. Killing at the first recorded copy would leave moto with a
// duplicate: another region's CopyImage may be applied but not yet recorded,
// and the re-run's CopyImage with the same ClientToken makes a second AMI
// because moto (and the gap proxy) ignore ClientToken, where AWS returns the
// first copy.
TEST_F(AwsSteps, PublishKilledAfterTheCopiesConverges) {
  make_disk("disk.img", 8 * kMiB, 9);
  write("image.yaml", yaml_inputs("regions: [us-east-1, eu-west-2, ap-southeast-2, eu-central-1]\npublic: true\n"
                                  "end_of_life: 2027-05-01\n"));
  ASSERT_EQ(run("import image.yaml").code, 0);
  int code = 0;
  bool killed = run_and_kill("publish image.yaml", "image.yaml", [](const ImageMetadata& m) {
    return op_entries(m, "publish").size() == 3;
  }, &code);
  ASSERT_TRUE(killed) << "publish ended (exit " << code << ") before it could be killed";
  EXPECT_FALSE(meta().get_string("published"));
  // Under load the kill may land after the last region's artifact was
  // written (but before `published`): the re-run must converge either way.

  StepRun r = run("publish image.yaml");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  ImageMetadata m = meta();
  EXPECT_TRUE(m.get_string("published"));
  auto artifacts = map_entries(m, "artifacts");
  ASSERT_EQ(artifacts.size(), 4u) << read("image.yaml");
  ASSERT_CHECK(got, check("print(json.dumps({r: amis(r, " + py(name_) +
                          ") for r in ('us-east-1', 'eu-west-2', 'ap-southeast-2', 'eu-central-1')}))"));
  for (const auto& [region, ami] : artifacts) {
    ASSERT_EQ(got[region].size(), 1u) << region << ": " << got[region].dump();
    EXPECT_EQ(got[region][0]["id"], ami);
    EXPECT_EQ(got[region][0]["launch"], json::parse(R"([{"Group": "all"}])")) << region;
    EXPECT_EQ(got[region][0]["deprecation"].get<std::string>().substr(0, 16), "2027-05-01T23:59") << region;
  }
}

TEST_F(AwsSteps, RollbackRemovesUploadImportAndAPartialPublish) {
  make_bucket(bucket_);
  make_disk("disk.img", 32 * kMiB, 10);
  // xx-fake-1 is no region: its CopyImage fails, the others succeed.
  write("image.yaml", yaml_inputs("regions: [us-east-1, eu-west-2, xx-fake-1]\n"));
  for (const char* action : {"convert", "checksum", "upload", "import"}) {
    StepRun r = run(std::string(action) + " image.yaml");
    ASSERT_EQ(r.code, 0) << action << "\n" << r.out << r.err;
  }
  StepRun pub = run("publish image.yaml");
  EXPECT_EQ(pub.code, 3) << pub.out << pub.err;
  EXPECT_NE(pub.out.find("xx-fake-1  FAILED: EC2 "), std::string::npos) << pub.out;
  EXPECT_NE(pub.out.find(" (xx-fake-1): HTTP 500"), std::string::npos) << pub.out;
  EXPECT_NE(pub.err.find("publish: 1 of 3 regions failed"), std::string::npos) << pub.err;
  ImageMetadata m = meta();
  EXPECT_FALSE(m.get_string("published"));
  std::string home_ami = m.get_string("import_id").value_or("");
  std::string home_snap = op_get(m, "import", "snapshot_id").value_or("");
  std::string copy = map_get(m, "artifacts", "eu-west-2").value_or("");
  ASSERT_FALSE(copy.empty()) << read("image.yaml");
  std::string find = "NAME = " + py(name_) + "\n";
  ASSERT_CHECK(before, check(find + "print(json.dumps({'home': amis('us-east-1', NAME), 'copy': amis('eu-west-2', NAME)}))"));
  ASSERT_EQ(before["copy"].size(), 1u) << before.dump();
  json copy_snaps = before["copy"][0]["snapshots"];
  ASSERT_EQ(copy_snaps.size(), 1u) << before.dump();

  StepRun rb = run("rollback image.yaml");
  EXPECT_EQ(rb.code, 0) << rb.out << rb.err;
  for (const std::string& line : {"deregistered " + copy + " in eu-west-2", "deregistered " + home_ami + " in us-east-1",
                                  "deleted " + home_snap + " in us-east-1",
                                  "deleted s3://" + bucket_ + "/prefix/" + name_ + ".raw"})
    EXPECT_NE(rb.out.find(line + "\n"), std::string::npos) << line << "\n" << rb.out;
  ImageMetadata after = meta();
  for (const char* key : {"uploaded", "upload_url", "imported", "import_id", "import_region", "artifacts", "operations"})
    EXPECT_EQ(after.get(key), nullptr) << key << "\n" << read("image.yaml");
  for (const char* key : {"built", "image_file", "checksums", "regions"})
    EXPECT_NE(after.get(key), nullptr) << key;

  ASSERT_CHECK(got, check(find + "print(json.dumps({'home': amis('us-east-1', NAME), 'copy': amis('eu-west-2', NAME), "
                                 "'home_snap': snapshot_exists('us-east-1', " + py(home_snap) + "), "
                                 "'copy_snap': snapshot_exists('eu-west-2', " + py(copy_snaps[0].get<std::string>()) +
                                 "), 'tagged': tagged_snapshots('us-east-1', NAME), "
                                 "'keys': keys_under(" + py(bucket_) + ", 'prefix/')}))"));
  EXPECT_EQ(got["home"], json::array());
  EXPECT_EQ(got["copy"], json::array());
  EXPECT_EQ(got["home_snap"], false);
  EXPECT_EQ(got["copy_snap"], false);
  EXPECT_EQ(got["tagged"], json::array());
  EXPECT_EQ(got["keys"], json::array());

  std::string yaml_before = read("image.yaml");
  StepRun again = run("rollback image.yaml");
  EXPECT_EQ(again.code, 0);
  EXPECT_EQ(again.out, "");
  EXPECT_NE(again.err.find("image.yaml: rollback: nothing to roll back"), std::string::npos) << again.err;
  EXPECT_EQ(read("image.yaml"), yaml_before);
}

}  // namespace
}  // namespace ch::test::aws_steps
