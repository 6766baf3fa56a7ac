// S3 against moto behind the gap proxy (CLOUD_HELPER_AWS_ENDPOINT,
// tests/test_aws_env.h). Every test works in buckets of its own, so tests
// never see each other's objects or uploads. boto3 is the outside oracle for
// what landed on the server.
//
// moto verifies neither Content-MD5 nor the signed payload hash (checked:
// wrong values are accepted; the gap proxy checks some), so the digests we
// send are checked here against OpenSSL-independent values (formats/checksum)
// and the part ETags moto computes from the bytes it received.
#include "clouds/aws/s3.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/file.h"
#include "clouds/aws/s3_multipart.h"
#include "formats/checksum.h"
#include "tests/test_aws_env.h"
#include "tests/test_util.h"

namespace ch {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr uint64_t kMiB = 1ull << 20;

std::string file_sha256(const std::string& path) {
  auto d = checksum_file(path, {"sha256"});
  CH_CHECK(d.ok());
  return (*d)[0].hex;
}

class S3Test : public test::AwsTest {
 protected:
  void SetUp() override {
    test::AwsTest::SetUp();
    if (HasFatalFailure()) return;
    RetryPolicy retry;
    retry.max_attempts = 3;
    retry.base_delay = std::chrono::milliseconds(10);
    retry.max_delay = std::chrono::milliseconds(50);
    aws_ = std::make_unique<test::AwsTestClient>(aws().endpoint, test::AwsKeys{"test", "testsecret"}, retry);
    client_ = aws_->client.get();
    bucket_ = new_bucket();
  }

  // A fresh bucket, unique to this test and run.
  std::string new_bucket(const std::string& region = "us-east-1") {
    std::string name = test::unique_name("s3");
    Status st = s3_create_bucket(*client_, region, name);
    EXPECT_TRUE(st.ok()) << st.message();
    return name;
  }

  S3Url url(const std::string& key) { return S3Url{bucket_, key}; }

  // Compares the object's bytes with PATH's, streaming both.
  void expect_object_equals_file(const S3Url& u, const std::string& path) {
    auto file = File::open_read(path);
    ASSERT_TRUE(file.ok());
    uint64_t offset = 0;
    bool same = true;
    Status st = s3_get_object(*client_, "us-east-1", u, [&](std::string_view chunk) {
      std::string local(chunk.size(), '\0');
      if (!file->pread_full(offset, local.data(), local.size()).ok() || local != chunk) same = false;
      offset += chunk.size();
      return same;
    });
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_TRUE(same);
    EXPECT_EQ(offset, *file->size());
  }

  std::string make_file(const std::string& name, uint64_t size, uint64_t seed = 1) {
    std::string path = dir_ / name;
    Status st = test::make_sparse_file(path, size, {{0, size, false}}, seed);
    CH_CHECK(st.ok());
    return path;
  }

  test::TempDir dir_;
  std::unique_ptr<test::AwsTestClient> aws_;
  AwsClient* client_ = nullptr;
  std::string bucket_;
};

// ---------------------------------------------------------------------------
// Pure functions

TEST(S3UrlTest, ParsesObjectsAndPrefixes) {
  auto u = parse_s3_url("s3://my-bucket.images/dir/disk.raw");
  ASSERT_TRUE(u.ok()) << u.message();
  EXPECT_EQ(u->bucket, "my-bucket.images");
  EXPECT_EQ(u->key, "dir/disk.raw");
  EXPECT_FALSE(u->is_prefix());
  EXPECT_EQ(s3_url_string(*u), "s3://my-bucket.images/dir/disk.raw");

  auto p = parse_s3_url("s3://bucket/prefix/");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->key, "prefix/");
  EXPECT_TRUE(p->is_prefix());
  EXPECT_EQ(s3_object_url(*p, "disk.raw").key, "prefix/disk.raw");
  EXPECT_EQ(s3_object_url(*u, "other.raw").key, "dir/disk.raw");

