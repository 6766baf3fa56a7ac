// Known answers from Oracle's "Request Signatures" page (Test Values: the
// draft-cavage test key, keyId and the GET/POST examples), as reproduced by
// Oracle's own SDK test (oracle/oci-go-sdk common/http_signer_test.go).
// RSASSA-PKCS1-v1_5 is deterministic, so the signatures must match exactly.
#include "clouds/oci/oci_signer.h"

#include <gtest/gtest.h>

#include "clouds/http/http_client.h"

namespace ch {
namespace {

constexpr char kKey[] = R"(-----BEGIN RSA PRIVATE KEY-----
MIICXgIBAAKBgQDCFENGw33yGihy92pDjZQhl0C36rPJj+CvfSC8+q28hxA161QF
NUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6Z4UMR7EOcpfdUE9Hf3m/hs+F
UR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJwoYi+1hqp1fIekaxsyQIDAQAB
AoGBAJR8ZkCUvx5kzv+utdl7T5MnordT1TvoXXJGXK7ZZ+UuvMNUCdN2QPc4sBiA
QWvLw1cSKt5DsKZ8UETpYPy8pPYnnDEz2dDYiaew9+xEpubyeW2oH4Zx71wqBtOK
kqwrXa/pzdpiucRRjk6vE6YY7EBBs/g7uanVpGibOVAEsqH1AkEA7DkjVH28WDUg
f1nqvfn2Kj6CT7nIcE3jGJsZZ7zlZmBmHFDONMLUrXR/Zm3pR5m0tCmBqa5RK95u
412jt1dPIwJBANJT3v8pnkth48bQo/fKel6uEYyboRtA5/uHuHkZ6FQF7OUkGogc
mSJluOdc5t6hI1VsLn0QZEjQZMEOWr+wKSMCQQCC4kXJEsHAve77oP6HtG/IiEn7
kpyUXRNvFsDE0czpJJBvL/aRFUJxuRK91jhjC68sA7NsKMGg5OXb5I5Jj36xAkEA
gIT7aFOYBFwGgQAQkWNKLvySgKbAZRTeLBacpHMuQdl1DfdntvAyqpAZ0lY0RKmW
G6aFKaqQfOXKCyWoUiVknQJAXrlgySFci/2ueKlIE1QqIiLSZ8V8OlpFLRnb1pzI
7U1yQXnTAEFYM560yJlzUpOb1V4cScGd365tiSMvxLOvTA==
-----END RSA PRIVATE KEY-----
)";

constexpr char kKeyId[] =
    "ocid1.tenancy.oc1..aaaaaaaaba3pv6wkcr4jqae5f15p2b2m2yt2j6rx32uzr4h25vqstifsfdsq/"
    "ocid1.user.oc1..aaaaaaaat5nvwcna5j6aqzjcaty5eqbb6qt2jvpkanghtgdaqedqw3rynjq/"
    "20:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34";
constexpr char kDate[] = "Thu, 05 Jan 2014 21:31:40 GMT";

std::string header(const HttpRequest& r, std::string_view name) {
  for (const HttpHeader& h : r.headers)
    if (h.name == name) return h.value;
  return "<absent>";
}

OciSignature signer() {
  auto key = load_oci_key(kKey, "");
  EXPECT_TRUE(key.ok()) << key.message();
  return {kKeyId, key.ok() ? *key : nullptr};
}

TEST(OciSigner, OracleGetExample) {
  auto r = request_from_url(
      "https://iaas.us-phoenix-1.oraclecloud.com/20160918/instances?availabilityDomain=Pjwf%3A%20PHX-AD-1"
      "&compartmentId=ocid1.compartment.oc1..aaaaaaaam3we6vgnherjq5q2idnccdflvjsnog7mlr6rtdb25gilchfeyjxa"
      "&displayName=TeamXInstances&volumeId=ocid1.volume.oc1.phx."
      "abyhqljrgvttnlx73nmrwfaux7kcvzfs3s66izvxf2h4lgvyndsdsnoiwr5q");
  ASSERT_TRUE(r.ok());
  HttpRequest req = *r;
  ASSERT_TRUE(oci_sign(req, signer(), kDate, false).ok());
  EXPECT_EQ(oci_signing_string(req, {"date", "(request-target)", "host"}),
            "date: Thu, 05 Jan 2014 21:31:40 GMT\n"
            "(request-target): get /20160918/instances?availabilityDomain=Pjwf%3A%20PHX-AD-1&compartmentId="
            "ocid1.compartment.oc1..aaaaaaaam3we6vgnherjq5q2idnccdflvjsnog7mlr6rtdb25gilchfeyjxa&displayName="
            "TeamXInstances&volumeId=ocid1.volume.oc1.phx.abyhqljrgvttnlx73nmrwfaux7kcvzfs3s66izvxf2h4lgvyndsdsnoiwr5q\n"
            "host: iaas.us-phoenix-1.oraclecloud.com");
  EXPECT_EQ(header(req, "authorization"),
            std::string("Signature version=\"1\",keyId=\"") + kKeyId +
                "\",algorithm=\"rsa-sha256\",headers=\"date (request-target) host\",signature=\""
                "GBas7grhyrhSKHP6AVIj/h5/Vp8bd/peM79H9Wv8kjoaCivujVXlpbKLjMPeDUhxkFIWtTtLBj3sUzaFj34XE6YZAHc9r2DmE4pMwOAy"
                "/kiITcZxa1oHPOeRheC0jP2dqbTll8fmTZVwKZOKHYPtrLJIJQHJjNvxFWeHQjMaR7M=\"");
  EXPECT_EQ(header(req, "x-content-sha256"), "<absent>");
}

TEST(OciSigner, OraclePostExample) {
  HttpRequest req = *request_from_url("https://iaas.us-phoenix-1.oraclecloud.com/20160918/volumeAttachments");
  req.method = "POST";
  req.body =
      "{\n"
      "    \"compartmentId\": \"ocid1.compartment.oc1..aaaaaaaam3we6vgnherjq5q2idnccdflvjsnog7mlr6rtdb25gilchfeyjxa\",\n"
      "    \"instanceId\": \"ocid1.instance.oc1.phx.abuw4ljrlsfiqw6vzzxb43vyypt4pkodawglp3wqxjqofakrwvou52gb6s5a\",\n"
      "    \"volumeId\": \"ocid1.volume.oc1.phx.abyhqljrgvttnlx73nmrwfaux7kcvzfs3s66izvxf2h4lgvyndsdsnoiwr5q\"\n"
      "}";
  ASSERT_TRUE(oci_sign(req, signer(), kDate, false).ok());
  EXPECT_EQ(header(req, "content-length"), "316");
  EXPECT_EQ(header(req, "x-content-sha256"), "V9Z20UJTvkvpJ50flBzKE32+6m2zJjweHpDMX/U4Uy0=");
  EXPECT_EQ(oci_signing_string(req, {"date", "(request-target)", "host", "content-length", "content-type",
                                     "x-content-sha256"}),
            "date: Thu, 05 Jan 2014 21:31:40 GMT\n(request-target): post /20160918/volumeAttachments\n"
            "host: iaas.us-phoenix-1.oraclecloud.com\ncontent-length: 316\ncontent-type: application/json\n"
            "x-content-sha256: V9Z20UJTvkvpJ50flBzKE32+6m2zJjweHpDMX/U4Uy0=");
  EXPECT_EQ(header(req, "authorization"),
            std::string("Signature version=\"1\",keyId=\"") + kKeyId +
                "\",algorithm=\"rsa-sha256\",headers=\"date (request-target) host content-length content-type "
                "x-content-sha256\",signature=\"Mje8vIDPlwIHmD/cTDwRxE7HaAvBg16JnVcsuqaNRim23fFPgQfLoOOxae6WqKb1uPjYE"
                "l0qIdazWaBy/Ml8DRhqlocMwoSXv0fbukP8J5N80LCmzT/FFBvIvTB91XuXI3hYfP9Zt1l7S6ieVadHUfqBedWH0itrtPJBgKmr"
                "Wso=\"");
}

TEST(OciSigner, UploadBodiesAreExemptAndPortsAreInHost) {
  HttpRequest part = *request_from_url(
      "http://127.0.0.1:8080/n/ns/b/bucket/u/dir/disk.qcow2?uploadId=abc&uploadPartNum=3");
  part.method = "PUT";
  EXPECT_TRUE(oci_body_exempt(part));
  ASSERT_TRUE(oci_sign(part, signer(), kDate, true).ok());
  EXPECT_NE(header(part, "authorization").find("headers=\"date (request-target) host\""), std::string::npos);
  EXPECT_EQ(header(part, "x-content-sha256"), "<absent>");
  EXPECT_EQ(oci_signing_string(part, {"(request-target)", "host"}),
            "(request-target): put /n/ns/b/bucket/u/dir/disk.qcow2?uploadId=abc&uploadPartNum=3\n"
            "host: 127.0.0.1:8080");

  HttpRequest shape = *request_from_url("https://iaas.r.oraclecloud.com/20160918/images/ocid1.image/shapes/VM.X");
  shape.method = "PUT";
  shape.body = "{}";
  EXPECT_FALSE(oci_body_exempt(shape));
  HttpRequest commit = *request_from_url("https://objectstorage.r.oraclecloud.com/n/ns/b/bk/u/obj?uploadId=1");
  commit.method = "POST";
  EXPECT_FALSE(oci_body_exempt(commit));
  ASSERT_TRUE(oci_sign(commit, signer(), kDate, false).ok());
  EXPECT_EQ(header(commit, "x-content-sha256"), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");  // sha256("")
  EXPECT_EQ(header(commit, "content-length"), "0");
}

TEST(OciSigner, KeyErrorsNeverQuoteTheKey) {
  auto bad = load_oci_key("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", "");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(), "the API signing key is not a PEM RSA private key");
  EXPECT_EQ(oci_http_date(std::chrono::system_clock::from_time_t(1389821500)), "Wed, 15 Jan 2014 21:31:40 GMT");
}

}  // namespace
}  // namespace ch
