#include "clouds/azure/azure_config.h"

#include <gtest/gtest.h>

#include "clouds/azure/azure_gallery.h"

namespace ch {
namespace {

ImageMetadata yaml(const std::string& text) {
  auto m = ImageMetadata::parse(text, "/tmp/x.yaml");
  EXPECT_TRUE(m.ok()) << m.message();
  return std::move(m).value();
}

const char kBase[] =
    "name: alpine-3.21.0-x86_64-r1\n"
    "arch: x86_64\n"
    "firmware: uefi\n"
    "release: 3.21.0-r1\n"
    "regions: [westeurope, eastus]\n"
    "azure:\n"
    "  resource_group: images\n"
    "  gallery: alpine_images\n"
    "  image_definition: alpine-3.21\n"
    "  publisher: alpinelinux\n"
    "  offer: alpine\n"
    "  sku: '3.21'\n";

TEST(AzureGalleryVersion, DerivedFromReleases) {
  EXPECT_EQ(*azure_gallery_version("3.21.0"), "3.21.0");
  EXPECT_EQ(*azure_gallery_version("3.21.0-r1"), "3.21.1");
  EXPECT_EQ(*azure_gallery_version("3.21.2-r3"), "3.21.203");
  EXPECT_EQ(*azure_gallery_version("1592.4"), "1592.4.0");
  EXPECT_EQ(*azure_gallery_version("1592.4-r2"), "1592.4.2");
  EXPECT_EQ(*azure_gallery_version("1592"), "1592.0.0");
  EXPECT_EQ(*azure_gallery_version("9.6-20250522.1"), "9.6.2025052201");
  EXPECT_EQ(*azure_gallery_version("9.6.20250522.1"), "9.6.2025052201");
  EXPECT_EQ(*azure_gallery_version("10-20250522.0"), "10.20250522.0");
  for (const char* bad : {"", "edge", "3.21.0-r100", "3.21.0-rc1", "1.2.3.4", "9.6-20250522.100", "99999999999.1.1"}) {
    auto v = azure_gallery_version(bad);
    EXPECT_FALSE(v.ok()) << bad << " gave " << (v.ok() ? *v : "");
    if (!v.ok()) {
      EXPECT_NE(v.message().find("azure.image_version"), std::string::npos);
    }
  }
  EXPECT_TRUE(is_azure_gallery_version("0.0.2147483647"));
  EXPECT_FALSE(is_azure_gallery_version("0.0.2147483648"));
  EXPECT_FALSE(is_azure_gallery_version("1.2"));
  EXPECT_FALSE(is_azure_gallery_version("1.2.-3"));
}

TEST(AzureConfig, ReadsTheMappingAndDefaults) {
  auto c = read_azure_config(yaml(kBase), "sub-from-env");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->subscription_id, "sub-from-env");
  EXPECT_EQ(c->location, "westeurope");
  EXPECT_EQ(c->regions, (std::vector<std::string>{"westeurope", "eastus"}));
  EXPECT_EQ(c->version, "3.21.1");
  EXPECT_EQ(c->architecture, "x64");
  ASSERT_EQ(c->definitions.size(), 1u);
  EXPECT_EQ(c->definitions[0].generation, "V2");
  EXPECT_FALSE(c->create_gallery);
  EXPECT_EQ(c->storage_resource_group, "images");
}

TEST(AzureConfig, BiosOnX86GetsGen1AndGen2ArmOnlyGen2) {
  std::string bios = kBase;
  bios.replace(bios.find("firmware: uefi"), 14, "firmware: bios");
  auto c = read_azure_config(yaml(bios), "s");
  ASSERT_TRUE(c.ok()) << c.message();
  ASSERT_EQ(c->definitions.size(), 2u);
  EXPECT_EQ(c->definitions[0].name, "alpine-3.21");
  EXPECT_EQ(c->definitions[0].generation, "V2");
  EXPECT_EQ(c->definitions[1].name, "alpine-3.21-gen1");
  EXPECT_EQ(c->definitions[1].generation, "V1");
  EXPECT_EQ(c->definitions[1].sku, "3.21-gen1");

  std::string arm = bios;
  arm.replace(arm.find("arch: x86_64"), 12, "arch: aarch64");
  auto a = read_azure_config(yaml(arm), "s");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.message().find("arm64"), std::string::npos);
  std::string arm_uefi = kBase;
  arm_uefi.replace(arm_uefi.find("arch: x86_64"), 12, "arch: aarch64");
  auto u = read_azure_config(yaml(arm_uefi), "s");
  ASSERT_TRUE(u.ok()) << u.message();
  EXPECT_EQ(u->architecture, "Arm64");
  ASSERT_EQ(u->definitions.size(), 1u);
  EXPECT_EQ(u->definitions[0].generation, "V2");
}

TEST(AzureConfig, BadInputIsOneLine) {
  struct Case {
    std::string from, to, want;
  } cases[] = {
      {"  gallery: alpine_images\n", "", "azure.gallery is missing"},
      {"release: 3.21.0-r1\n", "release: edge\n", "azure.image_version"},
      {"arch: x86_64", "arch: ppc64le", "not supported on Azure"},
      {"  gallery: alpine_images", "  gallery: alpine-images", "not a valid gallery name"},
      {"regions: [westeurope, eastus]", "regions: [all, eastus]", "'all' cannot be combined"},
      {"  sku: '3.21'\n", "  sku: '3.21'\n  create: [everything]\n", "azure.create"},
      {"  sku: '3.21'\n", "  sku: '3.21'\n  source: snapshot\n", "azure.source"},
  };
  for (const Case& k : cases) {
    std::string text = kBase;
    text.replace(text.find(k.from), k.from.size(), k.to);
    auto c = read_azure_config(yaml(text), "s");
    ASSERT_FALSE(c.ok()) << k.to;
    EXPECT_NE(c.message().find(k.want), std::string::npos) << c.message();
    EXPECT_EQ(c.message().find('\n'), std::string::npos);
  }
  auto none = read_azure_config(yaml(kBase), "");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.message().find("AZURE_SUBSCRIPTION_ID"), std::string::npos);
}

TEST(AzureGallery, DefinitionBodyAndMismatch) {
  std::string bios = kBase;
  bios.replace(bios.find("firmware: uefi"), 14, "firmware: bios");
  auto c = read_azure_config(yaml(bios), "s");
  ASSERT_TRUE(c.ok());
  auto gen2 = definition_body(*c, c->definitions[0]);
  auto gen1 = definition_body(*c, c->definitions[1]);
  EXPECT_EQ(gen2["properties"]["hyperVGeneration"], "V2");
  EXPECT_EQ(gen2["properties"]["features"][0]["value"], "SCSI, NVMe");
  EXPECT_EQ(gen1["properties"]["features"][0]["value"], "SCSI");  // NVMe needs Gen2
  EXPECT_EQ(gen1["properties"]["identifier"]["sku"], "3.21-gen1");
  EXPECT_EQ(definition_mismatch(gen2, gen2), "");
  EXPECT_NE(definition_mismatch(gen1, gen2).find("hyperVGeneration V1 (needs V2)"), std::string::npos);
  nlohmann::json no_arch = gen2;
  no_arch["properties"].erase("architecture");  // Azure's default is x64
  EXPECT_EQ(definition_mismatch(no_arch, gen2), "");
}

}  // namespace
}  // namespace ch