  auto bare = parse_s3_url("s3://bucket");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->key, "");
  EXPECT_EQ(s3_object_url(*bare, "x").key, "x");
  // Keys are raw bytes: nothing is decoded.
  EXPECT_EQ(parse_s3_url("s3://bucket/a%20b+c d")->key, "a%20b+c d");
}

TEST(S3UrlTest, RejectsBadUrlsWithTheRule) {
  EXPECT_EQ(parse_s3_url("https://b/k").message(), "'https://b/k': not an s3:// URL");
  EXPECT_EQ(parse_s3_url("s3:///k").message(), "s3:///k: no bucket name");
  EXPECT_EQ(parse_s3_url("s3://Bad_Name/k").message(),
            "s3://Bad_Name/k: invalid S3 bucket name 'Bad_Name': must use only lowercase letters, "
            "digits, '.' and '-'");
  EXPECT_EQ(parse_s3_url("s3://ab/k").message(),
            "s3://ab/k: invalid S3 bucket name 'ab': must be 3 to 63 characters long");
  EXPECT_THAT(parse_s3_url("s3://" + std::string(64, 'a')).message(), HasSubstr("3 to 63"));
  EXPECT_THAT(parse_s3_url("s3://-abc/k").message(), HasSubstr("must begin and end with a letter or digit"));
  EXPECT_THAT(parse_s3_url("s3://abc-/k").message(), HasSubstr("must begin and end"));
  EXPECT_THAT(parse_s3_url("s3://a..b/k").message(), HasSubstr("two adjacent periods"));
  EXPECT_THAT(parse_s3_url("s3://192.168.5.4/k").message(), HasSubstr("IP address"));
  EXPECT_THAT(parse_s3_url("s3://xn--abc/k").message(), HasSubstr("reserved prefix 'xn--'"));
  EXPECT_THAT(parse_s3_url("s3://sthree-x/k").message(), HasSubstr("reserved prefix 'sthree-'"));
  EXPECT_THAT(parse_s3_url("s3://abc-s3alias/k").message(), HasSubstr("reserved suffix '-s3alias'"));
  EXPECT_THAT(parse_s3_url("s3://abc--ol-s3/k").message(), HasSubstr("reserved suffix '--ol-s3'"));
  EXPECT_THAT(parse_s3_url("s3://abc.mrap/k").message(), HasSubstr("reserved suffix '.mrap'"));
  EXPECT_EQ(parse_s3_url("s3://bucket/" + std::string(1025, 'k')).message(),
            "s3://bucket/" + std::string(1025, 'k') + ": S3 object key longer than 1024 bytes");
  EXPECT_TRUE(parse_s3_url("s3://bucket/" + std::string(1024, 'k')).ok());
  EXPECT_TRUE(parse_s3_url("s3://1.2.3.4.5/k").ok());  // not an IPv4 form
}

TEST(S3PartLayoutTest, AutomaticAndExplicitSizes) {
  auto a = s3_part_layout(70 * kMiB, 0);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->part_size, 16 * kMiB);
  EXPECT_EQ(a->count, 5u);
  EXPECT_EQ(a->length(5, 70 * kMiB), 6 * kMiB);
  EXPECT_EQ(a->offset(2), 16 * kMiB);

  // 200 GiB needs parts above 16 MiB to stay within 10000: 21 MiB (whole MiB).
  auto big = s3_part_layout(200ull << 30, 0);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->part_size, 21 * kMiB);
  EXPECT_LE(big->count, 10000u);

  auto empty = s3_part_layout(0, 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->count, 0u);

  EXPECT_EQ(s3_part_layout(10 * kMiB, 5 * kMiB)->count, 2u);
  EXPECT_EQ(s3_part_layout(10 * kMiB, kMiB).message(), "part size 1048576 is outside S3's 5 MiB..5 GiB");
  EXPECT_EQ(s3_part_layout(10 * kMiB, (5ull << 30) + 1).message(),
            "part size 5368709121 is outside S3's 5 MiB..5 GiB");
  EXPECT_EQ(s3_part_layout(60ull << 30, 5 * kMiB).message(),
            "part size 5242880 splits 60 GiB into 12288 parts; S3 allows 10000");
  EXPECT_THAT(s3_part_layout(60ull << 40, 0).message(), HasSubstr("exceeds S3's largest multipart object"));
}

