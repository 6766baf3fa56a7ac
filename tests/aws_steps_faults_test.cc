// cloud: aws end to end when AWS says no: signature checking (moto with IAM
// keys), injected network and service faults over a whole flow, and image
// block public access in one region.
#include "tests/aws_steps_fixture.h"

namespace ch::test::aws_steps {
namespace {

constexpr uint64_t kMiB = 1 << 20;

// stderr lines that are not the info log ("cloud_helper: aws: ...").
std::vector<std::string> error_lines(const std::string& err, const std::string& prefix) {
  std::vector<std::string> out;
  for (const std::string& line : lines_of(err))
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
  return out;
}

// moto 5.2.1's signature check rejects every EBS request without a body
// (CompleteSnapshot, ListSnapshotBlocks) even when boto3 signs it, so import
// cannot complete on the signature-checking moto. What can be checked there:
// S3 (upload, rollback's DeleteObject), EBS StartSnapshot/PutSnapshotBlock,
// EC2 DescribeSnapshots/DeleteSnapshot — all signed with the IAM user's keys.
TEST_F(AwsSteps, SignedWithTheIamUsersKeysAcceptedWrongSecretRefused) {
  auto keys = aws().auth_keys();
  ASSERT_TRUE(keys.ok()) << keys.message();
  endpoint_ = aws().auth_endpoint;
  keys_ = *keys;
  std::string bad_name = unique_name("bad");
  std::string auth_clients =
      "kw = dict(endpoint=AUTH_ENDPOINT, key=AUTH_KEYS['access_key_id'], secret=AUTH_KEYS['secret_access_key'])\n"
      "s3a, ec2a = client('s3', **kw), client('ec2', **kw)\n";
  ASSERT_TRUE(aws().boto3(auth_clients + "s3a.create_bucket(Bucket=" + py(bucket_) + ")").ok());
  make_disk("disk.img", 16 * kMiB, 4);
  write("image.yaml", yaml_inputs("image_file: disk.img\nregions: [us-east-1]\n"));
  write("bad.yaml", "name: " + bad_name + "\ncloud: aws\narch: x86_64\nimage_file: disk.img\n"
                    "storage_url: s3://" + bucket_ + "/bad/\nregions: [us-east-1]\n");

  StepRun up = run("upload image.yaml");
  ASSERT_EQ(up.code, 0) << up.err;
  StepRun imp = run("import image.yaml");
  if (imp.code != 0) {  // the moto gap above; anything else is ours
    EXPECT_EQ(imp.code, 1);
    EXPECT_NE(imp.err.find("import: EBS CompleteSnapshot snap-"), std::string::npos) << imp.err;
    EXPECT_NE(imp.err.find("HTTP 403 SignatureDoesNotMatch"), std::string::npos) << imp.err;
  }
  std::string snapshot = op_get(meta(), "import", "snapshot_id").value_or("");
  ASSERT_FALSE(snapshot.empty()) << read("image.yaml");

  // Wrong secret: refused at the first request, one error line naming the
  // status and code, nothing recorded as done.
  keys_.secret_access_key = "wrong" + keys->secret_access_key.substr(5);
  StepRun bad_up = run("upload bad.yaml");
  EXPECT_EQ(bad_up.code, 1);
  std::vector<std::string> errs = error_lines(bad_up.err, "cloud_helper: bad.yaml: upload: ");
  ASSERT_EQ(errs.size(), 1u) << bad_up.err;
  EXPECT_NE(errs[0].find("HTTP 403"), std::string::npos) << errs[0];
  StepRun bad_imp = run("import bad.yaml");
  EXPECT_EQ(bad_imp.code, 1);
  errs = error_lines(bad_imp.err, "cloud_helper: bad.yaml: import: ");
  ASSERT_EQ(errs.size(), 1u) << bad_imp.err;
  EXPECT_NE(errs[0].find("EBS StartSnapshot (us-east-1): HTTP 403 SignatureDoesNotMatch"), std::string::npos)
      << errs[0];
  EXPECT_NE(errs[0].find("(request id "), std::string::npos) << errs[0];
  ImageMetadata bad = meta("bad.yaml");
  for (const char* key : {"uploaded", "upload_url", "imported", "import_id"})
    EXPECT_FALSE(bad.get_string(key)) << key << "\n" << read("bad.yaml");
  EXPECT_FALSE(op_get(bad, "import", "snapshot_id"));

  ASSERT_CHECK(before, check(auth_clients + "print(json.dumps({'keys': keys_under(" + py(bucket_) +
                             ", '', s3a), 'snaps': tagged_snapshots('us-east-1', " + py(name_) +
                             ", ec2a), 'bad': tagged_snapshots('us-east-1', " + py(bad_name) + ", ec2a)}))"));
  EXPECT_EQ(before["keys"], json({"prefix/disk.img"}));
  EXPECT_EQ(before["snaps"], json({snapshot}));
  EXPECT_EQ(before["bad"], json::array());

  // Rollback with the right keys: EC2 DeleteSnapshot and S3 DeleteObject.
  keys_ = *keys;
  StepRun rb = run("rollback image.yaml");
  EXPECT_EQ(rb.code, 0) << rb.err;
  ASSERT_CHECK(after, check(auth_clients + "print(json.dumps({'keys': keys_under(" + py(bucket_) +
                            ", '', s3a), 'snaps': tagged_snapshots('us-east-1', " + py(name_) + ", ec2a)}))"));
  EXPECT_EQ(after["keys"], json::array());
  EXPECT_EQ(after["snaps"], json::array());
}

TEST_F(AwsSteps, FullFlowThroughInjectedFaults) {
  make_bucket(bucket_);
  make_disk("disk.img", 64 * kMiB, 5);
  write("image.yaml",
        yaml_inputs("image_format: raw\nregions: [us-east-1, eu-west-2, ap-southeast-2]\npublic: true\n"
                    "end_of_life: 2027-05-01\ntags: {project: faults}\n"));
  auto proxy = PrivateFaultProxy::start(aws().endpoint, file("proxy.log"));
  ASSERT_TRUE(proxy.ok()) << proxy.message();
  // drop: the request never reaches AWS (a retry cannot duplicate anything);
  // 20% in all, so that 8 attempts in a row fail with odds of 2.6e-6.
  ASSERT_TRUE((*proxy)->set_faults({{"drop", 0.05}, {"status500", 0.05}, {"status503", 0.05},
                                    {"throttle", 0.05}, {"seed", 20261122}}).ok());
  endpoint_ = (*proxy)->url;
  for (const char* action : {"convert", "checksum", "upload", "import", "publish"}) {
    StepRun r = run(std::string(action) + " image.yaml");
    ASSERT_EQ(r.code, 0) << action << "\n" << r.out << r.err;
  }
  ASSERT_CHECK(stats, (*proxy)->stats());
  for (const char* kind : {"drop", "status500", "status503", "throttle"})
    EXPECT_GT(stats["faults"].value(kind, 0), 0) << kind << ": " << stats.dump();

  ImageMetadata m = meta();
  EXPECT_TRUE(m.get_string("published"));
  EXPECT_EQ(map_entries(m, "artifacts").size(), 3u) << read("image.yaml");
  std::string snapshot = op_get(m, "import", "snapshot_id").value_or("");
  std::string key = "prefix/" + name_ + ".raw";
  ASSERT_CHECK(got, check("B, KEY, NAME, IMG, SNAP = " + py(bucket_) + ", " + py(key) + ", " + py(name_) +
                            ", " + py(file(name_ + ".raw")) + ", " + py(snapshot) + R"PY(
print(json.dumps({
    'object': object_sha256(B, KEY), 'file': file_sha256(IMG), 'uploads': multipart_uploads(B),
    'snapshot': compare_snapshot(SNAP, IMG), 'tagged': tagged_snapshots('us-east-1', NAME),
    'regions': {r: amis(r, NAME) for r in ('us-east-1', 'eu-west-2', 'ap-southeast-2')}}))
)PY"));
  EXPECT_EQ(got["object"], got["file"]);
  EXPECT_EQ(got["uploads"], json::array());
  EXPECT_TRUE(got["snapshot"]["match"].get<bool>()) << got["snapshot"].dump();
  EXPECT_EQ(got["tagged"], json({snapshot}));
  for (const auto& [region, ami] : map_entries(m, "artifacts")) {
    const json& images = got["regions"][region];
    ASSERT_EQ(images.size(), 1u) << region << ": " << images.dump();
    EXPECT_EQ(images[0]["id"], ami) << region;
    EXPECT_EQ(images[0]["launch"], json::parse(R"([{"Group": "all"}])")) << region;
    EXPECT_EQ(images[0]["tags"].value("project", ""), "faults") << region;
  }
}

// The gap proxy keeps the state per region: this test blocks only
// ap-northeast-3, a region no other test uses, and unblocks it whatever
// happens.
TEST_F(AwsSteps, ImageBlockPublicAccessFailsThatRegionWithTheFix) {
  const std::string blocked = "ap-northeast-3";
  make_disk("disk.img", 8 * kMiB, 6);
  write("image.yaml", "name: " + name_ + "\ncloud: aws\narch: x86_64\nfirmware: uefi\nlocal_image: disk.img\n"
                      "regions: [ca-central-1, " + blocked + "]\npublic: true\n");
  StepRun imp = run("import image.yaml");
  ASSERT_EQ(imp.code, 0) << imp.err;

  struct Unblock {
    const AwsTestEnv& env;
    std::string region;
    ~Unblock() {
      auto r = loopback_http("POST", env.endpoint + "/_gap/image-block-public-access?state=unblocked&region=" + region);
      EXPECT_TRUE(r.ok() && r->status == 200) << "could not unblock " << region;
    }
  };
  StepRun pub;
  {
    Unblock guard{aws(), blocked};
    auto r = loopback_http("POST", aws().endpoint + "/_gap/image-block-public-access?state=block-new-sharing&region=" +
                                       blocked);
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.message());
    pub = run("publish image.yaml");
  }
  EXPECT_EQ(pub.code, 3) << pub.out << pub.err;
  ImageMetadata m = meta();
  std::string copy = op_get(m, "publish", blocked).value_or("");
  ASSERT_FALSE(copy.empty()) << read("image.yaml");
  EXPECT_NE(pub.out.find(blocked + "  FAILED: image block public access is 'block-new-sharing' in " + blocked +
                         ": AMI " + copy + " cannot be made public there (aws ec2 "
                         "disable-image-block-public-access --region " + blocked + "), or set public: false"),
            std::string::npos)
      << pub.out;
  EXPECT_NE(pub.err.find("image.yaml: publish: 1 of 2 regions failed; re-run publish to finish them"),
            std::string::npos)
      << pub.err;
  EXPECT_FALSE(m.get_string("published"));
  EXPECT_TRUE(map_get(m, "artifacts", "ca-central-1"));
  EXPECT_FALSE(map_get(m, "artifacts", blocked));

  // Unblocked: the re-run finishes that region with the copy it made.
  StepRun again = run("publish image.yaml");
  EXPECT_EQ(again.code, 0) << again.out << again.err;
  EXPECT_TRUE(meta().get_string("published"));
  EXPECT_EQ(map_get(meta(), "artifacts", blocked).value_or(""), copy);
  ASSERT_CHECK(got, check("print(json.dumps(amis(" + py(blocked) + ", " + py(name_) + ")))"));
  ASSERT_EQ(got.size(), 1u) << got.dump();
  EXPECT_EQ(got[0]["id"], copy);
  EXPECT_EQ(got[0]["launch"], json::parse(R"([{"Group": "all"}])"));
}

}  // namespace
}  // namespace ch::test::aws_steps
