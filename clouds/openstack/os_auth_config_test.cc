#include "clouds/openstack/os_auth_config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "clouds/openstack/glance.h"
#include "clouds/openstack/keystone.h"
#include "tests/test_util.h"

namespace ch {
namespace {

using Env = std::map<std::string, std::string>;

constexpr char kClouds[] = R"(clouds:
  prod:
    auth:
      auth_url: https://keystone.example.org:5000
      username: builder
      project_name: images
      domain_name: Users
    region_name: RegionOne
    interface: internal
    identity_api_version: 3
  appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://keystone.example.org/v3
      application_credential_name: uploader
      username: builder
      user_domain_name: Default
      application_credential_secret: from-clouds
    regions: [RegionOne, {name: RegionTwo, values: {}}]
  legacy:
    identity_api_version: 2
    auth: {auth_url: https://k, username: u, password: p, project_name: x}
)";

constexpr char kSecure[] = R"(clouds:
  prod:
    auth:
      password: s3cret
)";

TEST(OpenStackAuthConfig, CloudsYamlWithSecureYamlMerged) {
  auto c = openstack_auth_from_clouds_yaml(kClouds, "/x/clouds.yaml", kSecure, "/x/secure.yaml", "prod");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->auth_url, "https://keystone.example.org:5000");
  EXPECT_EQ(c->auth_type, "password");
  EXPECT_EQ(c->username, "builder");
  EXPECT_EQ(c->password, "s3cret");
  EXPECT_EQ(c->project_name, "images");
  // domain_name fills both domains.
  EXPECT_EQ(c->user_domain_name, "Users");
  EXPECT_EQ(c->project_domain_name, "Users");
  EXPECT_EQ(c->regions, std::vector<std::string>{"RegionOne"});
  EXPECT_EQ(c->interface, "internal");
  EXPECT_EQ(c->source, "clouds.yaml cloud prod (/x/clouds.yaml)");
}

TEST(OpenStackAuthConfig, ApplicationCredentialByNameAndRegionList) {
  auto c = openstack_auth_from_clouds_yaml(kClouds, "/x/clouds.yaml", "", "", "appcred");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->auth_type, "v3applicationcredential");
  EXPECT_EQ(c->app_cred_name, "uploader");
  EXPECT_EQ(c->app_cred_secret, "from-clouds");
  EXPECT_EQ(c->regions, (std::vector<std::string>{"RegionOne", "RegionTwo"}));
  nlohmann::json body = keystone_auth_body(*c);
  EXPECT_EQ(body["auth"]["identity"]["methods"][0], "application_credential");
  EXPECT_EQ(body["auth"]["identity"]["application_credential"]["name"], "uploader");
  EXPECT_EQ(body["auth"]["identity"]["application_credential"]["user"]["name"], "builder");
  EXPECT_EQ(body["auth"]["identity"]["application_credential"]["user"]["domain"]["name"], "Default");
  EXPECT_FALSE(body["auth"].contains("scope")) << "an application credential carries its scope";
}

TEST(OpenStackAuthConfig, Errors) {
  auto missing = openstack_auth_from_clouds_yaml(kClouds, "/x/clouds.yaml", "", "", "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.message(), "OS_CLOUD=nope: no cloud 'nope' in /x/clouds.yaml (clouds: prod, appcred, legacy)");
  auto v2 = openstack_auth_from_clouds_yaml(kClouds, "/x/clouds.yaml", "", "", "legacy");
  ASSERT_FALSE(v2.ok());
  EXPECT_NE(v2.message().find("identity_api_version 2 is not supported (Keystone v3 only)"), std::string::npos);
  auto no_password = openstack_auth_from_clouds_yaml(kClouds, "/x/clouds.yaml", "", "", "prod");
  ASSERT_FALSE(no_password.ok());
  EXPECT_EQ(no_password.message(), "clouds.yaml cloud prod (/x/clouds.yaml): auth.password is not set");
  auto bad = openstack_auth_from_clouds_yaml("clouds: [\n", "/x/clouds.yaml", "", "", "prod");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("/x/clouds.yaml: invalid YAML"), std::string::npos) << bad.message();
}

TEST(OpenStackAuthConfig, EnvironmentVariables) {
  Env env = {{"OS_AUTH_URL", "http://k:5000/v3"}, {"OS_USERNAME", "u"},        {"OS_PASSWORD", "p"},
             {"OS_PROJECT_ID", "abc"},            {"OS_REGION_NAME", "R2"},     {"OS_INTERFACE", "internalURL"},
             {"OS_USER_DOMAIN_NAME", "D"}};
  auto c = resolve_openstack_auth(env, "/nonexistent");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->source, "OS_* variables");
  EXPECT_EQ(c->interface, "internal");
  EXPECT_EQ(c->regions, std::vector<std::string>{"R2"});
  nlohmann::json body = keystone_auth_body(*c);
  EXPECT_EQ(body["auth"]["identity"]["password"]["user"]["domain"]["name"], "D");
  EXPECT_EQ(body["auth"]["scope"]["project"]["id"], "abc");

  auto none = resolve_openstack_auth({}, "/nonexistent");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.message().find("OS_AUTH_URL is not set"), std::string::npos);
  Env no_pw = {{"OS_AUTH_URL", "http://k/v3"}, {"OS_USERNAME", "u"}, {"OS_PROJECT_NAME", "p"}};
  EXPECT_EQ(resolve_openstack_auth(no_pw, "/nonexistent").message(), "OS_* variables: OS_PASSWORD is not set");
  Env ac = {{"OS_AUTH_URL", "http://k/v3"}, {"OS_APPLICATION_CREDENTIAL_ID", "id1"},
            {"OS_APPLICATION_CREDENTIAL_SECRET", "s"}};
  auto a = resolve_openstack_auth(ac, "/nonexistent");
  ASSERT_TRUE(a.ok()) << a.message();
  EXPECT_EQ(a->auth_type, "v3applicationcredential");
  EXPECT_EQ(keystone_auth_body(*a)["auth"]["identity"]["application_credential"]["id"], "id1");
}

