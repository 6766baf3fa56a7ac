// cloud: gcp, quotas and rate limits, end to end against the fake Google
// Cloud (tests/gcp/fake_gcp.py, POST /_fake/quota and throttle faults):
//  - a resource quota (IMAGES) refusing images.insert at once (403
//    quotaExceeded) or failing its operation (QUOTA_EXCEEDED): exit 1, one
//    line naming the call or operation, the status, the reason and Google's
//    message; not retried; the YAML exactly as before; once the quota is
//    lifted the re-run imports, and there is one image.
//  - rate quotas (Compute's 403 rateLimitExceeded, Cloud Storage's 429)
//    on the upload's chunks, images.insert and the operation poll: retried
//    with backoff, and everything finishes once.
#include "tests/gcp_steps_fixture.h"

namespace ch::test::gcp_steps {
namespace {

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::string last_line(const std::string& text) {
  size_t end = text.find_last_not_of('\n');
  if (end == std::string::npos) return "";
  size_t start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
}

// The YAML without metadata_updated, which every save sets.
std::string content(const std::string& yaml) {
  std::string out;
  size_t at = 0;
  while (at < yaml.size()) {
    size_t end = yaml.find('\n', at);
    end = end == std::string::npos ? yaml.size() : end + 1;
    if (yaml.compare(at, 17, "metadata_updated:") != 0) out += yaml.substr(at, end - at);
    at = end;
  }
  return out;
}

class GcpQuota : public GcpSteps {
 protected:
  // An uploaded image in a project of its own (the quota is per project).
  void uploaded(uint64_t seed) {
    project_ = "quota-" + name_.substr(name_.size() - 12);
    make_disk("disk.img", 8 * kMiB, seed);
    write("image.yaml", yaml_inputs("", "", project_));
    for (const char* action : {"convert", "upload"}) {
      StepRun r = run(std::string(action) + " image.yaml");
      ASSERT_EQ(r.code, 0) << action << ": " << r.err;
    }
  }
  int images() {
    int n = 0;
    json st = state();  // kept: items() of a temporary would dangle
    for (auto& [k, v] : st["images"].items()) n += k.rfind(project_ + "/", 0) == 0;
    return n;
  }
  void set_quota(const json& images, const std::string& where = "request") {
    fake("POST", "/_fake/quota", json{{"project", project_}, {"images", images}, {"where", where}}.dump());
  }
  // Quota lifted: the re-run imports; one image, READY, read back from the fake.
  void rerun_converges() {
    set_quota(nullptr);
    StepRun again = run("import image.yaml");
    ASSERT_EQ(again.code, 0) << again.err;
    EXPECT_EQ(images(), 1) << "one image, no duplicate";
    json image = api("GET", image_path(project_));
    ASSERT_TRUE(image.is_object());
    EXPECT_EQ(image["status"], "READY");
    ImageMetadata m = meta();
    EXPECT_EQ(m.get_string("import_id").value_or(""), "projects/" + project_ + "/global/images/" + name_);
    EXPECT_TRUE(m.get_string("imported"));
    EXPECT_FALSE(op_get(m, "import", "request_id"));
    EXPECT_EQ(run("import image.yaml").code, 0) << "already imported";
    EXPECT_EQ(images(), 1);
  }

  std::string project_;
};

TEST_F(GcpQuota, ImagesQuotaRefusingTheInsertIsOneLineNotRetriedAndTheYamlIsUnchanged) {
  uploaded(21);
  set_quota(0);
  std::string before = content(read("image.yaml"));
  StepRun im = run("import image.yaml");
  EXPECT_EQ(im.code, 1) << im.err;
  EXPECT_EQ(last_line(im.err),
            "cloud_helper: image.yaml: import: images.insert projects/" + project_ + "/global/images/" + name_ +
                ": HTTP 403 quotaExceeded: Quota 'IMAGES' exceeded.  Limit: 0.0 globally. (a project quota: raise it "
                "or delete unused images, then run import again)")
      << im.err;
  EXPECT_EQ(count(im.err, "retrying"), 0) << "a resource quota is final: " << im.err;
  EXPECT_EQ(content(read("image.yaml")), before) << "nothing recorded: no claim, no request id, not imported";
  EXPECT_EQ(images(), 0);
  rerun_converges();
}

TEST_F(GcpQuota, ImagesQuotaFailingTheOperationNamesItAndTheRerunStartsAfresh) {
  uploaded(22);
  set_quota(0, "operation");
  std::string before = content(read("image.yaml"));
  StepRun im = run("import image.yaml");
  EXPECT_EQ(im.code, 1) << im.err;
  std::string line = last_line(im.err);
  std::string head = "cloud_helper: image.yaml: import: images.insert projects/" + project_ + "/global/images/" + name_ +
                     ": operation operation-";
  EXPECT_EQ(line.rfind(head, 0), 0u) << line;
  EXPECT_NE(line.find(" failed (HTTP 403): QUOTA_EXCEEDED: Quota 'IMAGES' exceeded.  Limit: 0.0 globally. (a project "
                      "quota: raise it"),
            std::string::npos)
      << line;
  EXPECT_EQ(count(im.err, "retrying"), 0) << im.err;
  EXPECT_EQ(content(read("image.yaml")), before) << "the failed operation and the claim withdrawn";
  EXPECT_EQ(images(), 0);
  rerun_converges();
}

TEST_F(GcpQuota, RateLimitedUploadInsertAndPollAreRetriedAndFinishOnce) {
  project_ = "rate-" + name_.substr(name_.size() - 12);
  make_disk("disk.img", 8 * kMiB, 23);
  write("image.yaml", yaml_inputs("", "", project_));
  ASSERT_EQ(run("convert image.yaml").code, 0);
  // Rate quotas say "Quota exceeded" too (Compute's message); only the
  // reason tells them from a resource quota.
  fake("POST", "/_fake/faults?rule=" + name_ + "-put",
       json{{"match", "^PUT /upload/storage/v1/b/" + bucket_ + "/o$"}, {"sequence", {"throttle", "ok", "throttle"}}}.dump());
  fake("POST", "/_fake/faults?rule=" + name_ + "-insert",
       json{{"match", "^POST /compute/v1/projects/" + project_ + "/global/images$"},
            {"sequence", {"throttle", "throttle", "throttle"}}}.dump());
  fake("POST", "/_fake/faults?rule=" + name_ + "-poll",
       json{{"match", "^GET /compute/v1/projects/" + project_ + "/global/operations/"}, {"sequence", {"throttle"}}}.dump());
  StepRun up = run("upload image.yaml");
  StepRun im = run("import image.yaml");
  for (const char* rule : {"-put", "-insert", "-poll"}) fake("DELETE", "/_fake/faults?rule=" + name_ + rule);
  ASSERT_EQ(up.code, 0) << up.err;
  ASSERT_EQ(im.code, 0) << im.err;
  EXPECT_EQ(count(up.err, "after HTTP 429 rateLimitExceeded"), 2) << up.err;
  EXPECT_EQ(count(im.err, "retrying POST"), 3) << im.err;
  EXPECT_EQ(count(im.err, "after HTTP 403 rateLimitExceeded"), 4) << im.err;
  ImageMetadata m = meta();
  std::string url = m.get_string("upload_url").value_or("");
  EXPECT_EQ(object_bytes(url.substr(url.find('/', 5) + 1)), read(m.get_string("image_file").value_or("")));
  EXPECT_EQ(images(), 1);
  EXPECT_EQ(api("GET", image_path(project_))["status"], "READY");
}

}  // namespace
}  // namespace ch::test::gcp_steps
