// BlobClient and upload_page_blob against the scripted loopback server: the
// wire form of each call, error lines, paging, and the upload's sparse,
// resumable, parallel behaviour (a small in-test page-blob store answers).
#include "clouds/azure/blob.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>

#include "base/file.h"
#include "clouds/signing/digest.h"
#include "tests/test_http_server.h"
#include "tests/test_util.h"

namespace ch {
namespace {

using test::HttpTestServer;
using test::ReceivedRequest;
using test::ScriptedResponse;

constexpr const char* kDevKey =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

// A fixed VHD file as the upload's source.
PageBlobSource vhd_source(const std::string& path) {
  PageBlobSource s;
  s.path = path;
  return s;
}

RetryPolicy fast_retries() {
  RetryPolicy p;
  p.max_attempts = 4;
  p.base_delay = std::chrono::milliseconds(1);
  p.max_delay = std::chrono::milliseconds(5);
  p.max_total_sleep = std::chrono::milliseconds(1000);
  return p;
}

StorageAuth dev_auth() {
  StorageAuth a;
  a.account = "devstoreaccount1";
  a.key_base64 = kDevKey;
  return a;
}

BlobLocation location(const HttpTestServer& server, const std::string& name) {
  BlobLocation b;
  b.endpoint = server.url("/devstoreaccount1");
  b.account = "devstoreaccount1";
  b.container = "vhds";
  b.name = name;
  return b;
}

std::string md5_b64(std::string_view s) {
  unsigned char md[16];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), md, &len, EVP_md5(), nullptr);
  return base64_encode({md, len});
}

std::string azure_error(const std::string& code, const std::string& message) {
  return "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>" + code + "</Code><Message>" + message +
         "</Message></Error>";
}

TEST(AzureBlobClient, CreatePageBlobWireForm) {
  HttpTestServer server;
  HttpClient http;
  BlobClient client(http, dev_auth(), fast_retries());
  ASSERT_TRUE(client.create_page_blob(location(server, "d/x.vhd"), 1024, {{"sha256", "ab"}}, true).ok());
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const ReceivedRequest& r = reqs[0];
  EXPECT_EQ(r.method, "PUT");
  EXPECT_EQ(r.target, "/devstoreaccount1/vhds/d/x.vhd");
  EXPECT_EQ(r.header("x-ms-blob-type"), "PageBlob");
  EXPECT_EQ(r.header("x-ms-blob-content-length"), "1024");
  EXPECT_EQ(r.header("x-ms-meta-sha256"), "ab");
  EXPECT_EQ(r.header("If-None-Match"), "*");
  EXPECT_EQ(r.header("x-ms-version"), "2021-08-06");
  EXPECT_EQ(r.header("Content-Length"), "0");
  EXPECT_EQ(r.header("Authorization").rfind("SharedKey devstoreaccount1:", 0), 0u);
  EXPECT_EQ(client.create_page_blob(location(server, "x.vhd"), 1000, {}, true).message(),
            "Put Blob (page blob) az://devstoreaccount1/vhds/x.vhd: size 1000 is not a multiple of 512");
}

TEST(AzureBlobClient, ErrorLineCodeStatusAndRequestId) {
  HttpTestServer server;
  server.enqueue({409, {{"x-ms-request-id", "req-1"}, {"x-ms-error-code", "BlobAlreadyExists"}},
                  azure_error("BlobAlreadyExists", "The specified blob already exists.\nRequestId:req-1\nTime:x")});
  HttpClient http;
  BlobClient client(http, dev_auth(), fast_retries());
  Status st = client.create_page_blob(location(server, "x.vhd"), 512, {}, true);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(),
            "Put Blob (page blob) az://devstoreaccount1/vhds/x.vhd: HTTP 409 BlobAlreadyExists: The specified "
            "blob already exists. (request id req-1)");
  EXPECT_EQ(st.error().code, "BlobAlreadyExists");
  EXPECT_EQ(st.error().http_status, 409);

  // HEAD has no body: the code comes from x-ms-error-code.
  server.enqueue({403, {{"x-ms-request-id", "req-2"}, {"x-ms-error-code", "AuthenticationFailed"}}});
  auto p = client.properties(location(server, "x.vhd"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(), "Get Blob Properties az://devstoreaccount1/vhds/x.vhd: HTTP 403 AuthenticationFailed "
                         "(request id req-2)");
  EXPECT_EQ(p.error().code, "AuthenticationFailed");
}

