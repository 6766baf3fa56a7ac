// The command line as users and scripts see it: the built binary is run in
// a temporary directory and its exact exit codes, stderr lines and stdout
// are asserted. Every bad-input case also checks that the YAML is unchanged
// byte for byte and that nothing was created beside it.
#include <dirent.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "metadata/image_metadata.h"
#include "tests/test_util.h"

namespace ch {
namespace {

struct Outcome {
  int code = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::set<std::string> list_dir(const std::string& dir) {
  std::set<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != ".." && n != ".out" && n != ".err") names.insert(n);
    }
    closedir(d);
  }
  return names;
}

class Cli : public ::testing::Test {
 protected:
  // Runs `cloud_helper ARGS` in the temp dir (ARGS is shell text).
  Outcome run(const std::string& args, const std::string& env = "") {
    std::string cmd = "cd " + test::shell_quote(dir_.path()) + " && " + env + " " +
                      test::shell_quote(CLOUD_HELPER_BINARY) + " " + args + " >.out 2>.err";
    Outcome r;
    r.code = test::run_command(cmd).exit_code;
    r.out = slurp(dir_.file(".out"));
    r.err = slurp(dir_.file(".err"));
    return r;
  }
  int sh(const std::string& cmd) {
    return test::run_command("cd " + test::shell_quote(dir_.path()) + " && " + cmd).exit_code;
  }
  std::string file(const std::string& name) { return dir_.file(name); }
  void write(const std::string& name, const std::string& text) { spit(file(name), text); }
  std::string read(const std::string& name) { return slurp(file(name)); }
  ImageMetadata meta(const std::string& name) {
    auto m = ImageMetadata::load(file(name));
    EXPECT_TRUE(m.ok()) << m.message();
    return std::move(m).value();
  }
  // A 4 MiB sparse raw disk with some data and an aws image YAML for it.
  void make_image(const std::string& yaml = "a.yaml", const std::string& extra = "") {
    ASSERT_EQ(sh("truncate -s 4M disk.img && printf 'bootsector' | dd of=disk.img conv=notrunc "
                 "status=none && printf 'data' | dd of=disk.img bs=1 seek=2000000 conv=notrunc "
                 "status=none"),
              0);
    write(yaml, "name: alpine-test\ncloud: aws\nlocal_image: disk.img\n" + extra);
  }
  // Asserts a bad-input run: exit 2, exactly STDERR, nothing on stdout, the
  // YAML unchanged and no new files.
  void expect_bad_input(const std::string& args, const std::string& yaml, const std::string& stderr_text) {
    std::string before = read(yaml);
    std::set<std::string> files = list_dir(dir_.path());
    Outcome r = run(args);
    EXPECT_EQ(r.code, 2) << args;
    EXPECT_EQ(r.err, stderr_text) << args;
    EXPECT_EQ(r.out, "") << args;
    EXPECT_EQ(read(yaml), before) << args;
    EXPECT_EQ(list_dir(dir_.path()), files) << args;
  }

  test::TempDir dir_;
};

const std::string kActions =
    "convert, checksum, upload, import, publish, release, sign, state, rollback";

TEST_F(Cli, UnknownActionAndNoAction) {
  Outcome r = run("frobnicate a.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "cloud_helper: unknown action 'frobnicate' (expected " + kActions + ")\n");
  EXPECT_EQ(r.out, "");
  r = run("");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "cloud_helper: no action given (expected " + kActions + "); see cloud_helper --help\n");
  r = run("-i x checksum");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "cloud_helper: unknown option '-i' (action options go after the action)\n");
}

TEST_F(Cli, VersionAndHelp) {
  for (const char* args : {"--version", "state --version", "--no-progress --version"}) {
    Outcome r = run(args);
    EXPECT_EQ(r.code, 0) << args;
    EXPECT_EQ(r.out, std::string("cloud_helper ") + CLOUD_HELPER_VERSION + "\n") << args;
    EXPECT_EQ(r.err, "");
  }
  Outcome help = run("--help");
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("usage: cloud_helper [GLOBAL OPTIONS] ACTION"), std::string::npos);
  for (const char* a : {"convert", "checksum", "upload", "import", "publish", "release", "sign",
                        "state", "rollback"}) {
    EXPECT_NE(help.out.find(std::string("\n  ") + a + " "), std::string::npos) << a;
    Outcome r = run(std::string(a) + " --help");
    EXPECT_EQ(r.code, 0) << a;
    EXPECT_NE(r.out.find(std::string("cloud_helper ") + a), std::string::npos) << a;
    EXPECT_NE(r.out.find("--dry-run"), std::string::npos) << a;
    Outcome before = run(std::string("--help ") + a);
    EXPECT_EQ(before.code, 0) << a;
    EXPECT_EQ(before.out, r.out) << a;
  }
  EXPECT_NE(run("convert --help").out.find("-O, --format FORMAT"), std::string::npos);
}

