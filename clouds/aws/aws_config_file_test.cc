#include "clouds/aws/aws_config_file.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/test_util.h"

namespace ch {
namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(AwsConfigFileTest, ParsesSectionsCommentsAndWhitespace) {
  auto r = parse_aws_ini(
      "\xEF\xBB\xBF# leading comment\n"
      "; another\n"
      "[default]\n"
      "aws_access_key_id=AKIDDEFAULT\n"
      "  \n"
      "Aws_Secret_Access_Key = with spaces and # hash  \r\n"
      "[ ci ]   # trailing comment\n"
      "region: eu-west-2\n"
      "endpoint_url = http://127.0.0.1:5000\n"
      "s3 =\n"
      "  max_concurrent_requests = 20\n"
      "  addressing_style=path\n"
      "output = json\n"
      "[default]\n"
      "region = us-east-1\n",
      "cfg");
  ASSERT_TRUE(r.ok()) << r.message();
  const AwsIniSections& s = *r;
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s.at("default").at("aws_access_key_id"), "AKIDDEFAULT");
  EXPECT_EQ(s.at("default").at("aws_secret_access_key"), "with spaces and # hash");
  EXPECT_EQ(s.at("default").at("region"), "us-east-1");  // repeated section merges
  EXPECT_EQ(s.at("ci").at("region"), "eu-west-2");
  EXPECT_EQ(s.at("ci").at("endpoint_url"), "http://127.0.0.1:5000");
  EXPECT_EQ(s.at("ci").at("s3.max_concurrent_requests"), "20");
  EXPECT_EQ(s.at("ci").at("s3.addressing_style"), "path");
  EXPECT_EQ(s.at("ci").at("output"), "json");
}

TEST(AwsConfigFileTest, ErrorsNameFileAndLineNotText) {
  struct Case {
    std::string text, message;
  } cases[] = {
      {"aws_secret_access_key = SECRET\n", "f:1: setting outside a [section]"},
      {"[a]\nSECRETLINE\n", "f:2: expected 'key = value'"},
      {"[a\n", "f:1: section header without ']'"},
      {"[]\n", "f:1: empty section name"},
      {"[a] x\n", "f:1: text after the section header"},
      {"[a]\n= v\n", "f:2: empty key"},
      {"[a]\nk = v\n  sub = 1\n", "f:3: unexpected indented line"},
  };
  for (const Case& c : cases) {
    auto r = parse_aws_ini(c.text, "f");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.message(), c.message);
  }
}

TEST(AwsConfigFileTest, ProfilesFromBothFiles) {
  test::TempDir home;
  ASSERT_EQ(test::run_command("mkdir -p " + home.path() + "/.aws").exit_code, 0);
  write_file(home.path() + "/.aws/credentials",
             "[default]\naws_access_key_id = A1\naws_secret_access_key = S1\n"
             "[ci]\naws_access_key_id = A2\naws_secret_access_key = S2\n"
             "[profile odd]\nregion = x\n");
  write_file(home.path() + "/.aws/config",
             "[default]\nregion = eu-west-2\n"
             "[profile ci]\nregion = us-west-2\naws_access_key_id = FROMCONFIG\n"
             "[profile onlyconfig]\naws_access_key_id = A3\naws_secret_access_key = S3\n"
             "[notaprofile]\nregion = nowhere\n"
             "[sso-session s]\nsso_region = us-east-1\n"
             "[profile default]\noutput = text\nregion = overridden-by-plain-default\n");
  AwsEnv env;
  env.home = home.path();
  auto files = AwsConfigFiles::load(env);
  ASSERT_TRUE(files.ok()) << files.message();
  EXPECT_EQ(files->credentials_path, home.path() + "/.aws/credentials");
  EXPECT_EQ(files->config_path, home.path() + "/.aws/config");

  auto def = files->profile("default");
  ASSERT_TRUE(def);
  EXPECT_EQ(def->get("region"), "eu-west-2");
  EXPECT_EQ(def->get("output"), "text");
  EXPECT_EQ(def->get("aws_access_key_id"), "A1");

  auto ci = files->profile("ci");
  ASSERT_TRUE(ci);
  EXPECT_EQ(ci->get("aws_access_key_id"), "A2");  // the credentials file wins
  EXPECT_EQ(ci->file_of.at("aws_access_key_id"), files->credentials_path);
  EXPECT_EQ(ci->get("region"), "us-west-2");
  EXPECT_EQ(ci->file_of.at("region"), files->config_path);

  auto only = files->profile("onlyconfig");
  ASSERT_TRUE(only);
  EXPECT_EQ(only->file_of.at("aws_access_key_id"), files->config_path);

  EXPECT_FALSE(files->profile("notaprofile"));  // bare sections in config are not profiles
  EXPECT_FALSE(files->profile("s"));
  EXPECT_TRUE(files->profile("profile odd"));  // the credentials file has no prefix rule
  EXPECT_FALSE(files->profile("missing"));
}

TEST(AwsConfigFileTest, PathVariablesMissingFilesAndProfileNames) {
  test::TempDir dir;
  write_file(dir / "creds", "[p]\naws_access_key_id = A\n");
  AwsEnv env;
  env.home = dir.path();
  env.vars["AWS_SHARED_CREDENTIALS_FILE"] = "~/creds";
  env.vars["AWS_CONFIG_FILE"] = dir / "does-not-exist";
  auto files = AwsConfigFiles::load(env);
  ASSERT_TRUE(files.ok()) << files.message();
  EXPECT_EQ(files->credentials_path, dir / "creds");
  EXPECT_TRUE(files->profile("p"));
  EXPECT_TRUE(files->config.empty());

  write_file(dir / "bad", "[p]\nnot a setting\n");
  env.vars["AWS_CONFIG_FILE"] = dir / "bad";
  auto bad = AwsConfigFiles::load(env);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(), dir / "bad" + ":2: expected 'key = value'");

  EXPECT_EQ(aws_profile_name(env), "default");
  EXPECT_FALSE(aws_profile_named(env));
  env.vars["AWS_DEFAULT_PROFILE"] = "old";
  EXPECT_EQ(aws_profile_name(env), "old");
  env.vars["AWS_PROFILE"] = "new";
  EXPECT_EQ(aws_profile_name(env), "new");
  EXPECT_TRUE(aws_profile_named(env));
}

}  // namespace
}  // namespace ch