TEST(S3DigestTest, RangeDigestsMatchIndependentHashes) {
  test::TempDir dir;
  std::string path = dir / "f";
  ASSERT_TRUE(test::make_sparse_file(path, 3 * kMiB + 123, {{kMiB / 2, 2 * kMiB, false}}).ok());
  auto file = File::open_read(path);
  ASSERT_TRUE(file.ok());
  const uint64_t off = kMiB / 3, len = 2 * kMiB + 7;  // spans chunk boundaries, data and holes
  std::string bytes(len, '\0');
  ASSERT_TRUE(file->pread_full(off, bytes.data(), len).ok());
  auto d = digest_file_range(*file, off, len);
  ASSERT_TRUE(d.ok()) << d.message();
  EXPECT_EQ(d->md5_hex, test::digest_hex(bytes, "md5"));
  EXPECT_EQ(d->sha256_hex, test::digest_hex(bytes, "sha256"));
  EXPECT_EQ(d->md5_base64, content_md5(bytes));
  // RFC 1321 test suite: MD5("abc") = 900150983cd24fb0d6963f7d28e17f72.
  EXPECT_EQ(content_md5("abc"), "kAFQmDzST7DWlj99KOF/cg==");
  EXPECT_EQ(content_md5(""), "1B2M2Y8AsgTpgAmY7PhCfg==");

  auto past_end = digest_file_range(*file, 3 * kMiB, kMiB);
  EXPECT_FALSE(past_end.ok());
  EXPECT_THAT(past_end.message(), HasSubstr(path));
}

TEST(S3OptionsTest, ChecksHeadersBeforeSending) {
  S3UploadOptions o;
  o.metadata = {{"Build-Id", "42"}};
  o.tags = {{"project", "a b&c"}};
  o.sha256 = std::string(64, 'a');
  o.content_type = "application/octet-stream";
  ASSERT_TRUE(check_s3_object_options(o).ok());
  std::vector<HttpHeader> h = s3_object_headers(o);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h[0].name, "Content-Type");
  EXPECT_EQ(h[1].name, "x-amz-tagging");
  EXPECT_EQ(h[1].value, "project=a%20b%26c");
  EXPECT_EQ(h[2].name, "x-amz-meta-build-id");
  EXPECT_EQ(h[3].name, "x-amz-meta-sha256");

  S3UploadOptions bad = o;
  bad.metadata = {{"bad name", "x"}};
  EXPECT_EQ(check_s3_object_options(bad).message(),
            "S3 metadata name 'bad name': use only letters, digits, '-' and '_'");
  bad.metadata = {{"n", "caf\xc3\xa9"}};
  EXPECT_EQ(check_s3_object_options(bad).message(), "S3 metadata 'n': the value must be printable US-ASCII");
  bad.metadata = {{"n", std::string(3000, 'x')}};
  EXPECT_THAT(check_s3_object_options(bad).message(), HasSubstr("exceeds S3's 2 KB"));
  bad = o;
  bad.sha256 = "ABC";
  EXPECT_EQ(check_s3_object_options(bad).message(), "sha256 'ABC' is not 64 lowercase hex digits");
  bad = o;
  for (int i = 0; i < 10; ++i) bad.tags["t" + std::to_string(i)] = "v";  // plus "project"
  EXPECT_EQ(check_s3_object_options(bad).message(), "11 S3 object tags; S3 allows 10");
}

// ---------------------------------------------------------------------------
// Against moto