TEST(AzureBlobClient, ServerBusyIsRetried) {
  HttpTestServer server;
  server.enqueue({503, {}, azure_error("ServerBusy", "Egress is over the account limit.")});
  server.enqueue({201, {}});
  HttpClient http;
  BlobClient client(http, dev_auth(), fast_retries());
  ASSERT_TRUE(client.put_page(location(server, "x.vhd"), 512, std::string(512, 'a'), nullptr, md5_b64(std::string(512, 'a'))).ok());
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].target, "/devstoreaccount1/vhds/x.vhd?comp=page");
  EXPECT_EQ(reqs[1].header("x-ms-range"), "bytes=512-1023");
  EXPECT_EQ(reqs[1].header("x-ms-page-write"), "update");
  EXPECT_EQ(reqs[1].header("Content-MD5"), md5_b64(std::string(512, 'a')));
  EXPECT_EQ(reqs[1].body, std::string(512, 'a'));
  // A new x-ms-date and signature per attempt.
  EXPECT_FALSE(reqs[0].header("Authorization").empty());
}

TEST(AzureBlobClient, PutPageFromFileBody) {
  test::TempDir dir;
  std::string data(1024, 'q');
  std::ofstream(dir / "f") << "xxxx" << data;
  auto file = File::open_read(dir / "f");
  ASSERT_TRUE(file.ok());
  HttpTestServer server;
  HttpClient http;
  BlobClient client(http, dev_auth(), fast_retries());
  FileBody body{file->fd(), 4, 1024};
  ASSERT_TRUE(client.put_page(location(server, "x.vhd"), 0, {}, &body, md5_b64(data)).ok());
  EXPECT_EQ(server.requests()[0].body, data);
  EXPECT_EQ(server.requests()[0].header("Content-Length"), "1024");
}

TEST(AzureBlobClient, PageRangesFollowNextMarker) {
  HttpTestServer server;
  server.enqueue({200, {}, "<?xml version=\"1.0\" encoding=\"utf-8\"?><PageList><PageRange><Start>0</Start><End>511</End>"
                           "</PageRange><ClearRange><Start>512</Start><End>1023</End></ClearRange>"
                           "<NextMarker>m 1</NextMarker></PageList>"});
  server.enqueue({200, {}, "<PageList><PageRange><Start>8589934592</Start><End>8594128895</End></PageRange>"
                           "<NextMarker /></PageList>"});
  HttpClient http;
  BlobClient client(http, dev_auth(), fast_retries());
  auto ranges = client.page_ranges(location(server, "x.vhd"));
  ASSERT_TRUE(ranges.ok()) << ranges.message();
  ASSERT_EQ(ranges->size(), 2u);
  EXPECT_EQ((*ranges)[0].end, 511u);
  EXPECT_EQ((*ranges)[1].start, 8589934592u);
  EXPECT_EQ((*ranges)[1].end, 8594128895u);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].target, "/devstoreaccount1/vhds/x.vhd?comp=pagelist");
  EXPECT_EQ(reqs[1].target, "/devstoreaccount1/vhds/x.vhd?comp=pagelist&marker=m%201");
}

