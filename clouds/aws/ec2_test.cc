// The EC2 wrappers against moto behind the gap proxy (CLOUD_HELPER_AWS_ENDPOINT,
// tests/test_aws_env.h), which answers the calls moto lacks and keeps what
// moto drops from RegisterImage, as AWS does; plain moto
// (CLOUD_HELPER_MOTO_URL) where a test needs a state AWS would refuse. The
// full field set is also covered on canned answers in ec2_xml_test.cc.
#include "clouds/aws/ec2.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "clouds/aws/ebs.h"
#include "clouds/aws/s3.h"
#include "tests/test_aws_env.h"

namespace ch {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

using test::unique_name;

Ec2RegisterImageRequest request_for(const std::string& name, const std::string& snapshot = "snap-12345678") {
  Ec2RegisterImageRequest r;
  r.name = name;
  r.description = "cloud_helper test image";
  r.architecture = "x86_64";
  r.snapshot_id = snapshot;
  r.boot_mode = "uefi";
  r.image_tags = {{"Name", name}};
  return r;
}

// An empty, completed 1 GiB snapshot (the gap proxy checks that
// RegisterImage names one that exists).
std::string make_snapshot(AwsClient& client, const std::string& region = "us-east-1") {
  EbsStartSnapshotRequest start;
  start.volume_size_gib = 1;
  auto snap = ebs_start_snapshot(client, region, start);
  EXPECT_TRUE(snap.ok()) << snap.message();
  if (!snap.ok()) return "";
  auto done = ebs_complete_snapshot(client, region, snap->snapshot_id, 0, {});
  EXPECT_TRUE(done.ok()) << done.message();
  return snap->snapshot_id;
}

// Registers NAME on a fresh snapshot; fails the test on error.
std::string register_image(AwsClient& client, const std::string& name) {
  auto id = ec2_register_image(client, "us-east-1", request_for(name, make_snapshot(client)));
  EXPECT_TRUE(id.ok()) << id.message();
  return id.ok() ? *id : "";
}

class Ec2MotoTest : public test::AwsClientTest {};

TEST(Ec2Test, RegisterImageValidatesBeforeSending) {
  // Nothing listens here: every case must fail before a request is made.
  test::AwsTestClient nowhere("http://127.0.0.1:9");
  AwsClient& client = *nowhere.client;
  auto r = request_for("ok-name");
  r.name = "x";
  EXPECT_EQ(ec2_register_image(client, "us-east-1", r).message(),
            "EC2 RegisterImage (us-east-1): AMI name 'x' must be 3 to 128 characters long");
  r.name = "bad:name";
  EXPECT_EQ(ec2_register_image(client, "us-east-1", r).message(),
            "EC2 RegisterImage (us-east-1): AMI name 'bad:name' contains ':'; allowed are letters, "
            "digits and ( ) [ ] space . / - ' @ _");
  r = request_for("ok-name");
  r.architecture = "aarch64";
  EXPECT_EQ(ec2_register_image(client, "us-east-1", r).message(),
            "EC2 RegisterImage (us-east-1): architecture 'aarch64' is not x86_64 or arm64");
  r = request_for("ok-name");
  r.boot_mode = "bios";
  EXPECT_EQ(ec2_register_image(client, "us-east-1", r).message(),
            "EC2 RegisterImage (us-east-1): boot mode 'bios' is not uefi, legacy-bios or uefi-preferred");
  r = request_for("ok-name");
  r.snapshot_id = "";
  EXPECT_EQ(ec2_register_image(client, "us-east-1", r).message(),
            "EC2 RegisterImage (us-east-1): no snapshot id for the root device");
  EXPECT_EQ(ec2_modify_launch_permissions(client, "us-east-1", "ami-1", {Ec2Permission{}}, {}).message(),
            "EC2 ModifyImageAttribute (us-east-1): a permission must name exactly one grantee");
  Ec2ImportSnapshotRequest imp;
  imp.format = "QCOW2";
  EXPECT_EQ(ec2_import_snapshot(client, "us-east-1", imp).message(),
            "EC2 ImportSnapshot (us-east-1): disk format 'QCOW2' is not RAW, VHD or VMDK");
}

TEST_F(Ec2MotoTest, RegisterImageThenDescribeRoundTrip) {
  const std::string name = unique_name("register");
  const std::string snapshot = make_snapshot(client());
  auto request = request_for(name, snapshot);
  request.volume_size_gib = 2;
  request.tpm_support = "v2.0";
  request.snapshot_tags = {{"Name", name + "-disk"}};
  auto id = ec2_register_image(client(), "us-east-1", request);
  ASSERT_TRUE(id.ok()) << id.message();
  EXPECT_TRUE(starts_with(*id, "ami-"));

  auto found = ec2_find_image(client(), "us-east-1", *id);
  ASSERT_TRUE(found.ok()) << found.message();
  ASSERT_TRUE(found->has_value());
  const Ec2Image& image = **found;
  // Through the gap proxy DescribeImages shows what RegisterImage sent, as
  // AWS does (moto alone keeps only name and description).
  EXPECT_EQ(image.image_id, *id);
  EXPECT_EQ(image.name, name);
  EXPECT_EQ(image.description, "cloud_helper test image");
  EXPECT_EQ(image.state, "available");
  EXPECT_FALSE(image.is_public);
  EXPECT_FALSE(image.owner_id.empty());
  EXPECT_FALSE(image.creation_date.empty());
  ASSERT_EQ(image.snapshot_ids().size(), 1u);
  EXPECT_TRUE(starts_with(image.snapshot_ids()[0], "snap-"));
  EXPECT_EQ(image.architecture, "x86_64");
  EXPECT_EQ(image.virtualization_type, "hvm");
  EXPECT_EQ(image.root_device_name, "/dev/xvda");
  EXPECT_EQ(image.boot_mode, "uefi");
  EXPECT_EQ(image.imds_support, "v2.0");
  EXPECT_EQ(image.tpm_support, "v2.0");
  EXPECT_EQ(image.sriov_net_support, "simple");
  EXPECT_TRUE(image.ena_support);
  EXPECT_EQ(image.tags, (AwsTags{{"Name", name}}));
  ASSERT_EQ(image.block_devices.size(), 1u);
  EXPECT_EQ(image.block_devices[0].device_name, "/dev/xvda");
  EXPECT_EQ(image.block_devices[0].snapshot_id, snapshot);
  EXPECT_EQ(image.block_devices[0].volume_type, "gp3");
  EXPECT_EQ(image.block_devices[0].volume_size_gib, 2u);
  EXPECT_TRUE(image.block_devices[0].delete_on_termination);
  auto snap = ec2_find_snapshot(client(), "us-east-1", snapshot);
  ASSERT_TRUE(snap.ok() && snap->has_value()) << snap.message();
  EXPECT_EQ((*snap)->tags, (AwsTags{{"Name", name + "-disk"}}));

  // By owner + name, and by the same query with a tag moto can match.
  auto by_name = ec2_find_own_image_by_name(client(), "us-east-1", name);
  ASSERT_TRUE(by_name.ok()) << by_name.message();
  ASSERT_TRUE(by_name->has_value());
  EXPECT_EQ((*by_name)->image_id, *id);
  ASSERT_TRUE(ec2_create_tags(client(), "us-east-1", {*id}, {{"build", name}}).ok());
  Ec2ImageQuery q;
  q.owners = {"self"};
  q.tags = {{"build", name}};
  auto by_tag = ec2_describe_images(client(), "us-east-1", q);
  ASSERT_TRUE(by_tag.ok()) << by_tag.message();
  ASSERT_EQ(by_tag->size(), 1u);
  EXPECT_EQ((*by_tag)[0].image_id, *id);
  EXPECT_EQ((*by_tag)[0].tags.at("build"), name);

  auto none = ec2_find_own_image_by_name(client(), "us-east-1", name + "-absent");
  ASSERT_TRUE(none.ok()) << none.message();
  EXPECT_FALSE(none->has_value());
}

TEST_F(Ec2MotoTest, TwoImagesWithOneNameAreAnError) {
  // AWS (and the gap proxy) refuse the second RegisterImage; moto itself
  // does not, which lets this test make the ambiguous state behind the proxy.
  const std::string name = unique_name("dup");
  const std::string a = register_image(client(), name);
  ASSERT_FALSE(a.empty());
  auto b = ec2_register_image(client(), "us-east-1", request_for(name, make_snapshot(client())));
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, "InvalidAMIName.Duplicate");
  EXPECT_TRUE(starts_with(b.message(), "EC2 RegisterImage (us-east-1): HTTP 400 "
                                       "InvalidAMIName.Duplicate: AMI name " + name +
                                       " is already in use by AMI " + a + " (request id "))
      << b.message();
  test::AwsTestClient moto(aws().moto_url);
  b = ec2_register_image(*moto.client, "us-east-1", request_for(name));
  ASSERT_TRUE(b.ok()) << b.message();
  auto found = ec2_find_own_image_by_name(client(), "us-east-1", name);
  ASSERT_FALSE(found.ok());
  EXPECT_TRUE(starts_with(found.message(), "2 AMIs named " + name + " in us-east-1: ami-"))
      << found.message();
}