TEST_F(S3Test, SmallFileIsOnePutObjectWithMetadata) {
  std::string path = make_file("small.raw", 3 * kMiB + 17);
  S3UploadOptions o;
  o.part_size = 5 * kMiB;
  o.sha256 = file_sha256(path);
  o.content_type = "application/octet-stream";
  o.metadata = {{"image", "alpine"}};
  std::atomic<uint64_t> progress{0};
  o.progress = [&](uint64_t d) { progress += d; };
  bool started = false;
  o.on_started = [&](const std::string&) {
    started = true;
    return Status();
  };
  auto r = s3_upload_file(*client_, "us-east-1", url("img/small.raw"), path, o);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FALSE(r->multipart);
  EXPECT_FALSE(started);
  EXPECT_EQ(progress.load(), 3 * kMiB + 17);
  EXPECT_EQ(r->object.size, 3 * kMiB + 17);
  auto f = File::open_read(path);
  auto d = digest_file_range(*f, 0, *f->size());
  EXPECT_EQ(r->object.etag, d->md5_hex);

  auto head = s3_head_object(*client_, "us-east-1", url("img/small.raw"));
  ASSERT_TRUE(head.ok()) << head.message();
  ASSERT_TRUE(head->has_value());
  EXPECT_EQ((*head)->size, 3 * kMiB + 17);
  EXPECT_EQ((*head)->etag, d->md5_hex);
  EXPECT_EQ((*head)->content_type, "application/octet-stream");
  EXPECT_EQ((*head)->metadata.at("sha256"), o.sha256);
  EXPECT_EQ((*head)->metadata.at("image"), "alpine");
  expect_object_equals_file(url("img/small.raw"), path);
}

TEST_F(S3Test, EmptyFileAndSmallSidecars) {
  std::string path = dir_ / "empty";
  ASSERT_TRUE(File::create(path).ok());
  auto r = s3_upload_file(*client_, "us-east-1", url("empty.raw"), path, {});
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->object.size, 0u);
  auto got = s3_get_object_bytes(*client_, "us-east-1", url("empty.raw"));
  ASSERT_TRUE(got.ok()) << got.message();
  EXPECT_EQ(*got, "");

  auto put = s3_put_object_bytes(*client_, "us-east-1", url("disk.raw.sha256"), "abc  disk.raw\n", "text/plain");
  ASSERT_TRUE(put.ok()) << put.message();
  EXPECT_EQ(put->etag, test::digest_hex("abc  disk.raw\n", "md5"));
  EXPECT_EQ(*s3_get_object_bytes(*client_, "us-east-1", url("disk.raw.sha256")), "abc  disk.raw\n");
  ASSERT_TRUE(s3_delete_object(*client_, "us-east-1", url("disk.raw.sha256")).ok());
  auto gone = s3_head_object(*client_, "us-east-1", url("disk.raw.sha256"));
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  EXPECT_TRUE(s3_delete_object(*client_, "us-east-1", url("disk.raw.sha256")).ok());  // again: fine
}