TEST_F(Cli, BadOptions) {
  make_image();
  expect_bad_input("convert --bogus a.yaml", "a.yaml",
                   "cloud_helper: convert: Option \xE2\x80\x98" "bogus\xE2\x80\x99 does not exist\n");
  expect_bad_input("convert --log-level loud a.yaml", "a.yaml",
                   "cloud_helper: unknown log level 'loud' (expected error, warn, info, debug)\n");
  expect_bad_input("--output xml convert a.yaml", "a.yaml",
                   "cloud_helper: unknown output 'xml' (expected text, json)\n");
  expect_bad_input("state", "a.yaml", "cloud_helper: state: no IMAGE.yaml given\n");
  expect_bad_input("convert", "a.yaml",
                   "cloud_helper: convert: no IMAGE.yaml given (or -i SRC -o DST -O FORMAT)\n");
}

TEST_F(Cli, UnreadableYamlIsBadInput) {
  make_image();
  expect_bad_input("convert missing.yaml", "a.yaml",
                   "cloud_helper: missing.yaml: convert: No such file or directory\n");
  ASSERT_EQ(sh("mkdir dir.yaml"), 0);
  expect_bad_input("checksum dir.yaml", "a.yaml", "cloud_helper: dir.yaml: checksum: is a directory\n");
  write("bad.yaml", "name: [unclosed\n");
  expect_bad_input("convert bad.yaml", "bad.yaml",
                   "cloud_helper: bad.yaml: convert: invalid YAML at line 2, column 1: end of "
                   "sequence flow not found\n");
  write("list.yaml", "- a\n- b\n");
  expect_bad_input("convert list.yaml", "list.yaml",
                   "cloud_helper: list.yaml: convert: top level must be a mapping\n");
}

TEST_F(Cli, InvalidFieldsAreBadInputAndAllReported) {
  make_image();
  write("b.yaml", "name: b\ncloud: azure-stack\nimage_format: vhdx\n");
  write("c.yaml", "cloud: aws\nlocal_image: disk.img\n");
  std::string a = read("a.yaml");
  expect_bad_input("convert a.yaml b.yaml c.yaml", "b.yaml",
                   "cloud_helper: b.yaml: convert: unknown cloud 'azure-stack' (expected aws, azure, "
                   "gcp, alicloud, oci, openstack, nocloud)\n"
                   "cloud_helper: b.yaml: convert: unknown image_format 'vhdx' (expected raw, vhd, "
                   "qcow2, vmdk, gce-tar)\n"
                   "cloud_helper: b.yaml: convert needs local_image (missing)\n"
                   "cloud_helper: c.yaml: convert needs name (missing)\n");
  // a.yaml was valid but nothing ran: no output image, no change.
  EXPECT_EQ(read("a.yaml"), a);
  EXPECT_EQ(list_dir(dir_.path()).count("alpine-test.raw"), 0u);
}

TEST_F(Cli, StepsThatDoNotApplyAreNoticesAndExitZero) {
  ASSERT_EQ(sh("truncate -s 1M disk.img"), 0);
  write("z.yaml", "name: z\ncloud: nocloud\nlocal_image: disk.img\n");
  std::string before = read("z.yaml");
  for (const char* action : {"import", "publish"}) {
    Outcome r = run(std::string(action) + " z.yaml");
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.err, std::string("cloud_helper: z.yaml: ") + action +
                         ": does not apply to cloud nocloud (storage only)\n");
    EXPECT_EQ(read("z.yaml"), before);
  }
  write("n.yaml", "name: n\n");
  expect_bad_input("upload n.yaml", "n.yaml", "cloud_helper: n.yaml: upload needs cloud (missing)\n");
}

