// BlobClient and upload_page_blob against Azurite (tests/azure/emulators.py),
// checked independently with Microsoft's SDK (tests/azure/blob_check.js):
// the sparse upload's bytes, Content-MD5 and page ranges, raw + footer on the
// fly, resume, If-None-Match and --force, SharedKey rejection, and faults
// from the fault proxy. Skipped unless CLOUD_HELPER_AZURITE_URL is set (CTest
// sets it through the "azure" fixture).
#include <algorithm>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "base/file.h"
#include "clouds/azure/blob.h"
#include "clouds/signing/digest.h"
#include "formats/formats.h"
#include "tests/test_util.h"

namespace ch {
namespace {

constexpr const char* kDevKey =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
constexpr uint64_t kMiB = 1u << 20;
constexpr uint64_t kChunk = 4 * kMiB;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

AzureCloud public_cloud() {
  return AzureCloud{"AzureCloud", "https://login.microsoftonline.com", "https://management.azure.com",
                    "https://management.azure.com/.default", "core.windows.net",
                    "https://storage.azure.com/.default"};
}

StorageAuth dev_auth(const std::string& key = kDevKey) {
  StorageAuth a;
  a.account = "devstoreaccount1";
  a.key_base64 = key;
  a.source = "test";
  return a;
}

// A fixed VHD file as the upload's source.
PageBlobSource vhd_source(const std::string& path) {
  PageBlobSource s;
  s.path = path;
  return s;
}

RetryPolicy test_retries() {
  RetryPolicy p;
  p.max_attempts = 12;
  p.base_delay = std::chrono::milliseconds(5);
  p.max_delay = std::chrono::milliseconds(50);
  p.max_total_sleep = std::chrono::milliseconds(20000);
  return p;
}

// A unique container per test: tests run in parallel against one Azurite.
std::string unique_container(const std::string& tag) {
  std::random_device rd;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", rd());
  return "ch-" + tag + "-" + std::to_string(getpid()) + "-" + buf;
}

// A 64 MiB disk with a few MiB of data scattered, as a fixed VHD (raw data +
// footer) and as the raw file alone.
struct TestDisk {
  std::string raw, vhd;
  uint64_t vhd_size = 0;
};

TestDisk make_disk(const test::TempDir& dir, uint64_t seed) {
  TestDisk d{dir / "disk.raw", dir / "disk.vhd", 64 * kMiB + 512};
  std::vector<test::DataRun> runs = {{0, 100 * 1024},        {5 * kMiB + 3, kMiB},
                                     {20 * kMiB, 2 * kMiB},  {40 * kMiB - 10, 20},
                                     {48 * kMiB, kMiB, true}, {63 * kMiB, kMiB}};
  EXPECT_TRUE(test::make_sparse_file(d.raw, 64 * kMiB, runs, seed).ok());
  EXPECT_TRUE(test::make_sparse_file(d.vhd, 64 * kMiB, runs, seed).ok());
  auto footer = vhd_fixed_footer(64 * kMiB, "disk.vhd");
  EXPECT_TRUE(footer.ok()) << footer.message();
  std::fstream f(d.vhd, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(64 * kMiB));
  f.write(reinterpret_cast<const char*>(footer->data()), 512);
  return d;
}

// What upload_page_blob sends of PATH: per CHUNK, the non-zero 512-byte
// pages, runs at most 4096 bytes apart sent as one (PageBlobUploadOptions::
// merge_gap_bytes, 4096); as merged [start, end] ranges, and their bytes.
std::pair<std::vector<std::pair<uint64_t, uint64_t>>, uint64_t> nonzero_ranges(const std::string& path,
                                                                                uint64_t chunk = kChunk) {
  std::ifstream f(path, std::ios::binary);
  std::vector<std::pair<uint64_t, uint64_t>> out;
  uint64_t bytes = 0;
  std::string buf(chunk, '\0');
  for (uint64_t off = 0;; off += chunk) {
    f.read(buf.data(), static_cast<std::streamsize>(chunk));
    uint64_t n = static_cast<uint64_t>(f.gcount());
    if (n == 0) break;
    std::vector<std::pair<uint64_t, uint64_t>> pieces;  // [start, end) in the file
    for (uint64_t at = 0; at < n; at += 512) {
      uint64_t len = std::min<uint64_t>(512, n - at);
      if (std::all_of(buf.begin() + at, buf.begin() + at + len, [](char c) { return c == 0; })) continue;
      if (!pieces.empty() && off + at - pieces.back().second <= 4096) {
        pieces.back().second = off + at + len;
      } else {
        pieces.push_back({off + at, off + at + len});
      }
    }
    for (const auto& [a, e] : pieces) {
      bytes += e - a;
      if (!out.empty() && out.back().second + 1 == a) {
        out.back().second = e - 1;
      } else {
        out.push_back({a, e - 1});
      }
    }
    if (n < chunk) break;
  }
  return {out, bytes};
}

// The union of two sets of merged [start, end] ranges.
std::vector<std::pair<uint64_t, uint64_t>> range_union(std::vector<std::pair<uint64_t, uint64_t>> a,
                                                       const std::vector<std::pair<uint64_t, uint64_t>>& b) {
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const auto& r : a) {
    if (!out.empty() && r.first <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, r.second);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

std::string file_md5_base64(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::string hex = test::digest_hex(data, "md5");
  uint8_t raw[16];
  for (int i = 0; i < 16; ++i) raw[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return base64_encode({raw, 16});
}

class AzureBlobAzurite : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = env("CLOUD_HELPER_AZURITE_URL");
    if (url_.empty()) GTEST_SKIP() << "CLOUD_HELPER_AZURITE_URL not set (run through CTest, or see tests/azure/README.md)";
    node_dir_ = env("CLOUD_HELPER_AZURE_NODE_DIR");
    if (node_dir_.empty()) node_dir_ = std::string(CLOUD_HELPER_SOURCE_DIR) + "/tests/azure";
    client_ = std::make_unique<BlobClient>(http_, dev_auth(), test_retries());
  }

  BlobLocation blob(const std::string& container, const std::string& name, const std::string& base = "") {
    auto loc = parse_blob_url((base.empty() ? url_ : base) + "/" + container + "/" + name, AzureEnv{}, public_cloud());
    EXPECT_TRUE(loc.ok()) << loc.message();
    return *loc;
  }

  BlobLocation new_container(const std::string& tag) {
    BlobLocation c = blob(unique_container(tag), "");
    Status st = client_->create_container(c);
    EXPECT_TRUE(st.ok()) << st.message();
    return c;
  }

  nlohmann::json check(const BlobLocation& b, const std::string& file) {
    test::CommandResult r = test::run_command("node " + test::shell_quote(node_dir_ + "/blob_check.js") +
                                              " compare " + test::shell_quote(b.url()) + " " + test::shell_quote(file) +
                                              " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.exit_code == 0 ? nlohmann::json::parse(r.output) : nlohmann::json::object();
  }

  // The blob holds FILE's bytes, its MD5, and pages exactly where FILE's
  // CHUNK-sized pieces are not all zero.
  void expect_blob_is(const BlobLocation& b, const std::string& file, uint64_t chunk = kChunk,
                      const std::vector<std::pair<uint64_t, uint64_t>>& also_written = {}) {
    nlohmann::json j = check(b, file);
    EXPECT_EQ(j.value("equal", false), true) << j.dump();
    EXPECT_EQ(j.value("contentMD5", ""), file_md5_base64(file)) << j.dump();
    auto [sent, bytes] = nonzero_ranges(file, chunk);
    auto ranges = range_union(sent, also_written);
    std::vector<std::pair<uint64_t, uint64_t>> got;
    for (const auto& r : j.value("pageRanges", nlohmann::json::array())) {
      uint64_t start = r[0], end = r[1];
      if (!got.empty() && got.back().second + 1 == start) {
        got.back().second = end;  // the service may report adjacent writes apart
      } else {
        got.push_back({start, end});
      }
    }
    EXPECT_EQ(got, ranges) << j.dump();
  }

  std::string url_, node_dir_;
  HttpClient http_;
  std::unique_ptr<BlobClient> client_;
};

TEST_F(AzureBlobAzurite, SparseVhdUploadMatchesTheFile) {
  test::TempDir dir;
  TestDisk disk = make_disk(dir, 1);
  BlobLocation b = new_container("sparse").with_name("images/disk one.vhd");
  PageBlobUploadOptions opts;
  opts.metadata = {{"sha256", "abc"}};
  std::atomic<uint64_t> progress{0};
  opts.progress = [&](uint64_t n) { progress += n; };
  auto r = upload_page_blob(*client_, b, vhd_source(disk.vhd), opts);
  ASSERT_TRUE(r.ok()) << r.message();
  auto [ranges, bytes] = nonzero_ranges(disk.vhd);
  EXPECT_EQ(r->blob_size, disk.vhd_size);
  EXPECT_EQ(r->bytes_sent, bytes);
  EXPECT_EQ(r->zero_bytes_skipped, disk.vhd_size - bytes);
  EXPECT_EQ(r->md5_base64, file_md5_base64(disk.vhd));
  EXPECT_EQ(progress.load(), disk.vhd_size);
  expect_blob_is(b, disk.vhd);
  auto props = client_->properties(b);
  ASSERT_TRUE(props.ok() && props->has_value()) << props.message();
  EXPECT_EQ((*props)->blob_type, "PageBlob");
  EXPECT_EQ((*props)->content_type, "application/octet-stream");
  EXPECT_EQ((*props)->metadata["sha256"], "abc");
  auto names = client_->list_blobs(b.with_name(""), "images/");
  ASSERT_TRUE(names.ok()) << names.message();
  EXPECT_EQ(*names, std::vector<std::string>{"images/disk one.vhd"});
}

TEST_F(AzureBlobAzurite, RawWithFooterGivesTheVhdBytes) {
  test::TempDir dir;
  TestDisk disk = make_disk(dir, 2);
  BlobLocation b = new_container("raw").with_name("disk.vhd");
  auto r = upload_page_blob(*client_, b, {disk.raw, true, "disk.vhd"}, {});
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->blob_size, disk.vhd_size);
  expect_blob_is(b, disk.vhd);
}

TEST_F(AzureBlobAzurite, ResumeSendsOnlyTheRest) {
  test::TempDir dir;
  TestDisk disk = make_disk(dir, 3);
  BlobLocation b = new_container("resume").with_name("disk.vhd");
  // An earlier run: the blob and its first two non-zero chunks (0 and 4 MiB).
  ASSERT_TRUE(client_->create_page_blob(b, disk.vhd_size, {}, true).ok());
  auto file = File::open_read(disk.vhd);
  ASSERT_TRUE(file.ok());
  uint64_t early = 0;
  for (uint64_t off : {uint64_t{0}, 4 * kMiB}) {
    std::string data(kChunk, '\0');
    ASSERT_TRUE(file->pread_full(off, data.data(), kChunk).ok());
    ASSERT_TRUE(client_->put_page(b, off, data, nullptr, "").ok());
    early += kChunk;
  }
  PageBlobUploadOptions opts;
  opts.resume = true;
  int created = 0;
  opts.on_created = [&] {
    ++created;
    return ok_status();
  };
  auto r = upload_page_blob(*client_, b, vhd_source(disk.vhd), opts);
  ASSERT_TRUE(r.ok()) << r.message();
  auto [ranges, bytes] = nonzero_ranges(disk.vhd);
  EXPECT_EQ(created, 1);
  // Whole chunks already written count as resumed; the pages the upload
  // would have sent in them are not sent.
  uint64_t in_early = 0;
  for (const auto& [a, e] : ranges)
    if (a < early) in_early += std::min<uint64_t>(e + 1, early) - a;
  EXPECT_EQ(r->resumed_bytes, early);
  EXPECT_EQ(r->bytes_sent, bytes - in_early);
  expect_blob_is(b, disk.vhd, kChunk, {{0, early - 1}});
}

TEST_F(AzureBlobAzurite, IfNoneMatchRefusesAndOverwriteReplaces) {
  test::TempDir dir1, dir2;
  TestDisk first = make_disk(dir1, 4), second = make_disk(dir2, 5);
  BlobLocation b = new_container("force").with_name("disk.vhd");
  ASSERT_TRUE(upload_page_blob(*client_, b, vhd_source(first.vhd), {}).ok());
  auto again = upload_page_blob(*client_, b, vhd_source(second.vhd), {});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, "BlobAlreadyExists");
  EXPECT_EQ(again.error().http_status, 409);
  EXPECT_EQ(again.message().rfind("Put Blob (page blob) " + b.az_url() +
                                      ": HTTP 409 BlobAlreadyExists: The specified blob already exists. (request id ",
                                  0),
            0u)
      << again.message();
  expect_blob_is(b, first.vhd);
  PageBlobUploadOptions force;
  force.overwrite = true;
  auto r = upload_page_blob(*client_, b, vhd_source(second.vhd), force);
  ASSERT_TRUE(r.ok()) << r.message();
  expect_blob_is(b, second.vhd);
}

TEST_F(AzureBlobAzurite, WrongKeyIsACleanAuthenticationError) {
  BlobLocation c = new_container("auth");
  std::string other_key = base64_encode(bytes_of(std::string(64, 'k')));
  BlobClient wrong(http_, dev_auth(other_key), test_retries());
  Status st = wrong.create_page_blob(c.with_name("x.vhd"), 512, {}, true);
  ASSERT_FALSE(st.ok());
  // Azure says AuthenticationFailed; Azurite 3.35 says AuthorizationFailure
  // with the same message.
  const std::string code = st.error().code;
  EXPECT_TRUE(code == "AuthenticationFailed" || code == "AuthorizationFailure") << code;
  EXPECT_EQ(st.error().http_status, 403);
  EXPECT_EQ(st.message().rfind("Put Blob (page blob) " + c.with_name("x.vhd").az_url() + ": HTTP 403 " + code +
                                   ": Server failed to authenticate the request.",
                               0),
            0u)
      << st.message();
  EXPECT_NE(st.message().find("(request id "), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find('\n'), std::string::npos);
  EXPECT_EQ(st.message().find(other_key), std::string::npos);
}

TEST_F(AzureBlobAzurite, FaultsStillGiveAnEqualBlob) {
  std::string fault_url = env("CLOUD_HELPER_AZURITE_FAULT_URL");
  std::string fault_endpoint = env("CLOUD_HELPER_AZURE_FAULT_ENDPOINT");
  if (fault_url.empty() || fault_endpoint.empty()) GTEST_SKIP() << "no fault proxy configured";
  test::TempDir dir;
  TestDisk disk = make_disk(dir, 6);
  BlobLocation direct = new_container("faults").with_name("disk.vhd");
  BlobLocation via_proxy = blob(direct.container, direct.name, fault_url);
  const std::string rule = direct.container;
  auto post = [&](const std::string& method, const std::string& body) {
    auto req = request_from_url(fault_endpoint + "/_fault/config?rule=" + rule);
    EXPECT_TRUE(req.ok());
    req->method = method;
    req->body = body;
    req->headers.push_back({"Content-Type", "application/json"});
    auto resp = http_.send(*req);
    EXPECT_TRUE(resp.ok() && resp->status == 200) << (resp.ok() ? resp->body : resp.message());
  };
  nlohmann::json cfg = {{"match", "devstoreaccount1/" + direct.container + "/"},
                        {"sequence", {"drop", "status500", "status503"}},  // at least one of each
                        {"drop", 0.1}, {"status500", 0.1}, {"status503", 0.1}, {"seed", 7}};
  post("POST", cfg.dump());
  BlobClient proxied(http_, dev_auth(), test_retries());
  PageBlobUploadOptions opts;
  opts.chunk_bytes = kMiB;  // more requests, more faults
  auto r = upload_page_blob(proxied, via_proxy, vhd_source(disk.vhd), opts);
  // Read the stats before the rule goes.
  auto stats_req = request_from_url(fault_endpoint + "/_fault/stats");
  auto stats = http_.send(*stats_req);
  post("DELETE", "");
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_TRUE(stats.ok());
  nlohmann::json s = nlohmann::json::parse(stats->body);
  int faults = 0;
  nlohmann::json ours = s["faults_by_rule"].value(rule, nlohmann::json::object());
  for (const auto& [kind, n] : ours.items()) faults += n.get<int>();
  EXPECT_GT(faults, 3) << s.dump();
  expect_blob_is(direct, disk.vhd, kMiB);
}

}  // namespace
}  // namespace ch