TEST_F(S3Test, MultipartUploadOfSparseFileReadsBackEqual) {
  // 70 MiB, mostly holes with data runs crossing part boundaries.
  std::string path = dir_ / "disk.raw";
  const uint64_t size = 70 * kMiB + 4321;
  ASSERT_TRUE(test::make_sparse_file(path, size,
                                     {{0, kMiB, false},
                                      {5 * kMiB - 100, 200, false},
                                      {33 * kMiB, 9 * kMiB, false},
                                      {size - 5000, 5000, false}})
                  .ok());
  S3UploadOptions o;
  o.part_size = 5 * kMiB;
  o.parallel = 4;
  o.tags = {{"project", "cloud helper"}};
  std::atomic<uint64_t> progress{0};
  o.progress = [&](uint64_t d) { progress += d; };
  std::string started_id;
  o.on_started = [&](const std::string& id) {
    started_id = id;
    return Status();
  };
  auto r = s3_upload_file(*client_, "us-east-1", url("images/disk.raw"), path, o);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_TRUE(r->multipart);
  EXPECT_EQ(r->parts_total, 15u);
  EXPECT_EQ(r->parts_sent, 15u);
  EXPECT_EQ(r->parts_reused, 0u);
  EXPECT_FALSE(started_id.empty());
  EXPECT_EQ(r->upload_id, started_id);
  EXPECT_EQ(progress.load(), size);
  EXPECT_EQ(r->object.size, size);
  EXPECT_THAT(r->object.etag, ::testing::EndsWith("-15"));

  expect_object_equals_file(url("images/disk.raw"), path);
  auto py = aws().boto3(
      "b = s3.get_object(Bucket='" + bucket_ + "', Key='images/disk.raw')['Body'].read()\n"
      "print(len(b), hashlib.sha256(b).hexdigest())\n"
      "print(s3.get_object_tagging(Bucket='" + bucket_ + "', Key='images/disk.raw')['TagSet'])\n");
  ASSERT_TRUE(py.ok()) << py.message();
  EXPECT_EQ(*py, std::to_string(size) + " " + file_sha256(path) + "\n" +
                           "[{'Key': 'project', 'Value': 'cloud helper'}]\n");
  auto uploads = s3_list_uploads(*client_, "us-east-1", bucket_);
  ASSERT_TRUE(uploads.ok());
  EXPECT_TRUE(uploads->empty());
}

TEST_F(S3Test, ResumeSendsOnlyMissingOrChangedParts) {
  std::string path = make_file("disk.raw", 18 * kMiB + 5);  // parts 5,5,5,3 MiB+5
  std::string other = make_file("other.raw", 18 * kMiB + 5, 2);
  S3Url dst = url("resume/disk.raw");
  S3UploadOptions o;
  o.part_size = 5 * kMiB;
  o.parallel = 3;
  auto id = s3_create_multipart_upload(*client_, "us-east-1", dst, o);
  ASSERT_TRUE(id.ok()) << id.message();
  // A previous run sent parts 1 and 3, and part 2 with other bytes (the file
  // changed, or the part was torn): 1 and 3 are kept, 2 and 4 are sent.
  auto f = File::open_read(path);
  auto g = File::open_read(other);
  for (uint32_t n : {1u, 3u}) {
    auto d = digest_file_range(*f, (n - 1) * 5 * kMiB, 5 * kMiB);
    ASSERT_TRUE(s3_upload_part(*client_, "us-east-1", dst, *id, n, *f, (n - 1) * 5 * kMiB, 5 * kMiB, *d).ok());
  }
  auto d2 = digest_file_range(*g, 5 * kMiB, 5 * kMiB);
  auto p2 = s3_upload_part(*client_, "us-east-1", dst, *id, 2, *g, 5 * kMiB, 5 * kMiB, *d2);
  ASSERT_TRUE(p2.ok()) << p2.message();
  EXPECT_EQ(p2->etag, d2->md5_hex);  // moto's ETag is the MD5 of what it received

  auto before = s3_list_parts(*client_, "us-east-1", dst, *id, /*page_size=*/1);  // three pages
  ASSERT_TRUE(before.ok()) << before.message();
  ASSERT_EQ(before->size(), 3u);
  EXPECT_EQ((*before)[0].number, 1u);
  EXPECT_EQ((*before)[2].number, 3u);
  EXPECT_EQ((*before)[0].size, 5 * kMiB);

  o.resume_upload_id = *id;
  bool started = false;
  o.on_started = [&](const std::string&) {
    started = true;
    return Status();
  };
  std::atomic<uint64_t> progress{0};
  o.progress = [&](uint64_t d) { progress += d; };
  auto r = s3_upload_file(*client_, "us-east-1", dst, path, o);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FALSE(started);
  EXPECT_EQ(r->upload_id, *id);
  EXPECT_EQ(r->parts_total, 4u);
  EXPECT_EQ(r->parts_reused, 2u);
  EXPECT_EQ(r->parts_sent, 2u);
  EXPECT_EQ(progress.load(), 18 * kMiB + 5);
  expect_object_equals_file(dst, path);
}