// The cloud's own checks run before the lock and any request: exit 2, the
// YAML untouched, no lock file.
TEST_F(Cli, AwsStepsCheckTheYamlFirst) {
  make_image();
  expect_bad_input("upload a.yaml", "a.yaml",
                   "cloud_helper: a.yaml: upload: no storage_url (set it to s3://bucket/prefix/)\n");
  expect_bad_input("import a.yaml", "a.yaml", "cloud_helper: a.yaml: import: no arch in the YAML\n");
  expect_bad_input("publish a.yaml", "a.yaml",
                   "cloud_helper: a.yaml: publish: no imported image (import_id, import_region): "
                   "run import first\n");
  make_image("b.yaml", "arch: sparc\n");
  expect_bad_input("import b.yaml", "b.yaml",
                   "cloud_helper: b.yaml: import: arch 'sparc' is not one EC2 knows (x86_64, aarch64)\n");
  make_image("c.yaml", "arch: x86_64\nfirmware: coreboot\n");
  expect_bad_input("import c.yaml", "c.yaml",
                   "cloud_helper: c.yaml: import: firmware 'coreboot' is not uefi, bios or uefi-preferred\n");
  make_image("e.yaml", "arch: x86_64\nimported: 2026-01-01T00:00:00Z\nimport_id: ami-1\n"
                       "import_region: us-east-1\npublic: true\nend_of_life: 2999-01-01\n");
  Outcome far = run("publish e.yaml");
  EXPECT_EQ(far.code, 2);
  EXPECT_NE(far.err.find("e.yaml: publish: end_of_life 2999-01-01 is more than 2 years away"),
            std::string::npos) << far.err;
  make_image("d.yaml", "storage_url: gs://x/\n");
  expect_bad_input("upload d.yaml", "d.yaml",
                   "cloud_helper: d.yaml: upload: storage_url: 'gs://x/': not an s3:// URL\n");
}

TEST_F(Cli, ChecksumBeforeConvert) {
  make_image();
  expect_bad_input("checksum a.yaml", "a.yaml",
                   "cloud_helper: a.yaml: checksum needs image_file (run convert first)\n");
  expect_bad_input("sign a.yaml", "a.yaml",
                   "cloud_helper: a.yaml: sign needs image_file (run convert first)\n"
                   "cloud_helper: a.yaml: sign needs signing_cmd (missing)\n");
  expect_bad_input("release a.yaml", "a.yaml",
                   "cloud_helper: a.yaml: release needs a published image (run publish first)\n"
                   "cloud_helper: a.yaml: release needs release_cmd (missing)\n");
}