TEST_F(Ec2MotoTest, CopyImageToAnotherRegionAndWait) {
  const std::string name = unique_name("copy");
  const std::string source = register_image(client(), name);
  ASSERT_FALSE(source.empty());
  const std::string* id = &source;
  Ec2CopyImageRequest c;
  c.source_image_id = *id;
  c.source_region = "us-east-1";
  c.name = name;
  c.description = "copied";
  c.client_token = name;
  c.tags = {{"Name", name}};
  auto copy = ec2_copy_image(client(), "eu-west-2", c);
  ASSERT_TRUE(copy.ok()) << copy.message();
  EXPECT_NE(*copy, *id);
  auto ready = ec2_wait_image_available(client(), "eu-west-2", *copy);
  ASSERT_TRUE(ready.ok()) << ready.message();
  EXPECT_EQ(ready->image_id, *copy);
  EXPECT_EQ(ready->name, name);
  EXPECT_EQ(ready->description, "copied");
  EXPECT_EQ(ready->state, "available");
  EXPECT_EQ(ready->tags, (AwsTags{{"Name", name}}));
  EXPECT_EQ(ready->boot_mode, "uefi");
  EXPECT_EQ(ready->architecture, "x86_64");
  // Only in the destination region.
  auto absent = ec2_find_image(client(), "us-east-1", *copy);
  ASSERT_TRUE(absent.ok()) << absent.message();
  EXPECT_FALSE(absent->has_value());
}