TEST_F(S3Test, ResumeOfAGoneUploadStartsANewOne) {
  std::string path = make_file("disk.raw", 11 * kMiB);
  S3UploadOptions o;
  o.part_size = 5 * kMiB;
  o.resume_upload_id = "no-such-upload-id";
  std::string started_id;
  o.on_started = [&](const std::string& id) {
    started_id = id;
    return Status();
  };
  auto r = s3_upload_file(*client_, "us-east-1", url("d.raw"), path, o);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FALSE(started_id.empty());
  EXPECT_NE(r->upload_id, "no-such-upload-id");
  EXPECT_EQ(r->upload_id, started_id);
  EXPECT_EQ(r->parts_sent, 3u);
  expect_object_equals_file(url("d.raw"), path);
}

TEST_F(S3Test, AbortLeavesNoUploadAndIsRepeatable) {
  S3UploadOptions o;
  auto id = s3_create_multipart_upload(*client_, "us-east-1", url("a/x.raw"), o);
  ASSERT_TRUE(id.ok());
  auto id2 = s3_create_multipart_upload(*client_, "us-east-1", url("b/y.raw"), o);
  ASSERT_TRUE(id2.ok());
  auto all = s3_list_uploads(*client_, "us-east-1", bucket_);
  ASSERT_TRUE(all.ok()) << all.message();
  EXPECT_EQ(all->size(), 2u);
  auto under_a = s3_list_uploads(*client_, "us-east-1", bucket_, "a/");
  ASSERT_TRUE(under_a.ok());
  ASSERT_EQ(under_a->size(), 1u);
  EXPECT_EQ((*under_a)[0].key, "a/x.raw");
  EXPECT_EQ((*under_a)[0].upload_id, *id);
  EXPECT_FALSE((*under_a)[0].initiated.empty());

  ASSERT_TRUE(s3_abort_upload(*client_, "us-east-1", url("a/x.raw"), *id).ok());
  EXPECT_TRUE(s3_list_uploads(*client_, "us-east-1", bucket_, "a/")->empty());
  Status again = s3_abort_upload(*client_, "us-east-1", url("a/x.raw"), *id);
  EXPECT_TRUE(again.ok()) << again.message();
  EXPECT_EQ(s3_list_uploads(*client_, "us-east-1", bucket_)->size(), 1u);
}

TEST_F(S3Test, FailingOnStartedAbortsTheNewUpload) {
  std::string path = make_file("disk.raw", 11 * kMiB);
  S3UploadOptions o;
  o.part_size = 5 * kMiB;
  o.on_started = [](const std::string&) { return Status(Error{"IMAGE.yaml: disk full"}); };
  auto r = s3_upload_file(*client_, "us-east-1", url("d.raw"), path, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "IMAGE.yaml: disk full");
  EXPECT_TRUE(s3_list_uploads(*client_, "us-east-1", bucket_)->empty());
  EXPECT_FALSE(s3_head_object(*client_, "us-east-1", url("d.raw"))->has_value());
}

TEST_F(S3Test, WrongBucketIsAClearError) {
  std::string path = make_file("small.raw", 1000);
  S3Url nowhere{"ch-s3test-no-such-bucket", "k.raw"};
  auto r = s3_upload_file(*client_, "us-east-1", nowhere, path, {});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.message(), StartsWith("S3 PutObject s3://ch-s3test-no-such-bucket/k.raw: HTTP 404 "
                                      "NoSuchBucket: The specified bucket does not exist (request id "));
  EXPECT_EQ(r.error().code, "NoSuchBucket");
  EXPECT_EQ(r.error().http_status, 404);

  std::string big = make_file("big.raw", 6 * kMiB);
  S3UploadOptions o;
  o.part_size = 5 * kMiB;
  auto m = s3_upload_file(*client_, "us-east-1", nowhere, big, o);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.message(), StartsWith("S3 CreateMultipartUpload s3://ch-s3test-no-such-bucket/k.raw: HTTP 404 NoSuchBucket"));

  auto region = s3_bucket_region(*client_, "ch-s3test-no-such-bucket");
  ASSERT_FALSE(region.ok());
  EXPECT_THAT(region.message(), StartsWith("S3 HeadBucket ch-s3test-no-such-bucket: HTTP 404 NoSuchBucket"));
  EXPECT_EQ(region.error().code, "NoSuchBucket");
}

