#include "clouds/oci/oci_config.h"

#include <fstream>

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace ch {
namespace {

TEST(OciConfig, ProfilesFallBackToDefaultAndVariablesOverride) {
  test::TempDir dir;
  std::ofstream(dir.file("config")) << "# comment\n[DEFAULT]\nuser = ocid1.user.oc1..u\nfingerprint=aa:bb\n"
                                       "key_file=~/.oci/key.pem\ntenancy=ocid1.tenancy.oc1..t\nregion=us-ashburn-1\n\n"
                                       "[OTHER]\nregion=eu-frankfurt-1\npass_phrase=pw\n";
  OciEnv env = {{"OCI_CLI_CONFIG_FILE", dir.file("config")}, {"HOME", "/home/me"}};
  auto c = load_oci_credentials(env);
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->key_id(), "ocid1.tenancy.oc1..t/ocid1.user.oc1..u/aa:bb");
  EXPECT_EQ(c->key_file, "/home/me/.oci/key.pem");
  EXPECT_EQ(c->region, "us-ashburn-1");
  EXPECT_EQ(c->source, "config file " + dir.file("config") + ", profile DEFAULT");

  env["OCI_CLI_PROFILE"] = "OTHER";
  env["OCI_CLI_FINGERPRINT"] = "cc:dd";
  c = load_oci_credentials(env);
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->region, "eu-frankfurt-1");
  EXPECT_EQ(c->pass_phrase, "pw");
  EXPECT_EQ(c->fingerprint, "cc:dd");
  EXPECT_EQ(c->user, "ocid1.user.oc1..u");
  EXPECT_NE(c->source.find("and OCI_CLI_* variables"), std::string::npos);

  env["OCI_CLI_PROFILE"] = "NOPE";
  EXPECT_EQ(load_oci_credentials(env).message(), "OCI config file " + dir.file("config") + " has no profile [NOPE]");
}

TEST(OciConfig, VariablesAloneAndMissingKeys) {
  OciEnv env = {{"HOME", "/nonexistent"}, {"OCI_CLI_USER", "u"}, {"OCI_CLI_TENANCY", "t"},
                {"OCI_CLI_FINGERPRINT", "f"}, {"OCI_CLI_KEY_FILE", "/k.pem"}, {"OCI_CLI_REGION", "r"}};
  auto c = load_oci_credentials(env);
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->source, "OCI_CLI_* variables");
  env.erase("OCI_CLI_KEY_FILE");
  EXPECT_NE(load_oci_credentials(env).message().find("cannot read the OCI config file /nonexistent/.oci/config"),
            std::string::npos);
}

TEST(OciConfig, EndpointsAndStorageUrls) {
  OciEndpoints e = oci_endpoints("eu-frankfurt-1", {});
  EXPECT_EQ(e.objectstorage, "https://objectstorage.eu-frankfurt-1.oraclecloud.com");
  EXPECT_EQ(e.iaas, "https://iaas.eu-frankfurt-1.oraclecloud.com");
  e = oci_endpoints("x", {{"OCI_IAAS_ENDPOINT", "http://127.0.0.1:1/"}, {"OCI_OBJECTSTORAGE_ENDPOINT", "http://h"}});
  EXPECT_EQ(e.iaas, "http://127.0.0.1:1");
  EXPECT_EQ(e.objectstorage, "http://h");
  EXPECT_TRUE(e.iaas_single && e.objectstorage_single);
  // Per region: a {region} placeholder, and OCI_*_ENDPOINT_<REGION> before it.
  OciEnv env = {{"OCI_IAAS_ENDPOINT", "http://127.0.0.1:1/{region}/"},
                {"OCI_OBJECTSTORAGE_ENDPOINT", "http://127.0.0.1:1/{region}"},
                {"OCI_IAAS_ENDPOINT_EU_FRANKFURT_1", "http://fra:2"}};
  e = oci_endpoints("eu-frankfurt-1", env);
  EXPECT_EQ(e.iaas, "http://fra:2");
  EXPECT_EQ(e.objectstorage, "http://127.0.0.1:1/eu-frankfurt-1");
  EXPECT_FALSE(e.iaas_single || e.objectstorage_single);
  e = oci_endpoints("uk-london-1", env);
  EXPECT_EQ(e.iaas, "http://127.0.0.1:1/uk-london-1");
  EXPECT_FALSE(e.iaas_single || e.objectstorage_single);
  for (const char* r : {"us-ashburn-1", "eu-frankfurt-1", "us-gov-ashburn-1", "ap-chuncheon-1", "sa-saopaulo-1"})
    EXPECT_TRUE(oci_region_id_valid(r)) << r;
  for (const char* r : {"", "mars-base-1", "eu-frankfurt", "EU-FRANKFURT-1", "eu_frankfurt_1", "eu-frankfurt-1/x", "iad"})
    EXPECT_FALSE(oci_region_id_valid(r)) << r;

  auto u = parse_oci_storage_url("oci://images@ns1/alpine/3.21");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->bucket, "images");
  EXPECT_EQ(u->namespace_name, "ns1");
  EXPECT_EQ(u->prefix, "alpine/3.21/");
  u = parse_oci_storage_url("oci://images");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->namespace_name, "");
  EXPECT_EQ(u->prefix, "");
  EXPECT_FALSE(parse_oci_storage_url("oci://bad bucket/").ok());
  EXPECT_FALSE(parse_oci_storage_url("s3://b/").ok());
}

TEST(OciConfig, YamlMapping) {
  auto m = ImageMetadata::parse("name: img\nfirmware: bios\nregions: [us-phoenix-1, us-ashburn-1]\n"
                                "tags: {project: x}\noci:\n  compartment_id: ocid1.compartment.oc1..c\n"
                                "  launch_mode: native\n  shapes: [VM.Standard.E4.Flex]\n  part_size_mib: 16\n",
                                "i.yaml");
  ASSERT_TRUE(m.ok());
  auto c = read_oci_config(*m);
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->home_region, "us-phoenix-1");
  EXPECT_EQ(c->other_regions, std::vector<std::string>{"us-ashburn-1"});
  EXPECT_EQ(c->firmware, "BIOS");
  EXPECT_EQ(c->launch_mode, "NATIVE");
  EXPECT_EQ(c->part_size, 16u << 20);
  EXPECT_EQ(c->tags.at("project"), "x");

  auto bad = ImageMetadata::parse("name: img\nfirmware: bios\noci:\n  secure_boot: true\n", "i.yaml");
  EXPECT_EQ(read_oci_config(*bad).message(), "oci.secure_boot needs firmware: uefi");
  bad = ImageMetadata::parse("name: img\noci:\n  compartment_id: c1\n", "i.yaml");
  EXPECT_NE(read_oci_config(*bad).message().find("is not an OCID"), std::string::npos);
  bad = ImageMetadata::parse("name: img\noci:\n  part_size_mib: 0\n", "i.yaml");
  EXPECT_NE(read_oci_config(*bad).message().find("part_size_mib must be"), std::string::npos);
}

}  // namespace
}  // namespace ch