TEST_F(Ec2MotoTest, WaitingForAnUnknownImageGivesUpAfterTheGracePeriod) {
  auto r = ec2_wait_image_available(client(), "us-east-1", "ami-0123456789abcdef0");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "AMI ami-0123456789abcdef0 in us-east-1 does not exist (InvalidAMIID.NotFound)");
  PollOptions quick;
  quick.timeout = std::chrono::seconds(0);
  auto s = ec2_wait_snapshot_completed(client(), "us-east-1", "snap-0123456789abcdef0", quick);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "timed out after 0 s waiting for snapshot snap-0123456789abcdef0 in us-east-1 to "
            "complete (last state: not found)");
}

TEST_F(Ec2MotoTest, LaunchPermissionsAddRemoveAndReset) {
  const std::string image_id = register_image(client(), unique_name("perm"));
  ASSERT_FALSE(image_id.empty());
  const std::string* id = &image_id;
  Ec2Permission user{"", "123456789012", "", ""};
  ASSERT_TRUE(ec2_modify_launch_permissions(client(), "us-east-1", *id,
                                            {ec2_public_permission(), user}, {}).ok());
  auto perms = ec2_describe_launch_permissions(client(), "us-east-1", *id);
  ASSERT_TRUE(perms.ok()) << perms.message();
  EXPECT_EQ(*perms, (std::vector<Ec2Permission>{ec2_public_permission(), user}));
  auto image = ec2_find_image(client(), "us-east-1", *id);
  ASSERT_TRUE(image.ok() && image->has_value());
  EXPECT_TRUE((*image)->is_public);
  // Adding again changes nothing.
  ASSERT_TRUE(ec2_modify_launch_permissions(client(), "us-east-1", *id,
                                            {ec2_public_permission()}, {}).ok());
  ASSERT_TRUE(ec2_modify_launch_permissions(client(), "us-east-1", *id, {},
                                            {ec2_public_permission()}).ok());
  perms = ec2_describe_launch_permissions(client(), "us-east-1", *id);
  ASSERT_TRUE(perms.ok()) << perms.message();
  EXPECT_EQ(*perms, std::vector<Ec2Permission>{user});

  Status reset = ec2_reset_launch_permissions(client(), "us-east-1", *id);  // moto lacks it; the gap proxy has it
  ASSERT_TRUE(reset.ok()) << reset.message();
  perms = ec2_describe_launch_permissions(client(), "us-east-1", *id);
  ASSERT_TRUE(perms.ok()) << perms.message();
  EXPECT_TRUE(perms->empty());
}

