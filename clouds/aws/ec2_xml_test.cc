// The EC2 answer parsers and parameter spelling, on canned documents in
// AWS's own shape (moto keeps too few AMI fields to check them end to end).
#include "clouds/aws/ec2_xml.h"

#include <gtest/gtest.h>

#include "clouds/poll.h"

namespace ch {
namespace {

// Abridged from the DescribeImages example of the EC2 API reference, with
// every field cloud_helper reads.
const char kDescribeImages[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <imagesSet>
    <item>
      <imageId>ami-1234567890EXAMPLE</imageId>
      <imageLocation>123456789012/alpine-3.21.0-x86_64</imageLocation>
      <imageState>available</imageState>
      <imageOwnerId>123456789012</imageOwnerId>
      <creationDate>2025-05-01T12:00:00.000Z</creationDate>
      <isPublic>true</isPublic>
      <architecture>x86_64</architecture>
      <imageType>machine</imageType>
      <name>alpine-3.21.0-x86_64</name>
      <description>Alpine Linux 3.21.0</description>
      <rootDeviceType>ebs</rootDeviceType>
      <rootDeviceName>/dev/xvda</rootDeviceName>
      <blockDeviceMapping>
        <item>
          <deviceName>/dev/xvda</deviceName>
          <ebs>
            <snapshotId>snap-1234567890abcdef0</snapshotId>
            <volumeSize>2</volumeSize>
            <deleteOnTermination>true</deleteOnTermination>
            <volumeType>gp3</volumeType>
            <encrypted>false</encrypted>
          </ebs>
        </item>
        <item>
          <deviceName>/dev/sdb</deviceName>
          <virtualName>ephemeral0</virtualName>
        </item>
      </blockDeviceMapping>
      <virtualizationType>hvm</virtualizationType>
      <tagSet>
        <item><key>Name</key><value>alpine</value></item>
        <item><key>project</key><value>example</value></item>
      </tagSet>
      <hypervisor>xen</hypervisor>
      <enaSupport>true</enaSupport>
      <sriovNetSupport>simple</sriovNetSupport>
      <bootMode>uefi</bootMode>
      <tpmSupport>v2.0</tpmSupport>
      <imdsSupport>v2.0</imdsSupport>
      <deprecationTime>2027-05-01T00:00:00.000Z</deprecationTime>
    </item>
    <item>
      <imageId>ami-0000000000EXAMPLE</imageId>
      <imageState>failed</imageState>
      <stateReason><code>Client.InvalidSnapshot</code><message>snapshot is not usable</message></stateReason>
      <isPublic>false</isPublic>
    </item>
  </imagesSet>
</DescribeImagesResponse>)";

TEST(Ec2XmlTest, ReadsEveryImageField) {
  pugi::xml_document doc;
  ASSERT_TRUE(parse_aws_xml(kDescribeImages, doc, "test").ok());
  auto items = ec2xml::items(xml_root(doc), "imagesSet");
  ASSERT_EQ(items.size(), 2u);
  Ec2Image a = ec2xml::image(items[0]);
  EXPECT_EQ(a.image_id, "ami-1234567890EXAMPLE");
  EXPECT_EQ(a.name, "alpine-3.21.0-x86_64");
  EXPECT_EQ(a.description, "Alpine Linux 3.21.0");
  EXPECT_EQ(a.state, "available");
  EXPECT_EQ(a.state_reason, "");
  EXPECT_EQ(a.owner_id, "123456789012");
  EXPECT_EQ(a.architecture, "x86_64");
  EXPECT_EQ(a.creation_date, "2025-05-01T12:00:00.000Z");
  EXPECT_EQ(a.deprecation_time, "2027-05-01T00:00:00.000Z");
  EXPECT_EQ(a.boot_mode, "uefi");
  EXPECT_EQ(a.imds_support, "v2.0");
  EXPECT_EQ(a.tpm_support, "v2.0");
  EXPECT_EQ(a.virtualization_type, "hvm");
  EXPECT_EQ(a.root_device_name, "/dev/xvda");
  EXPECT_EQ(a.sriov_net_support, "simple");
  EXPECT_TRUE(a.ena_support);
  EXPECT_TRUE(a.is_public);
  EXPECT_EQ(a.tags, (AwsTags{{"Name", "alpine"}, {"project", "example"}}));
  ASSERT_EQ(a.block_devices.size(), 2u);
  EXPECT_EQ(a.block_devices[0].device_name, "/dev/xvda");
  EXPECT_EQ(a.block_devices[0].snapshot_id, "snap-1234567890abcdef0");
  EXPECT_EQ(a.block_devices[0].volume_size_gib, 2u);
  EXPECT_EQ(a.block_devices[0].volume_type, "gp3");
  EXPECT_TRUE(a.block_devices[0].delete_on_termination);
  EXPECT_EQ(a.snapshot_ids(), std::vector<std::string>{"snap-1234567890abcdef0"});

  Ec2Image b = ec2xml::image(items[1]);
  EXPECT_EQ(b.state, "failed");
  EXPECT_EQ(b.state_reason, "snapshot is not usable");
  EXPECT_FALSE(b.is_public);
  EXPECT_TRUE(b.snapshot_ids().empty());
}

TEST(Ec2XmlTest, MatchesLocalNamesWhateverThePrefix) {
  const char xml[] = R"(<ec2:DescribeSnapshotsResponse xmlns:ec2="http://ec2.amazonaws.com/doc/2016-11-15/">
    <ec2:snapshotSet><ec2:item>
      <ec2:snapshotId>snap-1</ec2:snapshotId><ec2:status>error</ec2:status>
      <ec2:statusMessage> checksum mismatch </ec2:statusMessage><ec2:progress>37%</ec2:progress>
      <ec2:volumeSize>6</ec2:volumeSize><ec2:encrypted>TRUE</ec2:encrypted>
      <ec2:tagSet><ec2:item><ec2:key>k</ec2:key><ec2:value></ec2:value></ec2:item></ec2:tagSet>
    </ec2:item></ec2:snapshotSet></ec2:DescribeSnapshotsResponse>)";
  pugi::xml_document doc;
  ASSERT_TRUE(parse_aws_xml(xml, doc, "test").ok());
  auto items = ec2xml::items(xml_root(doc), "snapshotSet");
  ASSERT_EQ(items.size(), 1u);
  Ec2Snapshot s = ec2xml::snapshot(items[0]);
  EXPECT_EQ(s.snapshot_id, "snap-1");
  EXPECT_EQ(s.state, "error");
  EXPECT_EQ(s.state_message, "checksum mismatch");
  EXPECT_EQ(s.progress, "37%");
  EXPECT_EQ(s.volume_size_gib, 6u);
  EXPECT_TRUE(s.encrypted);
  EXPECT_EQ(s.tags, (AwsTags{{"k", ""}}));
}

TEST(Ec2XmlTest, ReadsImportSnapshotTasks) {
  const char xml[] = R"(<DescribeImportSnapshotTasksResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <importSnapshotTaskSet><item>
      <importTaskId>import-snap-1fdbbcd6a5EXAMPLE</importTaskId><description>disk</description>
      <snapshotTaskDetail>
        <diskImageSize>6442450944.0</diskImageSize><format>RAW</format>
        <snapshotId>snap-0a</snapshotId><status>completed</status>
        <userBucket><s3Bucket>b</s3Bucket><s3Key>k</s3Key></userBucket>
      </snapshotTaskDetail>
    </item></importSnapshotTaskSet></DescribeImportSnapshotTasksResponse>)";
  pugi::xml_document doc;
  ASSERT_TRUE(parse_aws_xml(xml, doc, "test").ok());
  auto items = ec2xml::items(xml_root(doc), "importSnapshotTaskSet");
  ASSERT_EQ(items.size(), 1u);
  Ec2ImportSnapshotTask t = ec2xml::import_task(items[0]);
  EXPECT_EQ(t.task_id, "import-snap-1fdbbcd6a5EXAMPLE");
  EXPECT_EQ(t.status, "completed");
  EXPECT_EQ(t.snapshot_id, "snap-0a");
  EXPECT_EQ(t.disk_image_size, 6442450944u);
  EXPECT_EQ(t.format, "RAW");
  EXPECT_EQ(t.description, "disk");
}