TEST(AzureBlobClient, PropertiesListDeleteSetMd5Containers) {
  HttpTestServer server;
  server.enqueue({200, {{"Content-Length", "1048576"}, {"x-ms-blob-type", "PageBlob"}, {"Content-MD5", "abc=="},
                        {"Content-Type", "application/octet-stream"}, {"ETag", "\"0x1\""}, {"x-ms-meta-Sha256", "ff"}}});
  server.enqueue({404, {{"x-ms-error-code", "BlobNotFound"}}});
  HttpClient http;
  BlobClient client(http, dev_auth(), fast_retries());
  auto p = client.properties(location(server, "x.vhd"));
  ASSERT_TRUE(p.ok() && p->has_value()) << p.message();
  EXPECT_EQ((*p)->content_length, 1048576u);
  EXPECT_EQ((*p)->blob_type, "PageBlob");
  EXPECT_EQ((*p)->content_md5, "abc==");
  EXPECT_EQ((*p)->metadata.at("sha256"), "ff");
  auto missing = client.properties(location(server, "y.vhd"));
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  server.enqueue({200, {}, "<EnumerationResults><Blobs><Blob><Name>p/a.vhd</Name></Blob></Blobs>"
                           "<NextMarker>2</NextMarker></EnumerationResults>"});
  server.enqueue({200, {}, "<EnumerationResults><Blobs><Blob><Name>p/b.vhd</Name></Blob></Blobs>"
                           "<NextMarker/></EnumerationResults>"});
  auto names = client.list_blobs(location(server, ""), "p/");
  ASSERT_TRUE(names.ok()) << names.message();
  EXPECT_EQ(*names, (std::vector<std::string>{"p/a.vhd", "p/b.vhd"}));

  server.enqueue({404, {}, azure_error("BlobNotFound", "The specified blob does not exist.")});
  EXPECT_TRUE(client.delete_blob(location(server, "gone.vhd")).ok());
  server.enqueue({200, {}});
  EXPECT_TRUE(client.set_content_md5(location(server, "x.vhd"), "bWQ1", "application/octet-stream").ok());
  server.enqueue({409, {}, azure_error("ContainerAlreadyExists", "The specified container already exists.")});
  EXPECT_TRUE(client.create_container(location(server, "")).ok());
  server.enqueue({404, {}});
  auto exists = client.container_exists(location(server, ""));
  ASSERT_TRUE(exists.ok());
  EXPECT_FALSE(*exists);

  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 8u);
  EXPECT_EQ(reqs[2].target, "/devstoreaccount1/vhds?restype=container&comp=list&prefix=p%2F");
  EXPECT_EQ(reqs[3].target, "/devstoreaccount1/vhds?restype=container&comp=list&prefix=p%2F&marker=2");
  EXPECT_EQ(reqs[4].method, "DELETE");
  EXPECT_EQ(reqs[4].header("x-ms-delete-snapshots"), "include");
  EXPECT_EQ(reqs[5].target, "/devstoreaccount1/vhds/x.vhd?comp=properties");
  EXPECT_EQ(reqs[5].header("x-ms-blob-content-md5"), "bWQ1");
  EXPECT_EQ(reqs[5].header("x-ms-blob-content-type"), "application/octet-stream");
  EXPECT_EQ(reqs[6].target, "/devstoreaccount1/vhds?restype=container");
  EXPECT_EQ(reqs[7].method, "HEAD");
}

// A page-blob store behind the scripted server, enough for upload_page_blob.
class FakePageBlob {
 public:
  explicit FakePageBlob(HttpTestServer& server) {
    server.set_handler([this](const ReceivedRequest& r) { return handle(r); });
  }
  ScriptedResponse handle(const ReceivedRequest& r) {
    std::lock_guard<std::mutex> lock(mu);
    log.push_back(r.method + " " + r.target);
    if (r.target.find("comp=page&") != std::string::npos || r.target.ends_with("comp=page")) {
      if (fail_puts) return {403, {{"x-ms-request-id", "rq"}}, azure_error("AuthorizationFailure", "No.")};
      EXPECT_EQ(r.header("Content-MD5"), md5_b64(r.body));
      std::string range = r.header("x-ms-range");  // bytes=A-B
      uint64_t a = std::stoull(range.substr(6)), b = std::stoull(range.substr(range.find('-') + 1));
      EXPECT_EQ(b - a + 1, r.body.size());
      EXPECT_TRUE(created);
      pages[a] = r.body;
      return {201, {}};
    }
    if (r.target.find("comp=pagelist") != std::string::npos) {
      std::string xml = "<PageList>";
      for (const auto& [off, data] : pages) {
        xml += "<PageRange><Start>" + std::to_string(off) + "</Start><End>" + std::to_string(off + data.size() - 1) +
               "</End></PageRange>";
      }
      return {200, {}, xml + "</PageList>"};
    }
    if (r.target.find("comp=properties") != std::string::npos) {
      md5 = r.header("x-ms-blob-content-md5");
      return {200, {}};
    }
    if (r.method == "HEAD") {
      if (!created) return {404, {}};
      return {200, {{"Content-Length", std::to_string(size)}, {"x-ms-blob-type", "PageBlob"}}};
    }
    if (r.method == "PUT") {
      if (created && r.header("If-None-Match") == "*") {
        return {409, {}, azure_error("BlobAlreadyExists", "The specified blob already exists.")};
      }
      created = true;
      size = std::stoull(r.header("x-ms-blob-content-length"));
      return {201, {}};
    }
    if (r.method == "DELETE") {
      created = false;
      pages.clear();
      return {202, {}};
    }
    return {400, {}};
  }
  // The blob's bytes.
  std::string contents() {
    std::lock_guard<std::mutex> lock(mu);
    std::string out(size, '\0');
    for (const auto& [off, data] : pages) out.replace(off, data.size(), data);
    return out;
  }