TEST_F(Ec2MotoTest, SnapshotCreateVolumePermissionsAndTags) {
  const std::string image_id = register_image(client(), unique_name("snapperm"));
  ASSERT_FALSE(image_id.empty());
  const std::string* id = &image_id;
  auto image = ec2_find_image(client(), "us-east-1", *id);
  ASSERT_TRUE(image.ok() && image->has_value());
  const std::string snap = (*image)->snapshot_ids().at(0);

  ASSERT_TRUE(ec2_modify_create_volume_permissions(client(), "us-east-1", snap,
                                                   {ec2_public_permission()}, {}).ok());
  auto perms = ec2_describe_create_volume_permissions(client(), "us-east-1", snap);
  ASSERT_TRUE(perms.ok()) << perms.message();
  EXPECT_EQ(*perms, std::vector<Ec2Permission>{ec2_public_permission()});
  ASSERT_TRUE(ec2_modify_create_volume_permissions(client(), "us-east-1", snap, {},
                                                   {ec2_public_permission()}).ok());
  perms = ec2_describe_create_volume_permissions(client(), "us-east-1", snap);
  ASSERT_TRUE(perms.ok()) << perms.message();
  EXPECT_TRUE(perms->empty());

  ASSERT_TRUE(ec2_create_tags(client(), "us-east-1", {*id, snap},
                              {{"Name", "n"}, {"project", "p"}}).ok());
  auto snaps = ec2_find_snapshot(client(), "us-east-1", snap);
  ASSERT_TRUE(snaps.ok() && snaps->has_value()) << snaps.message();
  EXPECT_EQ((*snaps)->tags, (AwsTags{{"Name", "n"}, {"project", "p"}}));
  EXPECT_EQ((*snaps)->state, "completed");
  image = ec2_find_image(client(), "us-east-1", *id);
  ASSERT_TRUE(image.ok() && image->has_value());
  EXPECT_EQ((*image)->tags, (AwsTags{{"Name", "n"}, {"project", "p"}}));
  Ec2SnapshotQuery q;
  q.owners = {"self"};
  q.tags = {{"Name", "n"}, {"project", "p"}};
  auto listed = ec2_describe_snapshots(client(), "us-east-1", q);
  ASSERT_TRUE(listed.ok()) << listed.message();
  EXPECT_TRUE(std::any_of(listed->begin(), listed->end(),
                          [&](const Ec2Snapshot& s) { return s.snapshot_id == snap; }));
  // Nothing to send is no request at all.
  EXPECT_TRUE(ec2_create_tags(client(), "us-east-1", {}, {{"a", "b"}}).ok());
}