TEST_F(Cli, ConvertRecordsThenSkips) {
  make_image("a.yaml", "checksum_algorithms: [sha256, sha512, md5]\n");
  Outcome r = run("convert a.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  ImageMetadata m = meta("a.yaml");
  EXPECT_EQ(m.get_string("image_file"), "alpine-test.raw");
  EXPECT_EQ(m.get_string("image_format"), "raw");
  EXPECT_EQ(m.get_string("image_size"), "4194304");
  EXPECT_EQ(m.get_string("virtual_size"), "4194304");
  std::string built = m.get_string("built").value_or("");
  EXPECT_EQ(built.size(), 20u);
  EXPECT_EQ(r.out, "a.yaml: convert: done (built " + built +
                       ", image_file alpine-test.raw, image_format raw, image_size 4194304, "
                       "virtual_size 4194304)\n");
  EXPECT_EQ(sh("cmp disk.img alpine-test.raw"), 0);

  std::string yaml = read("a.yaml");
  Outcome again = run("convert a.yaml");
  EXPECT_EQ(again.code, 0);
  EXPECT_EQ(again.err, "cloud_helper: a.yaml: convert already done (built " + built +
                           "); use --force to redo\n");
  EXPECT_EQ(again.out, "");
  EXPECT_EQ(read("a.yaml"), yaml);

  // checksum: sidecars that sha256sum -c accepts, then a skip.
  Outcome sums = run("checksum a.yaml");
  ASSERT_EQ(sums.code, 0) << sums.err;
  EXPECT_EQ(sh("sha256sum -c --status alpine-test.raw.sha256 && sha512sum -c --status "
               "alpine-test.raw.sha512 && md5sum -c --status alpine-test.raw.md5"),
            0);
  EXPECT_EQ(read("alpine-test.raw.sha256").substr(64), "  alpine-test.raw\n");
  m = meta("a.yaml");
  const MetaValue* checksums = m.get("checksums");
  ASSERT_TRUE(checksums && checksums->is_map());
  ASSERT_EQ(checksums->map().size(), 3u);
  EXPECT_EQ(checksums->map()[0].first, "sha256");
  EXPECT_EQ(checksums->map()[0].second.scalar(), read("alpine-test.raw.sha256").substr(0, 64));
  Outcome skip = run("checksum a.yaml");
  EXPECT_EQ(skip.code, 0);
  EXPECT_EQ(skip.err,
            "cloud_helper: a.yaml: checksum already done (sha256, sha512, md5); use --force to redo\n");

  // --force rebuilds and drops the checksums of the old bytes.
  Outcome forced = run("--force convert a.yaml");
  EXPECT_EQ(forced.code, 0) << forced.err;
  EXPECT_FALSE(meta("a.yaml").has("checksums"));
  EXPECT_EQ(list_dir(dir_.path()).count("alpine-test.raw.sha256"), 0u);
}

TEST_F(Cli, ConvertInPlaceAndSameFileRefusal) {
  ASSERT_EQ(sh("truncate -s 1M img.raw"), 0);
  write("a.yaml", "name: img\ncloud: aws\nlocal_image: img.raw\n");
  Outcome r = run("convert a.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(meta("a.yaml").get_string("image_file"), "img.raw");
  write("b.yaml", "name: img\ncloud: aws\nimage_format: raw\nlocal_image: img.raw\n");
  ASSERT_EQ(sh("truncate -s 1M img.vhd"), 0);
  write("c.yaml", "name: img\ncloud: azure\nlocal_image: img.vhd\n");
  expect_bad_input("convert c.yaml", "c.yaml",
                   "cloud_helper: c.yaml: convert: output img.vhd is local_image itself, a raw "
                   "image, not vhd; rename local_image or set image_format\n");
}

TEST_F(Cli, DryRunChangesNothing) {
  make_image();
  std::string yaml = read("a.yaml");
  std::set<std::string> files = list_dir(dir_.path());
  Outcome r = run("convert --dry-run a.yaml");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "a.yaml: convert: would convert disk.img (raw) to alpine-test.raw (raw)\n");
  EXPECT_EQ(read("a.yaml"), yaml);
  EXPECT_EQ(list_dir(dir_.path()), files);
}

TEST_F(Cli, JsonOutputIsOneObjectPerImage) {
  make_image("a.yaml");
  write("b.yaml", "name: beta\ncloud: nocloud\nimage_format: raw\nlocal_image: disk.img\n");
  Outcome r = run("convert --output json --no-progress a.yaml b.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  std::vector<nlohmann::json> objs;
  while (std::getline(lines, line)) objs.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(objs.size(), 2u);
  EXPECT_EQ(objs[0]["image"], "a.yaml");
  EXPECT_EQ(objs[0]["action"], "convert");
  EXPECT_EQ(objs[0]["status"], "done");
  EXPECT_EQ(objs[0]["changes"]["image_size"], 4194304);
  EXPECT_EQ(objs[0]["changes"]["image_file"], "alpine-test.raw");
  EXPECT_TRUE(objs[0]["error"].is_null());
  EXPECT_EQ(objs[1]["image"], "b.yaml");
  EXPECT_EQ(objs[1]["status"], "done");
  EXPECT_EQ(objs[1]["changes"]["image_file"], "beta.raw");

  Outcome state = run("state --output json a.yaml");
  ASSERT_EQ(state.code, 0);
  auto s = nlohmann::json::parse(state.out);
  EXPECT_EQ(s["status"], "done");
  EXPECT_EQ(s["steps"]["built"], meta("a.yaml").get_string("built").value_or(""));
  EXPECT_TRUE(s["steps"]["uploaded"].is_null());

  Outcome bad = run("upload --output json a.yaml");
  EXPECT_EQ(bad.code, 2);
  auto b = nlohmann::json::parse(bad.out);
  EXPECT_EQ(b["status"], "failed");
  EXPECT_EQ(b["error"], "a.yaml: upload: no storage_url (set it to s3://bucket/prefix/)");
}

TEST_F(Cli, StateChangesNothing) {
  make_image();
  ASSERT_EQ(run("convert a.yaml").code, 0);
  std::string yaml = read("a.yaml");
  ASSERT_EQ(sh("rm a.yaml.lock"), 0);
  Outcome r = run("state a.yaml");
  EXPECT_EQ(r.code, 0);
  std::string built = meta("a.yaml").get_string("built").value_or("");
  EXPECT_EQ(r.out,
            "a.yaml: alpine-test (aws)\n"
            "  built      done     " + built + "\n"
            "  checksums  pending\n"
            "  signed     pending\n"
            "  uploaded   pending\n"
            "  imported   pending\n"
            "  published  pending\n"
            "  released   pending\n"
            "  artifacts  none\n");
  EXPECT_EQ(read("a.yaml"), yaml);
  EXPECT_EQ(list_dir(dir_.path()).count("a.yaml.lock"), 0u);
}

TEST_F(Cli, SignRunsTheCommand) {
  make_image("a.yaml", "signing_cmd: \"cp {file} signed-copy && echo signed {name} >&2\"\n");
  ASSERT_EQ(run("convert a.yaml").code, 0);
  Outcome r = run("sign a.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "signed alpine-test\n");
  EXPECT_TRUE(meta("a.yaml").get_string("signed").has_value());
  EXPECT_EQ(sh("cmp signed-copy alpine-test.raw"), 0);

  make_image("b.yaml", "signing_cmd: \"echo no key >&2; exit 7\"\n");
  ASSERT_EQ(sh("sed -i 's/alpine-test/beta/' b.yaml"), 0);
  ASSERT_EQ(run("convert b.yaml").code, 0);
  std::string before = read("b.yaml");
  Outcome f = run("sign b.yaml");
  EXPECT_EQ(f.code, 1);
  EXPECT_EQ(f.err, "no key\ncloud_helper: b.yaml: sign: signing_cmd exited with status 7\n");
  EXPECT_EQ(read("b.yaml"), before);
  EXPECT_FALSE(meta("b.yaml").has("signed"));
}

TEST_F(Cli, ReleaseRunsTheCommandOncePublished) {
  write("r.yaml",
        "name: alpine test's\ncloud: aws\npublished: 2026-01-02T03:04:05Z\n"
        "release_cmd: \"printf '%s|%s|%s' {name} {cloud} '{nope}' > released.txt; exit $EXIT\"\n");
  Outcome failing = run("release r.yaml", "EXIT=4");
  EXPECT_EQ(failing.code, 1);
  EXPECT_EQ(failing.err, "cloud_helper: r.yaml: release: release_cmd exited with status 4\n");
  EXPECT_FALSE(meta("r.yaml").has("released"));
  Outcome ok = run("release r.yaml", "EXIT=0");
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(read("released.txt"), "alpine test's|aws|{nope}");
  EXPECT_TRUE(meta("r.yaml").has("released"));
  Outcome skip = run("release r.yaml");
  EXPECT_EQ(skip.code, 0);
  EXPECT_EQ(skip.err.rfind("cloud_helper: r.yaml: release already done (released ", 0), 0u);

  expect_bad_input("rollback r.yaml", "r.yaml",
                   "cloud_helper: r.yaml: rollback: refused: the image was released (" +
                       meta("r.yaml").get_string("released").value_or("") +
                       "); rollback only undoes unpublished upload/import\n");
}

TEST_F(Cli, RollbackWithNothingToUndo) {
  make_image();
  Outcome r = run("rollback a.yaml");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.err, "cloud_helper: a.yaml: rollback: nothing to roll back\n");
}

TEST_F(Cli, StandaloneConvertAndChecksum) {
  make_image();
  Outcome c = run("convert -i disk.img -o copy.raw -O raw");
  EXPECT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(c.out, "");
  EXPECT_EQ(sh("cmp disk.img copy.raw"), 0);
  expect_bad_input("convert -i disk.img -o disk.img -O raw", "a.yaml",
                   "cloud_helper: convert: output disk.img is the input file\n");
  expect_bad_input("convert -i disk.img -o x -O qcow3", "a.yaml",
                   "cloud_helper: convert: unknown output format 'qcow3' (expected raw, vhd, "
                   "qcow2, vmdk, gce-tar)\n");
  expect_bad_input("convert -i nope.img -o x -O raw", "a.yaml",
                   "cloud_helper: nope.img: No such file or directory\n");
  expect_bad_input("convert -i disk.img -O raw", "a.yaml",
                   "cloud_helper: convert: the standalone form needs -i SRC, -o DST and -O FORMAT\n");

  Outcome s = run("checksum -i disk.img -a sha512,md5,sha256");
  ASSERT_EQ(s.code, 0) << s.err;
  ASSERT_EQ(sh("sha512sum disk.img > expect && md5sum disk.img >> expect && sha256sum disk.img >> expect"), 0);
  EXPECT_EQ(s.out, read("expect"));
  Outcome d = run("checksum -i disk.img");
  ASSERT_EQ(sh("sha256sum disk.img > expect2 && sha512sum disk.img >> expect2"), 0);
  EXPECT_EQ(d.out, read("expect2"));
  expect_bad_input("checksum -i disk.img -a sha256,crc7", "a.yaml",
                   "cloud_helper: unknown checksum algorithm 'crc7' (expected sha256, sha512, md5)\n");
  Outcome j = run("checksum --output json -i disk.img -a md5");
  ASSERT_EQ(j.code, 0);
  auto obj = nlohmann::json::parse(j.out);
  EXPECT_EQ(obj["checksums"]["md5"], read("expect").substr(139, 32));
}

}  // namespace
}  // namespace ch