TEST(Ec2XmlTest, SpellsRegisterImageParameters) {
  Ec2RegisterImageRequest r;
  r.name = "alpine-3.21.0-aarch64";
  r.description = "Alpine";
  r.architecture = "arm64";
  r.snapshot_id = "snap-1";
  r.volume_size_gib = 2;
  r.boot_mode = "uefi";
  r.tpm_support = "v2.0";
  r.uefi_data = "QUJD";
  r.image_tags = {{"Name", "a"}, {"b", "c"}};
  r.snapshot_tags = {{"Name", "a"}};
  ec2xml::Params want = {
      {"Name", "alpine-3.21.0-aarch64"},
      {"Description", "Alpine"},
      {"Architecture", "arm64"},
      {"RootDeviceName", "/dev/xvda"},
      {"BlockDeviceMapping.1.DeviceName", "/dev/xvda"},
      {"BlockDeviceMapping.1.Ebs.SnapshotId", "snap-1"},
      {"BlockDeviceMapping.1.Ebs.VolumeType", "gp3"},
      {"BlockDeviceMapping.1.Ebs.VolumeSize", "2"},
      {"BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true"},
      {"VirtualizationType", "hvm"},
      {"EnaSupport", "true"},
      {"SriovNetSupport", "simple"},
      {"BootMode", "uefi"},
      {"ImdsSupport", "v2.0"},
      {"TpmSupport", "v2.0"},
      {"UefiData", "QUJD"},
      {"TagSpecification.1.ResourceType", "image"},
      {"TagSpecification.1.Tag.1.Key", "Name"},
      {"TagSpecification.1.Tag.1.Value", "a"},
      {"TagSpecification.1.Tag.2.Key", "b"},
      {"TagSpecification.1.Tag.2.Value", "c"},
      {"TagSpecification.2.ResourceType", "snapshot"},
      {"TagSpecification.2.Tag.1.Key", "Name"},
      {"TagSpecification.2.Tag.1.Value", "a"},
  };
  EXPECT_EQ(ec2xml::register_image_params(r), want);
}