TEST_F(Ec2MotoTest, DeregisterAndDeleteSnapshotAreIdempotent) {
  const std::string image_id = register_image(client(), unique_name("dereg"));
  ASSERT_FALSE(image_id.empty());
  const std::string* id = &image_id;
  auto image = ec2_find_image(client(), "us-east-1", *id);
  ASSERT_TRUE(image.ok() && image->has_value());
  const std::string snap = (*image)->snapshot_ids().at(0);

  ASSERT_TRUE(ec2_deregister_image(client(), "us-east-1", *id).ok());
  ASSERT_TRUE(ec2_deregister_image(client(), "us-east-1", *id).ok());  // again: already gone
  auto gone = ec2_find_image(client(), "us-east-1", *id);
  ASSERT_TRUE(gone.ok()) << gone.message();
  EXPECT_FALSE(gone->has_value());

  ASSERT_TRUE(ec2_delete_snapshot(client(), "us-east-1", snap).ok());
  ASSERT_TRUE(ec2_delete_snapshot(client(), "us-east-1", snap).ok());  // again
  auto no_snap = ec2_find_snapshot(client(), "us-east-1", snap);
  ASSERT_TRUE(no_snap.ok()) << no_snap.message();
  EXPECT_FALSE(no_snap->has_value());
}

TEST_F(Ec2MotoTest, DeletingASnapshotInUseIsAnError) {
  // Plain moto: its images show a snapshot of its own making, which it knows
  // to be in use (behind the gap proxy an image shows ours, which moto would
  // let go).
  test::AwsTestClient moto(aws().moto_url);
  auto id = ec2_register_image(*moto.client, "us-east-1", request_for(unique_name("inuse")));
  ASSERT_TRUE(id.ok()) << id.message();
  auto image = ec2_find_image(*moto.client, "us-east-1", *id);
  ASSERT_TRUE(image.ok() && image->has_value()) << image.message();
  const std::string snap = (*image)->snapshot_ids().at(0);
  Status in_use = ec2_delete_snapshot(*moto.client, "us-east-1", snap);
  ASSERT_FALSE(in_use.ok());
  EXPECT_EQ(in_use.error().code, "InvalidSnapshot.InUse");
  EXPECT_TRUE(starts_with(in_use.message(),
                          "EC2 DeleteSnapshot (us-east-1): HTTP 400 InvalidSnapshot.InUse: "))
      << in_use.message();
}

TEST_F(Ec2MotoTest, DescribeRegionsListsEnabledRegionsSorted) {
  auto regions = ec2_describe_regions(client(), "us-east-1");
  ASSERT_TRUE(regions.ok()) << regions.message();
  EXPECT_TRUE(std::is_sorted(regions->begin(), regions->end()));
  for (const char* r : {"us-east-1", "eu-west-2", "ap-southeast-2"})
    EXPECT_NE(std::find(regions->begin(), regions->end(), r), regions->end()) << r;
}

