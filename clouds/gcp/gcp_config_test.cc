#include "clouds/gcp/gcp_config.h"

#include <gtest/gtest.h>

#include "clouds/gcp/compute.h"
#include "clouds/gcp/gcs.h"
#include "clouds/signing/digest.h"
#include "tests/test_util.h"

namespace ch {
namespace {

ImageMetadata yaml(const std::string& text) {
  auto m = ImageMetadata::parse(text, "/tmp/x/image.yaml");
  EXPECT_TRUE(m.ok()) << m.message();
  return std::move(m).value();
}

TEST(GcpImageName, MadeValidAndStable) {
  EXPECT_EQ(gcp_image_name("alpine-3.21.0-x86_64-uefi-tiny-r0"), "alpine-3-21-0-x86-64-uefi-tiny-r0");
  EXPECT_EQ(gcp_image_name("Alpine_Linux  3.21"), "alpine-linux-3-21");
  EXPECT_EQ(gcp_image_name("3.21-alpine-"), "image-3-21-alpine");
  EXPECT_EQ(gcp_image_name("--"), "image");
  std::string long_a(80, 'a'), long_b = long_a;
  long_b.back() = 'b';
  std::string a = gcp_image_name(long_a), b = gcp_image_name(long_b);
  EXPECT_EQ(a.size(), 63u);
  EXPECT_NE(a, b) << "the hash suffix keeps long names apart";
  EXPECT_EQ(a, gcp_image_name(long_a)) << "stable";
  EXPECT_EQ(a.substr(0, 54), std::string(54, 'a'));
  EXPECT_EQ(a[54], '-');
}

TEST(GcpLabels, LowercaseAndUnderscores) {
  EXPECT_EQ(gcp_label_text("Project", true), "project");
  EXPECT_EQ(gcp_label_text("3.21 LTS", false), "3_21_lts");
  EXPECT_EQ(gcp_label_text("9lives", true), "k9lives");
}

TEST(GcpConfig, DefaultsFollowArchAndFirmware) {
  auto c = read_gcp_config(yaml("name: a\narch: aarch64\nfirmware: uefi\n"), "p-123456");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->architecture, "ARM64");
  EXPECT_EQ(c->project, "p-123456");
  EXPECT_EQ(c->guest_os_features, (std::vector<std::string>{"VIRTIO_SCSI_MULTIQUEUE", "GVNIC", "UEFI_COMPATIBLE"}));
  auto bios = read_gcp_config(yaml("name: a\narch: x86_64\nfirmware: bios\n"), "");
  ASSERT_TRUE(bios.ok());
  EXPECT_EQ(bios->guest_os_features, (std::vector<std::string>{"VIRTIO_SCSI_MULTIQUEUE", "GVNIC"}));
  auto over = read_gcp_config(yaml("name: a\ngcp: {guest_os_features: [GVNIC, IDPF]}\n"), "");
  ASSERT_TRUE(over.ok());
  EXPECT_EQ(over->guest_os_features, (std::vector<std::string>{"GVNIC", "IDPF"}));
  EXPECT_EQ(read_gcp_config(yaml("name: a\narch: aarch64\nfirmware: bios\n"), "").message(),
            "firmware bios: Compute Engine boots ARM64 with UEFI only");
}

TEST(GcpConfig, BadInputNamesTheKey) {
  EXPECT_EQ(read_gcp_config(yaml("name: a\ngcp: {upload_chunk_size: 1000}\n"), "").message(),
            "gcp.upload_chunk_size '1000' is not a positive multiple of 262144 (256 KiB)");
  EXPECT_EQ(read_gcp_config(yaml("name: a\ngcp: {projekt: x}\n"), "").message(), "gcp.projekt: unknown key");
  EXPECT_EQ(read_gcp_config(yaml("name: a\nend_of_life: soon\n"), "").message(),
            "end_of_life 'soon' is not a date (YYYY-MM-DD) or an RFC 3339 time");
  EXPECT_EQ(read_gcp_config(yaml("name: a\ngcp: {image_users: [bob]}\n"), "").message(),
            "gcp.image_users: 'bob' is not an IAM member (user:, group:, serviceAccount:, domain:)");
  EXPECT_EQ(read_gcp_config(yaml("name: a\ngcp: {image_name: Bad_Name}\n"), "").message(),
            "gcp.image_name 'Bad_Name' is not a valid image name (try 'bad-name')");
}

TEST(GcpConfig, ImageBody) {
  auto c = read_gcp_config(yaml("name: Alpine 3.21\ndescription: d\ntags: {A: B}\n"
                                "end_of_life: 2027-05-01\ngcp: {family: alpine, storage_locations: [eu]}\n"), "");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->deprecated_on, "2027-05-01T23:59:00Z");
  auto body = gcp_image_body(*c, "https://storage.googleapis.com/b/o.tar.gz");
  EXPECT_EQ(body["name"], "alpine-3-21");
  EXPECT_EQ(body["rawDisk"]["source"], "https://storage.googleapis.com/b/o.tar.gz");
  EXPECT_EQ(body["labels"]["a"], "b");
  EXPECT_EQ(body["storageLocations"][0], "eu");
  EXPECT_EQ(body["guestOsFeatures"][0]["type"], "VIRTIO_SCSI_MULTIQUEUE");
  EXPECT_FALSE(body.contains("shieldedInstanceInitialState"));
}