TEST_F(S3Test, BadLocalInputsFailBeforeSending) {
  std::string path = make_file("small.raw", 1000);
  EXPECT_EQ(s3_upload_file(*client_, "us-east-1", url("dir/"), path, {}).message(),
            "uploading " + path + " to s3://" + bucket_ + "/dir/: the destination is a prefix, not an object key");
  S3UploadOptions o;
  o.part_size = kMiB;
  EXPECT_EQ(s3_upload_file(*client_, "us-east-1", url("k"), path, o).message(),
            "uploading " + path + " to s3://" + bucket_ + "/k: part size 1048576 is outside S3's 5 MiB..5 GiB");
  o = {};
  o.parallel = 0;
  EXPECT_THAT(s3_upload_file(*client_, "us-east-1", url("k"), path, o).message(), HasSubstr("parallel must be at least 1"));
  auto missing = s3_upload_file(*client_, "us-east-1", url("k"), dir_ / "missing", {});
  EXPECT_THAT(missing.message(), HasSubstr(dir_ / "missing"));
  EXPECT_FALSE(s3_head_object(*client_, "us-east-1", url("k"))->has_value());
}

TEST_F(S3Test, SameSizeAndSha256OnServerSkipsTheUpload) {
  std::string path = make_file("disk.raw", 11 * kMiB);
  S3UploadOptions o;
  o.part_size = 5 * kMiB;
  o.sha256 = file_sha256(path);
  auto first = s3_upload_file(*client_, "us-east-1", url("d.raw"), path, o);
  ASSERT_TRUE(first.ok()) << first.message();
  EXPECT_FALSE(first->already_present);

  // A stale upload id from an interrupted run is aborted, not left behind.
  auto stale = s3_create_multipart_upload(*client_, "us-east-1", url("d.raw"), o);
  ASSERT_TRUE(stale.ok());
  o.resume_upload_id = *stale;
  std::atomic<uint64_t> progress{0};
  o.progress = [&](uint64_t d) { progress += d; };
  auto second = s3_upload_file(*client_, "us-east-1", url("d.raw"), path, o);
  ASSERT_TRUE(second.ok()) << second.message();
  EXPECT_TRUE(second->already_present);
  EXPECT_EQ(second->parts_sent, 0u);
  EXPECT_EQ(second->object.size, 11 * kMiB);
  EXPECT_EQ(second->object.etag, first->object.etag);
  EXPECT_EQ(progress.load(), 11 * kMiB);
  EXPECT_TRUE(s3_list_uploads(*client_, "us-east-1", bucket_)->empty());

  o.resume_upload_id.clear();
  o.skip_if_present = false;  // --force
  auto forced = s3_upload_file(*client_, "us-east-1", url("d.raw"), path, o);
  ASSERT_TRUE(forced.ok());
  EXPECT_FALSE(forced->already_present);
  EXPECT_EQ(forced->parts_sent, 3u);

  // Different content under the same name: uploaded again.
  std::string changed = make_file("disk2.raw", 11 * kMiB, 7);
  o.skip_if_present = true;
  o.sha256 = file_sha256(changed);
  auto third = s3_upload_file(*client_, "us-east-1", url("d.raw"), changed, o);
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE(third->already_present);
  expect_object_equals_file(url("d.raw"), changed);
}