  std::mutex mu;
  bool created = false;
  bool fail_puts = false;
  uint64_t size = 0;
  std::map<uint64_t, std::string> pages;
  std::string md5;
  std::vector<std::string> log;
};

// A 4 MiB + footer "VHD": data in chunk 0 (whole) and chunk 3 (one page) of
// 64 KiB chunks, the rest zero.
std::string make_vhd(const test::TempDir& dir) {
  std::string data(4u << 20, '\0');
  for (size_t i = 0; i < 65536; ++i) data[i] = static_cast<char>(i * 7);
  for (size_t i = 3 * 65536 + 100; i < 3 * 65536 + 300; ++i) data[i] = 'z';
  data += std::string(511, 'f') + "F";
  std::ofstream(dir / "d.vhd", std::ios::binary) << data;
  return data;
}

TEST(AzurePageUpload, SparseParallelWithContentMd5) {
  test::TempDir dir;
  std::string data = make_vhd(dir);
  HttpTestServer server;
  FakePageBlob fake(server);
  HttpClient http;
  BlobClient client(http, dev_auth(), fast_retries());
  PageBlobUploadOptions opts;
  opts.parallel = 3;
  opts.chunk_bytes = 65536;
  opts.metadata = {{"src", "t"}};
  std::atomic<uint64_t> progress{0};
  int created_calls = 0;
  opts.progress = [&](uint64_t n) { progress += n; };
  opts.on_created = [&] {
    ++created_calls;
    EXPECT_TRUE(fake.pages.empty());
    return ok_status();
  };
  auto r = upload_page_blob(client, location(server, "d.vhd"), vhd_source(dir / "d.vhd"), opts);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(created_calls, 1);
  EXPECT_EQ(r->blob_size, data.size());
  // Only non-zero 512-byte pages: chunk 0 whole, one page of chunk 3, the footer.
  EXPECT_EQ(r->bytes_sent, 65536u + 512 + 512);
  EXPECT_EQ(r->put_page_requests, 3u);
  EXPECT_EQ(r->zero_bytes_skipped, data.size() - 65536 - 512 - 512);
  EXPECT_EQ(r->md5_base64, md5_b64(data));
  EXPECT_EQ(fake.md5, md5_b64(data));
  EXPECT_EQ(progress.load(), data.size());
  EXPECT_EQ(fake.contents(), data);
  EXPECT_EQ(fake.log.front(), "PUT /devstoreaccount1/vhds/d.vhd");
  EXPECT_EQ(fake.log.back(), "PUT /devstoreaccount1/vhds/d.vhd?comp=properties");

  // Again: the blob exists, If-None-Match refuses.
  auto again = upload_page_blob(client, location(server, "d.vhd"), vhd_source(dir / "d.vhd"), opts);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, "BlobAlreadyExists");
  // --force: delete, create, send.
  opts.overwrite = true;
  auto forced = upload_page_blob(client, location(server, "d.vhd"), vhd_source(dir / "d.vhd"), opts);
  ASSERT_TRUE(forced.ok()) << forced.message();
  EXPECT_EQ(fake.contents(), data);
}