TEST(Ec2XmlTest, SpellsFiltersListsAndSkipsEmptyTagSpecifications) {
  ec2xml::Params p;
  int n = 1;
  ec2xml::add_tag_specification(&p, &n, "image", {});
  EXPECT_EQ(n, 1);
  ec2xml::add_filter(&p, &n, "opt-in-status", {"opt-in-not-required", "opted-in"});
  ec2xml::add_list(&p, "ImageId", {"ami-1", "ami-2"});
  ec2xml::Params want = {{"Filter.1.Name", "opt-in-status"},
                         {"Filter.1.Value.1", "opt-in-not-required"},
                         {"Filter.1.Value.2", "opted-in"},
                         {"ImageId.1", "ami-1"},
                         {"ImageId.2", "ami-2"}};
  EXPECT_EQ(p, want);
  EXPECT_EQ(n, 2);
}

TEST(PollTest, ReturnsWhenDoneAndQuotesTheLastStateOnTimeout) {
  PollOptions o;
  o.initial = std::chrono::milliseconds(1);
  o.max = std::chrono::milliseconds(2);
  int calls = 0;
  Status done = poll_until("x", o, [&](std::string*) -> Result<bool> { return ++calls == 3; });
  EXPECT_TRUE(done.ok());
  EXPECT_EQ(calls, 3);

  o.timeout = std::chrono::seconds(0);
  Status late = poll_until("AMI ami-1 in r to become available", o,
                           [&](std::string* state) -> Result<bool> {
                             *state = "pending";
                             return false;
                           });
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.message(),
            "timed out after 0 s waiting for AMI ami-1 in r to become available (last state: pending)");

  Status failed = poll_until("x", o, [](std::string*) -> Result<bool> { return Error{"boom"}; });
  EXPECT_EQ(failed.message(), "boom");
}

TEST(PollTest, ScaleComesFromTheEnvironment) {
  const char* old = std::getenv("CLOUD_HELPER_POLL_SCALE");
  std::string saved = old ? old : "";
  ::setenv("CLOUD_HELPER_POLL_SCALE", "0.5", 1);
  PollOptions o;
  EXPECT_EQ(o.scaled().initial, std::chrono::milliseconds(2500));
  EXPECT_EQ(o.scaled().max, std::chrono::milliseconds(15000));
  EXPECT_EQ(o.scaled().timeout, o.timeout);
  ::setenv("CLOUD_HELPER_POLL_SCALE", "nonsense", 1);
  EXPECT_EQ(o.scaled().initial, o.initial);
  if (old) ::setenv("CLOUD_HELPER_POLL_SCALE", saved.c_str(), 1);
  else ::unsetenv("CLOUD_HELPER_POLL_SCALE");
}

}  // namespace
}  // namespace ch
