#include "metadata/image_metadata.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include "metadata/yaml_scalar.h"

namespace ch {
namespace {

class MetaTempDir {
 public:
  MetaTempDir() {
    char tmpl[] = "/tmp/ch_meta_test_XXXXXX";
    CH_CHECK(mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~MetaTempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

ImageMetadata parse_ok(const std::string& text) {
  auto r = ImageMetadata::parse(text, "img.yaml");
  EXPECT_TRUE(r.ok()) << r.message();
  return r.ok() ? std::move(r).value() : ImageMetadata();
}

std::string parse_error(const std::string& text) {
  auto r = ImageMetadata::parse(text, "img.yaml");
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.message();
}

// Removes the metadata_updated line save() adds, for exact comparisons.
std::string without_updated(const std::string& text) {
  return std::regex_replace(text, std::regex("metadata_updated: [^\n]*\n"), "");
}

const char kAlpineFile[] =
    "# written by the orchestrator\n"
    "name: alpine-3.21.0-x86_64-uefi-tiny-r0\n"
    "image_key: 3.21.0-x86_64-uefi-tiny-aws\n"
    "version: '3.21'        # a string, not a float\n"
    "release: \"3.21.0\"\n"
    "cloud: aws\n"
    "arch: x86_64\n"
    "firmware: uefi\n"
    "local_image: work/images/disk.qcow2\n"
    "storage_url: s3://bucket/prefix/\n"
    "regions: [us-east-1, eu-west-2]\n"
    "public: true\n"
    "bootstrap: tiny\n"
    "revision: 0\n"
    "build_id: '0123'\n"
    "answer: 'yes'\n"
    "end_of_life: 2027-05-01\n"
    "description: >\n"
    "  Alpine Linux 3.21.0\n"
    "  tiny image\n"
    "motd: |\n"
    "  Welcome to Alpine!\n"
    "\n"
    "  See the wiki.\n"
    "tags: {project: example, \"3.21\": yes}\n"
    "release_cmd:\n"
    "signing_cmd: ~\n"
    "x_unknown_future_key:\n"
    "  nested:\n"
    "    - a: 1\n"
    "      b: two\n"
    "    - [x, y]\n"
    "    - plain\n"
    "  empty_list: []\n"
    "  empty_map: {}\n"
    "built: 2024-12-04T01:02:03Z\n"
    "image_size: 123456789\n";

const char kAlpineOut[] =
    "name: alpine-3.21.0-x86_64-uefi-tiny-r0\n"
    "image_key: 3.21.0-x86_64-uefi-tiny-aws\n"
    "version: '3.21'\n"
    "release: '3.21.0'\n"
    "cloud: aws\n"
    "arch: x86_64\n"
    "firmware: uefi\n"
    "local_image: work/images/disk.qcow2\n"
    "storage_url: s3://bucket/prefix/\n"
    "regions:\n"
    "  - us-east-1\n"
    "  - eu-west-2\n"
    "public: true\n"
    "bootstrap: tiny\n"
    "revision: 0\n"
    "build_id: '0123'\n"
    "answer: 'yes'\n"
    "end_of_life: 2027-05-01\n"
    "description: |\n"
    "  Alpine Linux 3.21.0 tiny image\n"
    "motd: |\n"
    "  Welcome to Alpine!\n"
    "\n"
    "  See the wiki.\n"
    "tags:\n"
    "  project: example\n"
    "  '3.21': yes\n"
    "release_cmd:\n"
    "signing_cmd: ~\n"
    "x_unknown_future_key:\n"
    "  nested:\n"
    "    - a: 1\n"
    "      b: two\n"
    "    - - x\n"
    "      - y\n"
    "    - plain\n"
    "  empty_list: []\n"
    "  empty_map: {}\n"
    "built: 2024-12-04T01:02:03Z\n"
    "image_size: 123456789\n";

TEST(MetadataRoundTrip, AlpineFileKeepsOrderUnknownKeysAndQuoting) {
  ImageMetadata m = parse_ok(kAlpineFile);
  EXPECT_EQ(m.to_yaml(), kAlpineOut);
  // Writing is a fixed point: parse(to_yaml()) writes the same bytes.
  ImageMetadata again = parse_ok(m.to_yaml());
  EXPECT_EQ(again.to_yaml(), kAlpineOut);

  EXPECT_EQ(m.get_string("version"), "3.21");
  EXPECT_EQ(m.get("version")->style, ScalarStyle::kQuoted);
  EXPECT_EQ(m.get("revision")->style, ScalarStyle::kPlain);
  EXPECT_EQ(m.get_string("motd"), "Welcome to Alpine!\n\nSee the wiki.\n");
  EXPECT_EQ(m.get_string("release_cmd"), std::nullopt);
  EXPECT_EQ(m.get_string("signing_cmd"), std::nullopt);
  EXPECT_TRUE(m.get("release_cmd")->is_null());
  EXPECT_TRUE(m.has("release_cmd"));
  EXPECT_FALSE(m.has("nope"));
  EXPECT_EQ(m.keys().front(), "name");
  EXPECT_EQ(m.keys().back(), "image_size");
  EXPECT_EQ(m.keys().size(), 24u);
}

TEST(MetadataRoundTrip, MultiLineStringsSurvive) {
  const std::vector<std::string> cases = {
      "one\ntwo",          "one\ntwo\n",       "one\ntwo\n\n\n",    "\nleading empty line",
      "  indented first\nsecond", "tab\there\nx", "cr\r\nlf",         "trailing spaces   \nx",
      "blank line\n   \nafter", "\n",           "a\n\n\nb",          "unicode é ✓\nline",
  };
  for (const std::string& s : cases) {
    ImageMetadata m = parse_ok("k: v\n");
    m.set_string("k", s);
    m.set("q", MetaValue::quoted(s));
    ImageMetadata back = parse_ok(m.to_yaml());
    EXPECT_EQ(back.get("k")->scalar(), s) << m.to_yaml();
    EXPECT_EQ(back.get("q")->scalar(), s) << m.to_yaml();
    EXPECT_EQ(back.get("k")->style, ScalarStyle::kQuoted) << m.to_yaml();
  }
  ImageMetadata m = parse_ok("k: v\n");
  m.set_string("k", "one\ntwo");
  EXPECT_EQ(m.to_yaml(), "k: |-\n  one\n  two\n");
}

TEST(MetadataRoundTrip, NullsKeepTheirSpelling) {
  ImageMetadata m = parse_ok("a:\nb: ~\nc: null\nd: NULL\ne: [~, x]\nf:\n  - \n  - null\n");
  EXPECT_EQ(m.to_yaml(), "a:\nb: ~\nc: null\nd: NULL\ne:\n  - ~\n  - x\nf:\n  -\n  - null\n");
  EXPECT_EQ(m.get_list("e"), std::vector<std::string>{"x"});
  m.set("g", MetaValue::null());
  EXPECT_EQ(parse_ok(m.to_yaml()).get("g")->is_null(), true);
}

TEST(MetadataRoundTrip, AnchorsAreExpanded) {
  ImageMetadata m = parse_ok("base: &b {x: 1}\ncopy: *b\nlist: &l [a]\nagain: *l\ns: &s word\nt: *s\n");
  EXPECT_EQ(m.to_yaml(),
            "base:\n  x: 1\ncopy:\n  x: 1\nlist:\n  - a\nagain:\n  - a\ns: word\nt: word\n");
}

// What set_string writes for strings a plain scalar would misrepresent, and
// that each reads back as the same string.
TEST(MetadataQuoting, SetStringQuotesWhatWouldNotReadBack) {
  struct Case {
    std::string value;
    std::string line;  // "k: ..." as written
  } cases[] = {
      {"yes", "k: 'yes'"},
      {"No", "k: 'No'"},
      {"on", "k: 'on'"},
      {"OFF", "k: 'OFF'"},
      {"y", "k: 'y'"},
      {"true", "k: 'true'"},
      {"null", "k: 'null'"},
      {"~", "k: '~'"},
      {"", "k: ''"},
      {"1.0", "k: '1.0'"},
      {"3.21", "k: '3.21'"},
      {"3.21.0", "k: '3.21.0'"},
      {"0123", "k: '0123'"},
      {"123", "k: '123'"},
      {"1_000", "k: '1_000'"},
      {"1:30", "k: '1:30'"},
      {"0x1F", "k: '0x1F'"},
      {"0o17", "k: '0o17'"},
      {"1e3", "k: '1e3'"},
      {"-5", "k: '-5'"},
      {".inf", "k: '.inf'"},
      {".NaN", "k: '.NaN'"},
      {"2027-05-01", "k: '2027-05-01'"},
      {"2026-11-22T03:14:27Z", "k: '2026-11-22T03:14:27Z'"},
      {"<<", "k: '<<'"},
      {"=", "k: '='"},
      {"a: b", "k: 'a: b'"},
      {"a:", "k: 'a:'"},
      {" leading", "k: ' leading'"},
      {"trailing ", "k: 'trailing '"},
      {"#x", "k: '#x'"},
      {"x #y", "k: 'x #y'"},
      {"- item", "k: '- item'"},
      {"-", "k: '-'"},
      {"? x", "k: '? x'"},
      {"-.inf", "k: '-.inf'"},
      {"-foo", "k: -foo"},
      {":foo", "k: :foo"},
      {"?foo", "k: ?foo"},
      {"---", "k: '---'"},
      {"[a]", "k: '[a]'"},
      {"{a}", "k: '{a}'"},
      {"*alias", "k: '*alias'"},
      {"&anchor", "k: '&anchor'"},
      {"!tag", "k: '!tag'"},
      {"|", "k: '|'"},
      {">", "k: '>'"},
      {"%percent", "k: '%percent'"},
      {"@at", "k: '@at'"},
      {"`tick", "k: '`tick'"},
      {"it's", "k: it's"},
      {"'quoted'", "k: '''quoted'''"},
      {"\"dq\"", "k: '\"dq\"'"},
      {"tab\tin", "k: \"tab\\tin\""},
      {"bell\x07", "k: \"bell\\x07\""},
      {"nel\xC2\x85", "k: \"nel\\u0085\""},
      {"ls\xE2\x80\xA8", "k: \"ls\\u2028\""},
      {"ps\xE2\x80\xA9", "k: \"ps\\u2029\""},
      {"\xEF\xBB\xBF" "bom", "k: \"\\uFEFFbom\""},
      // Plain is fine for these.
      {"alpine-3.21.0-x86_64", "k: alpine-3.21.0-x86_64"},
      {"s3://bucket/prefix/", "k: s3://bucket/prefix/"},
      {"https://example.com/a?b=c#frag", "k: https://example.com/a?b=c#frag"},
      {"ami-0123456789abcdef0", "k: ami-0123456789abcdef0"},
      {"yesterday", "k: yesterday"},
      {"nothing", "k: nothing"},
      {"a,b", "k: a,b"},
      {"Alpine Linux 3.21", "k: Alpine Linux 3.21"},
      {"x86_64", "k: x86_64"},
      {"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "k: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"über", "k: über"},
  };
  for (const Case& c : cases) {
    ImageMetadata m = parse_ok("k: v\n");
    m.set_string("k", c.value);
    EXPECT_EQ(m.to_yaml(), c.line + "\n") << "value [" << c.value << "]";
    ImageMetadata back = parse_ok(m.to_yaml());
    ASSERT_TRUE(back.get("k")) << c.line;
    EXPECT_EQ(back.get("k")->scalar(), c.value) << c.line;
    EXPECT_FALSE(back.get("k")->is_null()) << c.line;
  }
}

TEST(MetadataQuoting, TypedSettersStayPlain) {
  ImageMetadata m = parse_ok("k: v\n");
  m.set_uint("image_size", 1234);
  m.set_bool("public", false);
  m.set_timestamp("built", "2026-11-22T03:14:27Z");
  m.set_string("checksum", "1234");
  EXPECT_EQ(m.to_yaml(),
            "k: v\nimage_size: 1234\npublic: false\nbuilt: 2026-11-22T03:14:27Z\nchecksum: '1234'\n");
  auto b = m.get_bool("public");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, std::optional<bool>(false));
}

TEST(MetadataQuoting, KeysThatWouldChangeTypeAreQuoted) {
  ImageMetadata m = parse_ok("k: v\n");
  MetaValue::Map tags = {{"yes", "1"}, {"3.21", "x"}, {"a: b", "why"}, {"plain", "z"}};
  m.set("tags", tags);
  EXPECT_EQ(m.to_yaml(), "k: v\ntags:\n  'yes': '1'\n  '3.21': x\n  'a: b': why\n  plain: z\n");
  ImageMetadata back = parse_ok(m.to_yaml());
  ASSERT_EQ(back.get("tags")->map().size(), 4u);
  EXPECT_EQ(back.get("tags")->find("yes")->scalar(), "1");
  EXPECT_EQ(back.get("tags")->find("yes")->style, ScalarStyle::kQuoted);
  EXPECT_EQ(back.get("tags")->find("a: b")->scalar(), "why");
}

// PyYAML (YAML 1.1, as Alpine's tooling reads these files) must see the same
// types and values in our output as in the input.
TEST(MetadataQuoting, PyYamlReadsTheSameValues) {
  if (std::system("python3 -c 'import yaml' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3 with PyYAML is not installed";
  MetaTempDir dir;
  ImageMetadata m = parse_ok(kAlpineFile);
  // Strings that a careless writer would let PyYAML retype.
  const char* tricky[] = {"yes", "on", "0123", "1_000", "1:30", "3.21.0", "1e3", "2027-05-01",
                          "null", "", "a: b", "#x", " x", "~", "=", "<<", "0b101", "+1",
                          "2026-11-22 03:14:27", "one\ntwo", ".5", "Y", "n"};
  int i = 0;
  for (const char* s : tricky) m.set_string("t" + std::to_string(i++), s);
  write_file(dir.file("in.yaml"), kAlpineFile);
  write_file(dir.file("out.yaml"), m.to_yaml());
  std::string script = dir.file("check.py");
  write_file(script,
             "import sys, yaml\n"
             "a = yaml.safe_load(open(sys.argv[1]))\n"
             "b = yaml.safe_load(open(sys.argv[2]))\n"
             "for k, v in a.items():\n"
             "    if b.get(k) != v or type(b.get(k)) != type(v):\n"
             "        print('differs:', k, repr(v), repr(b.get(k))); sys.exit(1)\n"
             "tricky = sys.argv[3:]\n"
             "for i, s in enumerate(tricky):\n"
             "    got = b['t%d' % i]\n"
             "    if got != s or type(got) != str:\n"
             "        print('retyped:', repr(s), repr(got)); sys.exit(1)\n");
  std::string cmd = "python3 " + script + " " + dir.file("in.yaml") + " " + dir.file("out.yaml");
  for (const char* s : tricky) {
    std::string arg = s;
    std::string escaped = "'";
    for (char c : arg) escaped += c == '\'' ? std::string("'\\''") : std::string(1, c);
    cmd += " " + escaped + "'";
  }
  EXPECT_EQ(std::system(cmd.c_str()), 0) << m.to_yaml();
}

// Seeded random strings over an alphabet of YAML-significant characters:
// every one must read back as the same string, from a value and from a key,
// in yaml-cpp and (when installed) PyYAML.
TEST(MetadataQuoting, RandomStringsReadBack) {
  const char* alphabet[] = {"a", "b", "y", "e", "E", "0", "1", "7", ".", "-", "+", ":", " ",
                            "#", "'", "\"", "\n", "\t", "~", "_", "x", "o", "[", "]", "{",
                            "}", ",", "!", "&", "*", "|", ">", "%", "@", "`", "?", "n", "u",
                            "l", "T", "Z", "\xC3\xA9", "\\", "=", "<", "\r"};
  std::mt19937 rng(1234);
  std::vector<std::string> values;
  ImageMetadata m = parse_ok("k: v\n");
  MetaValue::Map keyed;
  for (int i = 0; i < 3000; i++) {
    std::string s;
    for (int len = static_cast<int>(rng() % 12); len > 0; len--) s += alphabet[rng() % std::size(alphabet)];
    values.push_back(s);
    m.set_string("v" + std::to_string(i), s);
    bool dup = std::any_of(keyed.begin(), keyed.end(), [&](const auto& kv) { return kv.first == s; });
    if (!dup) keyed.emplace_back(s, "x");
  }
  m.set("keys", keyed);
  std::string text = m.to_yaml();
  ImageMetadata back = parse_ok(text);
  for (size_t i = 0; i < values.size(); i++) {
    const MetaValue* v = back.get("v" + std::to_string(i));
    ASSERT_TRUE(v);
    EXPECT_EQ(v->scalar(), values[i]);
    EXPECT_FALSE(v->is_null()) << values[i];
  }
  ASSERT_EQ(back.get("keys")->map().size(), keyed.size());
  for (size_t i = 0; i < keyed.size(); i++) EXPECT_EQ(back.get("keys")->map()[i].first, keyed[i].first);

  if (std::system("python3 -c 'import yaml' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3 with PyYAML is not installed";
  MetaTempDir dir;
  write_file(dir.file("out.yaml"), text);
  std::string hex;
  for (const std::string& v : values) {
    for (unsigned char c : v) {
      char buf[3];
      std::snprintf(buf, sizeof buf, "%02x", c);
      hex += buf;
    }
    hex += "\n";
  }
  write_file(dir.file("values.hex"), hex);
  write_file(dir.file("check.py"),
             "import sys, yaml\n"
             "d = yaml.safe_load(open(sys.argv[1], encoding='utf-8'))\n"
             "vals = [bytes.fromhex(l.strip()).decode('utf-8') for l in open(sys.argv[2])]\n"
             "keys = list(d['keys'].keys())\n"
             "for i, v in enumerate(vals):\n"
             "    g = d['v%d' % i]\n"
             "    if g != v or type(g) is not str: print('value', repr(v), repr(g)); sys.exit(1)\n"
             "for k in keys:\n"
             "    if type(k) is not str or k not in vals: print('key', repr(k)); sys.exit(1)\n");
  std::string cmd = "python3 " + dir.file("check.py") + " " + dir.file("out.yaml") + " " + dir.file("values.hex");
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

TEST(MetadataQuoting, ScalarRules) {
  EXPECT_TRUE(yaml_scalar::plain_reads_back("us-east-1"));
  EXPECT_FALSE(yaml_scalar::plain_reads_back("True"));
  EXPECT_TRUE(yaml_scalar::resolves_as_non_string("2001-12-14t21:59:43.10-05:00"));
  EXPECT_TRUE(yaml_scalar::resolves_as_non_string("685_230.15"));
  EXPECT_TRUE(yaml_scalar::resolves_as_non_string("190:20:30.15"));
  EXPECT_FALSE(yaml_scalar::resolves_as_non_string("2001-12-14x"));
  EXPECT_FALSE(yaml_scalar::resolves_as_non_string("0xZZ"));
  EXPECT_TRUE(yaml_scalar::resolves_as_non_string(std::string(300, '7')));
  EXPECT_FALSE(yaml_scalar::resolves_as_non_string(std::string(300, 'a')));
}

TEST(MetadataSet, ReplacesInPlaceAndAppendsNewKeys) {
  ImageMetadata m = parse_ok("a: 1\nb: 2\nc: 3\n");
  m.set_string("b", "two");
  m.set_string("d", "four");
  m.set_uint("a", 10);
  EXPECT_EQ(m.to_yaml(), "a: 10\nb: two\nc: 3\nd: four\n");
  m.remove("c");
  m.remove("absent");
  EXPECT_EQ(m.to_yaml(), "a: 10\nb: two\nd: four\n");
  EXPECT_EQ(m.keys(), (std::vector<std::string>{"a", "b", "d"}));
}

TEST(MetadataSet, NestedMapsAndLists) {
  ImageMetadata m = parse_ok("name: x\nartifacts:\n  us-east-1: ami-1\n");
  MetaValue artifacts = *m.get("artifacts");
  artifacts.map().emplace_back("eu-west-2", "ami-2");
  m.set("artifacts", artifacts);
  m.set("checksums", MetaValue::Map{{"sha256", "abc"}, {"sha512", "def"}});
  m.set("operations", MetaValue::List{MetaValue::Map{{"task", "import-1"}, {"region", "us-east-1"}},
                                      MetaValue::Map{{"snapshot", "snap-1"}}});
  m.set("empty", MetaValue::List{});
  EXPECT_EQ(m.to_yaml(),
            "name: x\n"
            "artifacts:\n"
            "  us-east-1: ami-1\n"
            "  eu-west-2: ami-2\n"
            "checksums:\n"
            "  sha256: abc\n"
            "  sha512: def\n"
            "operations:\n"
            "  - task: import-1\n"
            "    region: us-east-1\n"
            "  - snapshot: snap-1\n"
            "empty: []\n");
  ImageMetadata back = parse_ok(m.to_yaml());
  EXPECT_EQ(back.get("artifacts")->find("eu-west-2")->scalar(), "ami-2");
  EXPECT_EQ(back.get("operations")->list()[0].find("region")->scalar(), "us-east-1");
  EXPECT_EQ(back.to_yaml(), m.to_yaml());
}

TEST(MetadataGet, BoolStringAndList) {
  ImageMetadata m = parse_ok(
      "t1: true\nt2: YES\nt3: On\nf1: False\nf2: no\nf3: OFF\nq: 'yes'\nbad: maybe\n"
      "lst: [a]\nnul: ~\nempty: ''\nregions: all\nregions2: [us-east-1, eu-west-2]\n");
  for (const char* k : {"t1", "t2", "t3", "q"}) {
    auto r = m.get_bool(k);
    ASSERT_TRUE(r.ok()) << k;
    EXPECT_EQ(*r, std::optional<bool>(true)) << k;
  }
  for (const char* k : {"f1", "f2", "f3"}) {
    auto r = m.get_bool(k);
    ASSERT_TRUE(r.ok()) << k;
    EXPECT_EQ(*r, std::optional<bool>(false)) << k;
  }
  EXPECT_EQ(m.get_bool("bad").message(), "img.yaml: bad must be true or false (got 'maybe')");
  EXPECT_EQ(m.get_bool("lst").message(), "img.yaml: lst must be true or false (got a list)");
  EXPECT_EQ(*m.get_bool("nul"), std::nullopt);
  EXPECT_EQ(*m.get_bool("absent"), std::nullopt);

  EXPECT_EQ(m.get_string("empty"), std::nullopt);
  EXPECT_EQ(m.get_string("lst"), std::nullopt);
  EXPECT_EQ(m.get_string("bad"), "maybe");
  EXPECT_EQ(m.get_list("regions"), std::vector<std::string>{"all"});
  EXPECT_EQ(m.get_list("regions2"), (std::vector<std::string>{"us-east-1", "eu-west-2"}));
  EXPECT_TRUE(m.get_list("nul").empty());
  EXPECT_TRUE(m.get_list("absent").empty());
}

TEST(MetadataGet, RequireKeys) {
  ImageMetadata m = parse_ok("name: x\ncloud: aws\nempty: ''\nnul:\nregions: [a]\n");
  EXPECT_TRUE(require_keys(m, {"name", "cloud", "regions"}, "upload").ok());
  EXPECT_EQ(require_keys(m, {"name", "storage_url", "local_image"}, "upload").message(),
            "img.yaml: upload needs storage_url (missing)");
  EXPECT_EQ(require_keys(m, {"empty"}, "import").message(), "img.yaml: import needs empty (missing)");
  EXPECT_EQ(require_keys(m, {"nul"}, "sign").message(), "img.yaml: sign needs nul (missing)");
}

TEST(MetadataGet, ResolveAgainstTheYamlDirectory) {
  auto in_dir = ImageMetadata::parse("a: 1\n", "/work/images/img.yaml");
  ASSERT_TRUE(in_dir.ok());
  EXPECT_EQ(in_dir->dir(), "/work/images");
  EXPECT_EQ(in_dir->resolve("disk.qcow2"), "/work/images/disk.qcow2");
  EXPECT_EQ(in_dir->resolve("../x/disk.qcow2"), "/work/images/../x/disk.qcow2");
  EXPECT_EQ(in_dir->resolve("/abs/disk.qcow2"), "/abs/disk.qcow2");
  auto relative = ImageMetadata::parse("a: 1\n", "sub/img.yaml");
  EXPECT_EQ(relative->resolve("disk.raw"), "sub/disk.raw");
  auto bare = ImageMetadata::parse("a: 1\n", "img.yaml");
  EXPECT_EQ(bare->dir(), ".");
  EXPECT_EQ(bare->resolve("work/disk.raw"), "work/disk.raw");
  auto root = ImageMetadata::parse("a: 1\n", "/img.yaml");
  EXPECT_EQ(root->resolve("disk.raw"), "/disk.raw");
}

TEST(MetadataErrors, ExactMessages) {
  EXPECT_EQ(parse_error("a: [1, 2\nb: 3\n"),
            "img.yaml: invalid YAML at line 2, column 2: end of sequence flow not found");
  EXPECT_EQ(parse_error("a: b\n  c: d\n"),
            "img.yaml: invalid YAML at line 2, column 4: illegal map value");
  EXPECT_EQ(parse_error("- a\n- b\n"), "img.yaml: top level must be a mapping");
  EXPECT_EQ(parse_error("just a scalar\n"), "img.yaml: top level must be a mapping");
  EXPECT_EQ(parse_error(""), "img.yaml: top level must be a mapping");
  EXPECT_EQ(parse_error("# only a comment\n"), "img.yaml: top level must be a mapping");
  EXPECT_EQ(parse_error("---\n"), "img.yaml: top level must be a mapping");
  EXPECT_EQ(parse_error("a: 1\nb: 2\na: 3\n"), "img.yaml: duplicate key 'a' at line 3, column 1");
  EXPECT_EQ(parse_error("t:\n  x: 1\n  x: 2\n"), "img.yaml: duplicate key 'x' at line 3, column 3");
  EXPECT_EQ(parse_error("a: 1\n---\nb: 2\n"), "img.yaml: more than one YAML document");
  EXPECT_EQ(parse_error("? [a]\n: 1\n"),
            "img.yaml: unsupported mapping key (a list or mapping) at line 1, column 3");
}

TEST(MetadataErrors, FileErrors) {
  MetaTempDir dir;
  auto missing = ImageMetadata::load(dir.file("missing.yaml"));
  EXPECT_EQ(missing.message(), dir.file("missing.yaml") + ": No such file or directory");
  auto is_dir = ImageMetadata::load(dir.path());
  EXPECT_EQ(is_dir.message(), dir.path() + ": is a directory");
  write_file(dir.file("bad.yaml"), "a: [1,\n");
  auto bad = ImageMetadata::load(dir.file("bad.yaml"));
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.message().starts_with(dir.file("bad.yaml") + ": invalid YAML at line ")) << bad.message();
  write_file(dir.file("empty.yaml"), "");
  EXPECT_EQ(ImageMetadata::load(dir.file("empty.yaml")).message(),
            dir.file("empty.yaml") + ": top level must be a mapping");
}

TEST(MetadataSave, AtomicWithTimestampAndNoTempFiles) {
  MetaTempDir dir;
  std::string path = dir.file("img.yaml");
  write_file(path, kAlpineFile);
  chmod(path.c_str(), 0640);
  auto m = ImageMetadata::load(path);
  ASSERT_TRUE(m.ok()) << m.message();
  m->set_string("upload_url", "s3://bucket/prefix/disk.raw");
  ASSERT_TRUE(m->save().ok());

  std::string text = read_file(path);
  EXPECT_EQ(without_updated(text), std::string(kAlpineOut) + "upload_url: s3://bucket/prefix/disk.raw\n");
  auto back = ImageMetadata::load(path);
  ASSERT_TRUE(back.ok());
  auto updated = back->get_string("metadata_updated");
  ASSERT_TRUE(updated);
  EXPECT_TRUE(std::regex_match(*updated, std::regex(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$)"))) << *updated;
  EXPECT_EQ(back->get("metadata_updated")->style, ScalarStyle::kPlain);
  EXPECT_TRUE(std::regex_match(utc_now_iso8601(), std::regex(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$)")));

  // Saving again replaces metadata_updated in place.
  ASSERT_TRUE(back->save().ok());
  EXPECT_EQ(back->keys().back(), "metadata_updated");
  std::vector<std::string> keys = back->keys();
  EXPECT_EQ(std::count(keys.begin(), keys.end(), "metadata_updated"), 1);

  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    files++;
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  }
  EXPECT_EQ(files, 1);
}

TEST(MetadataSave, FailureLeavesTheOldFile) {
  MetaTempDir dir;
  std::string path = dir.file("img.yaml");
  write_file(path, "a: 1\n");
  auto m = ImageMetadata::load(path);
  ASSERT_TRUE(m.ok());
  // A directory where the temp file should go makes the write fail, even
  // for root.
  std::string tmp = path + ".tmp-" + std::to_string(getpid());
  std::filesystem::create_directory(tmp);
  Status s = m->save();
  EXPECT_EQ(s.message(), tmp + ": Is a directory");
  EXPECT_EQ(read_file(path), "a: 1\n");
}

TEST(MetadataSave, SymlinkIsKeptAndTargetReplaced) {
  MetaTempDir dir;
  std::filesystem::create_directory(dir.file("real"));
  std::string target = dir.file("real/img.yaml");
  std::string link = dir.file("img.yaml");
  write_file(target, "a: 1\n");
  ASSERT_EQ(symlink("real/img.yaml", link.c_str()), 0);
  auto m = ImageMetadata::load(link);
  ASSERT_TRUE(m.ok());
  m->set_string("b", "x");
  ASSERT_TRUE(m->save().ok());
  struct stat st;
  ASSERT_EQ(lstat(link.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(without_updated(read_file(target)), "a: 1\nb: x\n");
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.file("real"))) {
    entries++;
    (void)e;
  }
  EXPECT_EQ(entries, 1);
}

TEST(MetadataSave, NewFileFromParse) {
  MetaTempDir dir;
  auto m = ImageMetadata::parse("name: x\n", dir.file("new.yaml"));
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(m->save().ok());
  struct stat st;
  ASSERT_EQ(stat(dir.file("new.yaml").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_EQ(without_updated(read_file(dir.file("new.yaml"))), "name: x\n");
}

// 8 processes x 20 locked read-modify-write cycles: no update is lost and
// the file always parses.
TEST(MetadataLock, ConcurrentIncrementsAreSerialised) {
  MetaTempDir dir;
  std::string path = dir.file("img.yaml");
  write_file(path, "name: x\ncounter: 0\n");
  constexpr int kProcs = 8, kRounds = 20;
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcs; p++) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int i = 0; i < kRounds; i++) {
        auto lock = MetadataLock::acquire(path);
        if (!lock.ok()) _exit(10);
        auto m = ImageMetadata::load(path);
        if (!m.ok()) _exit(11);
        auto c = m->get_string("counter");
        if (!c) _exit(12);
        m->set_uint("counter", std::stoull(*c) + 1);
        if (!m->save().ok()) _exit(13);
      }
      _exit(0);
    }
    pids.push_back(pid);
  }
  // Readers without the lock always see a whole file.
  int reads = 0;
  for (;;) {
    auto m = ImageMetadata::load(path);
    ASSERT_TRUE(m.ok()) << m.message();
    reads++;
    bool all_done = true;
    for (pid_t& pid : pids) {
      if (pid == 0) continue;
      int status = 0;
      pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == 0) {
        all_done = false;
        continue;
      }
      ASSERT_EQ(r, pid);
      ASSERT_TRUE(WIFEXITED(status));
      EXPECT_EQ(WEXITSTATUS(status), 0);
      pid = 0;
    }
    if (all_done) break;
  }
  auto m = ImageMetadata::load(path);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->get_string("counter"), std::to_string(kProcs * kRounds));
  EXPECT_EQ(m->keys(), (std::vector<std::string>{"name", "counter", "metadata_updated"}));
  EXPECT_GT(reads, 0);
  EXPECT_TRUE(std::filesystem::exists(path + ".lock"));
}

TEST(MetadataLock, SecondAcquireWaitsForTheFirst) {
  MetaTempDir dir;
  std::string path = dir.file("img.yaml");
  auto first = MetadataLock::acquire(path);
  ASSERT_TRUE(first.ok()) << first.message();
  struct stat st;
  ASSERT_EQ(stat((path + ".lock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  // A separate open file description in a child must not get the lock.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = open((path + ".lock").c_str(), O_RDWR | O_CLOEXEC);
    _exit(flock(fd, LOCK_EX | LOCK_NB) == 0 ? 1 : 0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  { MetadataLock released = std::move(first).value(); }
  auto again = MetadataLock::acquire(path);
  EXPECT_TRUE(again.ok());
  EXPECT_EQ(MetadataLock::acquire(dir.file("no/such/dir/img.yaml")).message(),
            dir.file("no/such/dir/img.yaml") + ".lock: No such file or directory");
}

}  // namespace
}  // namespace ch