TEST(AzurePageUpload, ResumeSendsOnlyMissingChunks) {
  test::TempDir dir;
  std::string data = make_vhd(dir);
  HttpTestServer server;
  FakePageBlob fake(server);
  fake.created = true;
  fake.size = data.size();
  fake.pages[0] = data.substr(0, 65536);  // chunk 0 made it last time
  HttpClient http;
  BlobClient client(http, dev_auth(), fast_retries());
  PageBlobUploadOptions opts;
  opts.parallel = 2;
  opts.chunk_bytes = 65536;
  opts.resume = true;
  opts.known_md5_hex = test::digest_hex(data, "md5");
  auto r = upload_page_blob(client, location(server, "d.vhd"), vhd_source(dir / "d.vhd"), opts);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->resumed_bytes, 65536u);
  EXPECT_EQ(r->bytes_sent, 512u + 512);
  EXPECT_EQ(r->md5_base64, md5_b64(data));
  EXPECT_EQ(fake.contents(), data);
}

TEST(AzurePageUpload, RawWithFooterPadsToWholeMiB) {
  test::TempDir dir;
  std::string raw(1000 * 1024, '\0');
  raw[5] = 'x';
  std::ofstream(dir / "d.raw", std::ios::binary) << raw;
  HttpTestServer server;
  FakePageBlob fake(server);
  HttpClient http;
  BlobClient client(http, dev_auth(), fast_retries());
  PageBlobUploadOptions opts;
  auto r = upload_page_blob(client, location(server, "d.vhd"), PageBlobSource{dir / "d.raw", true, "d.vhd"}, opts);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->blob_size, (1u << 20) + 512);
  std::string blob = fake.contents();
  EXPECT_EQ(blob.substr(0, raw.size()), raw);
  EXPECT_EQ(blob.substr(raw.size(), (1u << 20) - raw.size()), std::string((1u << 20) - raw.size(), '\0'));
  EXPECT_EQ(blob.substr(1u << 20, 8), "conectix");
  EXPECT_EQ(r->put_page_requests, 2u);  // one 4 MiB chunk: its first page and the footer
  EXPECT_EQ(r->bytes_sent, 1024u);
}

TEST(AzurePageUpload, WorkerErrorStopsTheUpload) {
  test::TempDir dir;
  std::string data(8u << 20, 'd');
  std::ofstream(dir / "d.vhd", std::ios::binary) << data;
  HttpTestServer server;
  FakePageBlob fake(server);
  fake.fail_puts = true;
  HttpClient http;
  BlobClient client(http, dev_auth(), fast_retries());
  PageBlobUploadOptions opts;
  opts.parallel = 2;
  opts.chunk_bytes = 65536;  // 128 chunks
  auto r = upload_page_blob(client, location(server, "d.vhd"), vhd_source(dir / "d.vhd"), opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message().rfind("Put Page az://devstoreaccount1/vhds/d.vhd (bytes ", 0), 0u) << r.message();
  EXPECT_NE(r.message().find("HTTP 403 AuthorizationFailure: No. (request id rq)"), std::string::npos);
  int puts = 0;
  for (const auto& l : fake.log) puts += l == "PUT /devstoreaccount1/vhds/d.vhd?comp=page";
  EXPECT_LE(puts, 4);  // the two workers stop after their first answers
  EXPECT_TRUE(fake.md5.empty());
}

TEST(AzurePageUpload, SizeChecksBeforeAnyRequest) {
  test::TempDir dir;
  std::ofstream(dir / "odd.vhd", std::ios::binary) << std::string(1000, 'a');
  HttpTestServer server;
  HttpClient http;
  BlobClient client(http, dev_auth(), fast_retries());
  auto r = upload_page_blob(client, location(server, "d.vhd"), vhd_source(dir / "odd.vhd"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "uploading " + (dir / "odd.vhd") +
                             " to az://devstoreaccount1/vhds/d.vhd: the file's size 1000 is not a positive multiple of "
                             "512 (a fixed VHD is whole sectors and a 512-byte footer)");
  PageBlobUploadOptions bad;
  bad.chunk_bytes = 1000;
  EXPECT_NE(upload_page_blob(client, location(server, "d.vhd"), vhd_source(dir / "odd.vhd"), bad).message().find("chunk size 1000"),
            std::string::npos);
  bad = {};
  bad.known_md5_hex = "xyz";
  EXPECT_NE(upload_page_blob(client, location(server, "d.vhd"), vhd_source(dir / "odd.vhd"), bad).message().find("not an MD5"),
            std::string::npos);
  EXPECT_TRUE(server.requests().empty());
}

}  // namespace
}  // namespace ch