TEST(GcpConfig, ShieldedKeysFromPemAndDerFiles) {
  test::TempDir dir;
  auto made = test::run_command(
      "cd " + test::shell_quote(dir.path()) +
      " && openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out pk.pem -days 1 -subj /CN=PK 2>/dev/null"
      " && openssl x509 -in pk.pem -outform DER -out db.der && printf 'hash-list' > dbx.bin");
  ASSERT_EQ(made.exit_code, 0);
  auto m = ImageMetadata::parse("name: a\ngcp:\n  shielded_instance_initial_state:\n    pk: pk.pem\n"
                                "    dbs: [db.der]\n    dbxs: [dbx.bin]\n", dir.file("image.yaml"));
  ASSERT_TRUE(m.ok());
  auto c = read_gcp_config(*m, "");
  ASSERT_TRUE(c.ok()) << c.message();
  std::string der = test::run_command("base64 -w0 " + test::shell_quote(dir.file("db.der"))).output;
  EXPECT_EQ(c->shielded["pk"]["fileType"], "X509");
  EXPECT_EQ(c->shielded["pk"]["content"], der) << "a PEM certificate goes as its DER";
  EXPECT_EQ(c->shielded["dbs"][0]["fileType"], "X509");
  EXPECT_EQ(c->shielded["dbs"][0]["content"], der);
  EXPECT_EQ(c->shielded["dbxs"][0]["fileType"], "BIN");
  EXPECT_EQ(c->shielded["dbxs"][0]["content"], base64_encode(bytes_of("hash-list")));
  auto missing = ImageMetadata::parse("name: a\ngcp: {shielded_instance_initial_state: {pk: nope.pem}}\n",
                                      dir.file("image.yaml"));
  EXPECT_EQ(read_gcp_config(*missing, "").message(),
            "gcp.shielded_instance_initial_state.pk: cannot read " + dir.file("nope.pem"));
}

TEST(GcsDigest, Crc32cKnownAnswers) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the CRC-32C check value
  EXPECT_EQ(crc32c_base64(crc32c("")), "AAAAAA==");
  EXPECT_EQ(crc32c("56789", crc32c("1234")), 0xE3069283u) << "continues";
  // GCS's documented example: "hello world" -> crc32c yZRlqg==
  EXPECT_EQ(crc32c_base64(crc32c("hello world")), "yZRlqg==");
}

TEST(GcsUrl, Parse) {
  auto r = parse_gs_url("gs://my-bucket/images/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bucket, "my-bucket");
  EXPECT_EQ(r->name, "images/");
  EXPECT_EQ(parse_gs_url("s3://b/").message(), "storage_url 's3://b/' is not a gs://bucket/prefix/ URL");
  EXPECT_FALSE(parse_gs_url("gs://Bad/").ok());
}

TEST(ComputeRequestId, IsAStableUuid) {
  std::string a = request_id_for("x");
  EXPECT_EQ(a, request_id_for("x"));
  EXPECT_NE(a, request_id_for("y"));
  ASSERT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '5');
  EXPECT_NE(std::string("89ab").find(a[19]), std::string::npos);
}

TEST(ComputeRequestId, ANewCallGetsANewOne) {
  // Within one second too: a re-run after a failed insert must not be
  // answered with the failed operation.
  std::string a = new_request_id("images.insert x");
  EXPECT_NE(a, new_request_id("images.insert x"));
  EXPECT_EQ(a.size(), 36u);
}

}  // namespace
}  // namespace ch