TEST(OpenStackAuthConfig, FindsCloudsYamlInTheSearchOrder) {
  test::TempDir dir;
  std::string home = dir.file("home");
  ASSERT_EQ(test::run_command("mkdir -p " + home + "/.config/openstack " + dir.file("cwd")).exit_code, 0);
  std::ofstream(home + "/.config/openstack/clouds.yaml") << kClouds;
  std::ofstream(home + "/.config/openstack/secure.yaml") << kSecure;
  Env env = {{"HOME", home}, {"OS_CLOUD", "prod"}};
  auto c = resolve_openstack_auth(env, dir.file("cwd"));
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->password, "s3cret");
  EXPECT_EQ(c->source, "clouds.yaml cloud prod (" + home + "/.config/openstack/clouds.yaml)");
  // ./clouds.yaml comes first.
  std::ofstream(dir.file("cwd/clouds.yaml")) << "clouds:\n  prod:\n    auth: {auth_url: 'http://local/v3', username: l, "
                                                "password: lp, project_name: lp}\n";
  auto local = resolve_openstack_auth(env, dir.file("cwd"));
  ASSERT_TRUE(local.ok()) << local.message();
  EXPECT_EQ(local->auth_url, "http://local/v3");
  EXPECT_EQ(local->password, "s3cret") << "secure.yaml from ~/.config still merges over it";
  EXPECT_EQ(clouds_yaml_paths({{"HOME", "/h"}, {"OS_CLIENT_CONFIG_FILE", "/c.yaml"}}, "/w", "clouds.yaml"),
            (std::vector<std::string>{"/c.yaml", "/w/clouds.yaml", "/h/.config/openstack/clouds.yaml",
                                      "/etc/openstack/clouds.yaml"}));
}

TEST(OpenStackKeystone, UrlsAndCatalog) {
  EXPECT_EQ(keystone_tokens_url("http://k:5000"), "http://k:5000/v3/auth/tokens");
  EXPECT_EQ(keystone_tokens_url("http://k:5000/v3/"), "http://k:5000/v3/auth/tokens");
  EXPECT_EQ(keystone_tokens_url("https://cloud/identity"), "https://cloud/identity/v3/auth/tokens");
  EXPECT_EQ(glance_v2_base("http://g:9292"), "http://g:9292/v2");
  EXPECT_EQ(glance_v2_base("http://g:9292/v2/"), "http://g:9292/v2");
  EXPECT_EQ(glance_v2_base("https://cloud/image/v2.0"), "https://cloud/image/v2");
  nlohmann::json catalog = nlohmann::json::parse(R"([
    {"type": "identity", "endpoints": [{"interface": "public", "region_id": "R1", "url": "http://k"}]},
    {"type": "image", "endpoints": [
      {"interface": "public", "region_id": "R1", "url": "http://g1"},
      {"interface": "internal", "region_id": "R1", "url": "http://g1-int"},
      {"interface": "public", "region": "R2", "url": "http://g2"}]}])");
  EXPECT_EQ(catalog_endpoint(catalog, "image", "R1", "public"), "http://g1");
  EXPECT_EQ(catalog_endpoint(catalog, "image", "R1", "internal"), "http://g1-int");
  EXPECT_EQ(catalog_endpoint(catalog, "image", "R2", "public"), "http://g2");
  EXPECT_EQ(catalog_endpoint(catalog, "image", "R3", "public"), "");
  EXPECT_EQ(catalog_regions(catalog, "image", "public"), (std::vector<std::string>{"R1", "R2"}));
}

TEST(OpenStackKeystone, ErrorLines) {
  HttpResponse r;
  r.status = 409;
  r.request_id = "req-1";
  r.body = R"({"message": "Image ID x already exists!<br /><br />\n\n\n", "code": "409 Conflict", "title": "Conflict"})";
  Error e = openstack_error("Glance POST http://g/v2/images (R1)", r);
  EXPECT_EQ(e.message, "Glance POST http://g/v2/images (R1): HTTP 409 Conflict: Image ID x already exists! (request id req-1)");
  EXPECT_EQ(e.http_status, 409);
  r.status = 401;
  r.body = R"({"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}})";
  EXPECT_EQ(openstack_error("Keystone POST u", r).message,
            "Keystone POST u: HTTP 401 Unauthorized: The request you have made requires authentication. (request id req-1)");
  // Glance's quota refusal (text/plain): its boilerplate dropped, the limit kept.
  r.status = 413;
  r.body = "413 Request Entity Too Large\n\nThe request returned a 413 Request Entity Too Large. This generally means "
           "that rate limiting or a quota threshold was breached.\n\nThe response body:\nProject "
           "e3df47c470d84ff1bedd069002b1a094 is over a limit for [Resource image_count_total is over limit of 0 due to "
           "current usage 0 and delta 1]\n\n   ";
  EXPECT_EQ(openstack_error("Glance POST u", r).message,
            "Glance POST u: HTTP 413 Request Entity Too Large: Project e3df47c470d84ff1bedd069002b1a094 is over a limit "
            "for [Resource image_count_total is over limit of 0 due to current usage 0 and delta 1] (request id req-1)");
  EXPECT_EQ(glance_limit_text("Image too big"), "Image too big");
}

}  // namespace
}  // namespace ch