TEST_F(S3Test, KeysWithSpecialCharactersRoundTrip) {
  const std::vector<std::string> keys = {
      "dir with space/disk image.raw", "unicode/\xc3\xbcnic\xc3\xb6" "d\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac.raw",
      "plus/a+b=c&d?e#f%20g.raw", "odd//double/../dots/~tilde;semi:colon,comma@at!.raw"};
  std::string small = make_file("s.raw", 777);
  std::string big = make_file("b.raw", 6 * kMiB);
  S3UploadOptions o;
  o.part_size = 5 * kMiB;
  std::string expected_list;
  for (const std::string& key : keys) {
    auto r = s3_upload_file(*client_, "us-east-1", url(key), small, {});
    ASSERT_TRUE(r.ok()) << key << ": " << r.message();
    auto m = s3_upload_file(*client_, "us-east-1", url(key + ".multi"), big, o);
    ASSERT_TRUE(m.ok()) << key << ": " << m.message();
    auto head = s3_head_object(*client_, "us-east-1", url(key));
    ASSERT_TRUE(head.ok() && head->has_value()) << key;
    EXPECT_EQ((*head)->size, 777u);
    expect_object_equals_file(url(key + ".multi"), big);
  }
  // The keys on the server are exactly ours (nothing double-encoded).
  auto py = aws().boto3("for o in s3.list_objects_v2(Bucket='" + bucket_ + "')['Contents']:\n"
                        "    sys.stdout.buffer.write(o['Key'].encode() + b'\\n')\n");
  ASSERT_TRUE(py.ok()) << py.message();
  std::vector<std::string> all;
  for (const std::string& k : keys) {
    all.push_back(k);
    all.push_back(k + ".multi");
  }
  std::sort(all.begin(), all.end());
  std::string want;
  for (const std::string& k : all) want += k + "\n";
  EXPECT_EQ(*py, want);
}

TEST_F(S3Test, BucketRegionAndCreation) {
  std::string eu = new_bucket("eu-west-2");
  auto r = s3_bucket_region(*client_, eu);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(*r, "eu-west-2");
  auto us = s3_bucket_region(*client_, bucket_);
  ASSERT_TRUE(us.ok()) << us.message();
  EXPECT_EQ(*us, "us-east-1");
  // Creating a bucket we already own is fine (re-runs of a demo).
  Status again = s3_create_bucket(*client_, "eu-west-2", eu);
  EXPECT_TRUE(again.ok()) << again.message();
  EXPECT_EQ(s3_create_bucket(*client_, "us-east-1", "Bad_Bucket").message(),
            "invalid S3 bucket name 'Bad_Bucket': must use only lowercase letters, digits, '.' and '-'");

  std::string path = make_file("s.raw", 100);
  auto up = s3_upload_file(*client_, "eu-west-2", S3Url{eu, "k"}, path, {});
  ASSERT_TRUE(up.ok()) << up.message();
}

TEST_F(S3Test, ManyPartsAreListedAcrossPages) {
  S3Url dst = url("pages.raw");
  std::string path = make_file("p.raw", 5 * kMiB);
  auto f = File::open_read(path);
  auto id = s3_create_multipart_upload(*client_, "us-east-1", dst, {});
  ASSERT_TRUE(id.ok());
  auto d = digest_file_range(*f, 0, 1000);
  for (uint32_t n = 1; n <= 7; ++n) {
    ASSERT_TRUE(s3_upload_part(*client_, "us-east-1", dst, *id, n, *f, 0, 1000, *d).ok());
  }
  auto parts = s3_list_parts(*client_, "us-east-1", dst, *id, /*page_size=*/3);
  ASSERT_TRUE(parts.ok()) << parts.message();
  ASSERT_EQ(parts->size(), 7u);
  for (uint32_t n = 1; n <= 7; ++n) {
    EXPECT_EQ((*parts)[n - 1].number, n);
    EXPECT_EQ((*parts)[n - 1].etag, d->md5_hex);
  }
  auto gone = s3_list_parts(*client_, "us-east-1", dst, "nope");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, "NoSuchUpload");
  EXPECT_THAT(gone.message(), StartsWith("S3 ListParts of s3://" + bucket_ + "/pages.raw: HTTP 404 NoSuchUpload"));
}

}  // namespace
}  // namespace ch