TEST_F(Ec2MotoTest, ErrorsNameTheCallTheCodeAndTheRequestId) {
  Ec2ImageQuery q;
  q.image_ids = {"image-1"};
  auto malformed = ec2_describe_images(client(), "us-east-1", q);
  ASSERT_FALSE(malformed.ok());
  EXPECT_EQ(malformed.error().code, "InvalidAMIID.Malformed");
  EXPECT_EQ(malformed.error().http_status, 400);
  EXPECT_TRUE(starts_with(malformed.message(),
                          "EC2 DescribeImages (us-east-1): HTTP 400 InvalidAMIID.Malformed: "))
      << malformed.message();
  EXPECT_NE(malformed.message().find("image-1"), std::string::npos) << malformed.message();
  EXPECT_NE(malformed.message().find(" (request id "), std::string::npos) << malformed.message();
  // find_image keeps malformed ids an error.
  EXPECT_FALSE(ec2_find_image(client(), "us-east-1", "image-1").ok());

  q.image_ids = {"ami-0123456789abcdef0"};
  auto missing = ec2_describe_images(client(), "us-east-1", q);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "InvalidAMIID.NotFound");
  EXPECT_TRUE(starts_with(missing.message(),
                          "EC2 DescribeImages (us-east-1): HTTP 400 InvalidAMIID.NotFound: "))
      << missing.message();
  EXPECT_NE(missing.message().find(" (request id "), std::string::npos) << missing.message();
}

// --- calls moto lacks: the gap proxy answers them ----------------------

class Ec2HarnessTest : public Ec2MotoTest {};

TEST_F(Ec2HarnessTest, ImportSnapshotAndWait) {
  const std::string bucket = unique_name("import");
  ASSERT_TRUE(s3_create_bucket(client(), "us-east-1", bucket).ok());
  ASSERT_TRUE(s3_put_object_bytes(client(), "us-east-1", S3Url{bucket, "disk.raw"},
                                  std::string(1 << 20, 'x')).ok());
  Ec2ImportSnapshotRequest r;
  r.format = "RAW";
  r.s3_bucket = bucket;
  r.s3_key = "disk.raw";
  r.description = "cloud_helper test";
  r.client_token = unique_name("import");
  r.tags = {{"Name", "import"}};
  auto task = ec2_import_snapshot(client(), "us-east-1", r);
  ASSERT_TRUE(task.ok()) << task.message();
  EXPECT_TRUE(starts_with(*task, "import-snap-")) << *task;
  auto done = ec2_wait_import_snapshot(client(), "us-east-1", *task);
  ASSERT_TRUE(done.ok()) << done.message();
  EXPECT_EQ(done->status, "completed");
  EXPECT_TRUE(starts_with(done->snapshot_id, "snap-")) << done->snapshot_id;
  auto listed = ec2_describe_import_snapshot_tasks(client(), "us-east-1", {*task});
  ASSERT_TRUE(listed.ok()) << listed.message();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].snapshot_id, done->snapshot_id);
  // Cancelling a finished task is a no-op.
  EXPECT_TRUE(ec2_cancel_import_task(client(), "us-east-1", *task).ok());
}

TEST_F(Ec2HarnessTest, DeprecationAndBlockPublicAccessState) {
  const std::string image_id = register_image(client(), unique_name("deprecate"));
  ASSERT_FALSE(image_id.empty());
  const std::string* id = &image_id;
  ASSERT_TRUE(ec2_enable_image_deprecation(client(), "us-east-1", *id, "2030-05-01T00:00:00Z").ok());
  auto image = ec2_find_image(client(), "us-east-1", *id);
  ASSERT_TRUE(image.ok() && image->has_value()) << image.message();
  EXPECT_TRUE(starts_with((*image)->deprecation_time, "2030-05-01T00:00")) << (*image)->deprecation_time;
  ASSERT_TRUE(ec2_disable_image_deprecation(client(), "us-east-1", *id).ok());
  image = ec2_find_image(client(), "us-east-1", *id);
  ASSERT_TRUE(image.ok() && image->has_value()) << image.message();
  EXPECT_EQ((*image)->deprecation_time, "");

  auto state = ec2_get_image_block_public_access_state(client(), "us-east-1");
  ASSERT_TRUE(state.ok()) << state.message();
  EXPECT_TRUE(*state == "unblocked" || *state == "block-new-sharing") << *state;
}

}  // namespace
}  // namespace ch
