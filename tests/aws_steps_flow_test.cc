// cloud: aws end to end, the happy paths: the built binary takes a sparse
// raw disk through convert, checksum, upload, import, publish and release
// against the emulators, and boto3 checks what really exists — the S3
// object's bytes, the EBS snapshot's blocks, the AMI in every region with
// its attributes, permission and deprecation. Also: re-runs send no
// creating call, import-snapshot of a VHD, --dry-run sends nothing, and no
// secret reaches a debug log.
#include "tests/aws_steps_fixture.h"

namespace ch::test::aws_steps {
namespace {

constexpr uint64_t kMiB = 1 << 20;

TEST_F(AwsSteps, FullFlowThreeRegionsThenRerunsAreSkipsOrConverge) {
  make_bucket(bucket_);
  make_disk("disk.img", 96 * kMiB);
  std::string released = file("released.txt");
  write("image.yaml",
        yaml_inputs("image_format: raw\nregions: [us-east-1, eu-west-2, ap-southeast-2]\npublic: true\n"
                    "end_of_life: 2027-05-01\ndescription: cloud_helper e2e\n"
                    "tags: {project: cloud-helper-e2e, flavor: tiny}\n"
                    "release_cmd: \"printf '%s %s' {name} {import_id} > " + released + "\"\n"));
  for (const char* action : {"convert", "checksum", "upload", "import", "publish"}) {
    StepRun r = run(std::string(action) + " image.yaml");
    ASSERT_EQ(r.code, 0) << action << "\n" << r.out << r.err;
  }
  // Published: rollback is no longer an undo.
  StepRun refused = run("rollback image.yaml");
  EXPECT_EQ(refused.code, 2);
  EXPECT_NE(refused.err.find("rollback: refused: the image was published"), std::string::npos) << refused.err;
  StepRun rel = run("release image.yaml");
  ASSERT_EQ(rel.code, 0) << rel.err;

  ImageMetadata m = meta();
  std::string key = "prefix/" + name_ + ".raw";
  EXPECT_TRUE(m.get_string("uploaded"));
  EXPECT_EQ(m.get_string("upload_url").value_or(""), "s3://" + bucket_ + "/" + key);
  EXPECT_TRUE(m.get_string("imported"));
  EXPECT_EQ(m.get_string("import_region").value_or(""), "us-east-1");
  EXPECT_TRUE(m.get_string("published"));
  EXPECT_TRUE(m.get_string("released"));
  std::string import_id = m.get_string("import_id").value_or("");
  std::string snapshot = op_get(m, "import", "snapshot_id").value_or("");
  ASSERT_FALSE(snapshot.empty()) << read("image.yaml");
  auto artifacts = map_entries(m, "artifacts");
  ASSERT_EQ(artifacts.size(), 3u) << read("image.yaml");
  EXPECT_EQ(map_get(m, "artifacts", "us-east-1").value_or(""), import_id);
  EXPECT_EQ(slurp(released), name_ + " " + import_id);

  // Re-runs through a private proxy that counts what they send.
  auto proxy = PrivateFaultProxy::start(aws().endpoint, file("proxy.log"));
  ASSERT_TRUE(proxy.ok()) << proxy.message();
  endpoint_ = (*proxy)->url;
  std::remove(released.c_str());
  for (const char* action : {"upload", "import", "publish", "release"}) {
    StepRun r = run(std::string(action) + " image.yaml");
    EXPECT_EQ(r.code, 0) << action << "\n" << r.out << r.err;
    if (std::string(action) != "publish") {  // "upload: already uploaded", "release already done"
      bool notice = r.err.find(action + std::string(": already ")) != std::string::npos ||
                    r.err.find(action + std::string(" already done")) != std::string::npos;
      EXPECT_TRUE(notice) << action << ": " << r.err;
    }
  }
  EXPECT_FALSE(std::ifstream(released).good()) << "release_cmd ran again";
  ASSERT_CHECK(stats, (*proxy)->stats());
  EXPECT_EQ(creating_calls(stats), std::vector<std::string>{}) << stats.dump();
  EXPECT_GT(stats["requests"].get<int>(), 0) << "publish re-checks every region";
  EXPECT_EQ(map_entries(meta(), "artifacts"), artifacts);

  ASSERT_CHECK(got, check("B, KEY, NAME, IMG, SNAP = " + py(bucket_) + ", " + py(key) + ", " + py(name_) +
                            ", " + py(file(name_ + ".raw")) + ", " + py(snapshot) + R"PY(
print(json.dumps({
    'keys': keys_under(B, 'prefix/'),
    'object': object_sha256(B, KEY), 'file': file_sha256(IMG),
    'sidecar': s3.get_object(Bucket=B, Key=KEY + '.sha256')['Body'].read().decode(),
    'snapshot': compare_snapshot(SNAP, IMG),
    'tagged': tagged_snapshots('us-east-1', NAME),
    'regions': {r: amis(r, NAME) for r in ('us-east-1', 'eu-west-2', 'ap-southeast-2')}}))
)PY"));
  EXPECT_EQ(got["keys"], json({key, key + ".sha256", key + ".sha512"}));
  EXPECT_EQ(got["object"], got["file"]);
  EXPECT_EQ(got["sidecar"].get<std::string>(), read(name_ + ".raw.sha256"));
  EXPECT_TRUE(got["snapshot"]["match"].get<bool>()) << got["snapshot"].dump();
  EXPECT_EQ(got["snapshot"]["block_size"], 524288);
  EXPECT_EQ(got["tagged"], json({snapshot}));
  for (const auto& [region, ami] : artifacts) {
    SCOPED_TRACE(region);
    const json& images = got["regions"][region];
    ASSERT_EQ(images.size(), 1u) << images.dump();
    const json& i = images[0];
    EXPECT_EQ(i["id"], ami);
    EXPECT_EQ(i["state"], "available");
    EXPECT_EQ(i["arch"], "x86_64");
    EXPECT_EQ(i["tags"], json({{"Name", name_}, {"flavor", "tiny"}, {"project", "cloud-helper-e2e"}}));
    EXPECT_EQ(i["boot_mode"], "uefi");
    EXPECT_EQ(i["imds"], "v2.0");
    EXPECT_EQ(i["ena"], true);
    EXPECT_EQ(i["public"], true);
    EXPECT_EQ(i["launch"], json::parse(R"([{"Group": "all"}])"));
    EXPECT_EQ(i["deprecation"].get<std::string>().substr(0, 19), "2027-05-01T23:59:00") << i.dump();
  }
  EXPECT_EQ(got["regions"]["us-east-1"][0]["snapshots"], json({snapshot}));
}

TEST_F(AwsSteps, ImportSnapshotOfAVhdThroughTheGapProxy) {
  make_bucket(bucket_);
  make_disk("disk.img", 64 * kMiB, 2);
  write("image.yaml", yaml_inputs("image_format: vhd\nimport_method: import-snapshot\nregions: [us-east-1]\n"));
  for (const char* action : {"convert", "checksum", "upload", "import"}) {
    StepRun r = run(std::string(action) + " image.yaml");
    ASSERT_EQ(r.code, 0) << action << "\n" << r.out << r.err;
  }
  ImageMetadata m = meta();
  EXPECT_EQ(m.get_string("image_file").value_or(""), name_ + ".vhd");
  EXPECT_EQ(m.get_string("upload_url").value_or(""), "s3://" + bucket_ + "/prefix/" + name_ + ".vhd");
  std::string import_id = m.get_string("import_id").value_or("");
  std::string snapshot = op_get(m, "import", "snapshot_id").value_or("");
  EXPECT_EQ(op_get(m, "import", "method").value_or(""), "import-snapshot");
  EXPECT_EQ(op_get(m, "import", "task_id").value_or("").rfind("import-snap-", 0), 0u) << read("image.yaml");
  ASSERT_FALSE(snapshot.empty()) << read("image.yaml");

  StepRun again = run("import image.yaml");
  EXPECT_EQ(again.code, 0);
  EXPECT_NE(again.err.find("import: already imported as " + import_id), std::string::npos) << again.err;

  ASSERT_CHECK(got, check("NAME, RAW, SNAP = " + py(name_) + ", " + py(file("disk.img")) + ", " +
                            py(snapshot) + R"PY(
print(json.dumps({'snapshot': compare_snapshot(SNAP, RAW), 'images': amis('us-east-1', NAME),
                  'tagged': tagged_snapshots('us-east-1', NAME)}))
)PY"));
  EXPECT_TRUE(got["snapshot"]["match"].get<bool>()) << got["snapshot"].dump();
  ASSERT_EQ(got["images"].size(), 1u) << got.dump();
  EXPECT_EQ(got["images"][0]["id"], import_id);
  EXPECT_EQ(got["images"][0]["snapshots"], json({snapshot}));
  EXPECT_EQ(got["images"][0]["boot_mode"], "uefi");
  EXPECT_EQ(got["tagged"], json({snapshot}));
}

TEST_F(AwsSteps, DryRunPrintsWhatItWouldDoAndSendsNothing) {
  make_disk("disk.img", 8 * kMiB);
  write("image.yaml", yaml_inputs("regions: [us-east-1, eu-west-2]\npublic: true\nend_of_life: 2027-05-01\n"));
  for (const char* action : {"convert", "checksum"}) ASSERT_EQ(run(std::string(action) + " image.yaml").code, 0);
  // An image as a killed publish leaves it: imported, one copy recorded.
  write("imported.yaml",
        yaml_inputs("regions: [us-east-1, eu-west-2]\npublic: true\nimage_file: disk.img\n"
                    "uploaded: 2026-01-01T00:00:00Z\nupload_url: s3://" + bucket_ + "/prefix/disk.img\n"
                    "imported: 2026-01-01T00:00:00Z\nimport_id: ami-0123456789abcdef0\n"
                    "import_region: us-east-1\noperations:\n  import: {region: us-east-1, "
                    "snapshot_id: snap-0123456789abcdef0, image_id: ami-0123456789abcdef0}\n"
                    "  publish: {eu-west-2: ami-0fedcba9876543210}\n"));
  auto proxy = PrivateFaultProxy::start(aws().endpoint, file("proxy.log"));
  ASSERT_TRUE(proxy.ok()) << proxy.message();
  endpoint_ = (*proxy)->url;

  struct Case {
    std::string action, yaml, first_line_starts;
  } cases[] = {
      {"upload", "image.yaml", "would upload " + name_ + ".raw (8388608 bytes) to s3://" + bucket_ +
                                   "/prefix/" + name_ + ".raw with PutObject"},
      {"import", "image.yaml", "would StartSnapshot in us-east-1 (EBS direct)"},
      {"publish", "imported.yaml", "would CopyImage ami-0123456789abcdef0 from us-east-1 to us-east-1, eu-west-2"},
      {"rollback", "imported.yaml", "would DeregisterImage ami-0fedcba9876543210 in eu-west-2"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.action);
    std::string before = read(c.yaml);
    StepRun r = run("--dry-run " + c.action + " " + c.yaml);
    EXPECT_EQ(r.code, 0) << r.err;
    std::vector<std::string> lines;  // "IMAGE.yaml: ACTION: would ..." without the prefix
    const std::string prefix = c.yaml + ": " + c.action + ": ";
    for (const std::string& line : lines_of(r.out)) {
      EXPECT_EQ(line.rfind(prefix, 0), 0u) << line;
      if (line.rfind(prefix, 0) == 0) lines.push_back(line.substr(prefix.size()));
    }
    ASSERT_FALSE(lines.empty()) << r.out << r.err;
    EXPECT_EQ(lines[0].substr(0, c.first_line_starts.size()), c.first_line_starts) << r.out;
    for (const std::string& line : lines) EXPECT_EQ(line.rfind("would ", 0), 0u) << line;
    EXPECT_EQ(read(c.yaml), before);
  }
  StepRun rb = run("--dry-run rollback imported.yaml");
  for (const char* want : {"would DeregisterImage ami-0123456789abcdef0 in us-east-1",
                           "would DeleteSnapshot snap-0123456789abcdef0 in us-east-1",
                           "would DeleteObject s3://"}) {
    EXPECT_NE(rb.out.find(want), std::string::npos) << want << "\n" << rb.out;
  }
  ASSERT_CHECK(stats, (*proxy)->stats());
  EXPECT_EQ(stats["requests"], 0) << stats.dump();
}

TEST_F(AwsSteps, SecretsNeverReachTheDebugLog) {
  make_bucket(bucket_);
  make_disk("disk.img", 8 * kMiB);
  write("image.yaml", yaml_inputs("image_file: disk.img\nregions: [us-east-1]\n"));
  // The gap proxy does not check signatures: any keys work.
  keys_.secret_access_key = "e2eSECRET/" + unique_name("k") + "+Zq9";
  std::string token = "IQoJb3JpZ2luX2VjE" + std::string(600, 'T') + unique_name("tok") + "==";
  std::string env = "AWS_SESSION_TOKEN=" + shell_quote(token);
  for (const char* action : {"upload", "import"}) {
    SCOPED_TRACE(action);
    StepRun r = run(std::string("--log-level debug ") + action + " image.yaml", env);
    EXPECT_EQ(r.code, 0) << r.err.substr(0, 3000);
    EXPECT_EQ(r.err.find(keys_.secret_access_key), std::string::npos);
    EXPECT_EQ(r.out.find(keys_.secret_access_key), std::string::npos);
    EXPECT_EQ(r.err.find(token.substr(0, 24)), std::string::npos);
    EXPECT_EQ(r.err.find(std::string(40, 'T')), std::string::npos);
    EXPECT_EQ(r.out.find(token.substr(0, 24)), std::string::npos);
    EXPECT_NE(r.err.find("credentials from environment"), std::string::npos) << r.err.substr(0, 2000);
    size_t http_lines = 0;  // every request and answer, headers included
    for (const std::string& line : lines_of(r.err)) http_lines += line.rfind("cloud_helper: http: ", 0) == 0;
    EXPECT_GE(http_lines, 4u) << r.err.substr(0, 3000);
    EXPECT_NE(r.err.find("[X-Amz-Security-Token: ***]"), std::string::npos);
    EXPECT_NE(r.err.find("[Authorization: ***]"), std::string::npos);
  }
  EXPECT_FALSE(read("image.yaml").find(token.substr(0, 24)) != std::string::npos);
}

}  // namespace
}  // namespace ch::test::aws_steps
