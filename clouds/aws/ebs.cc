// The four EBS direct calls (REST-JSON). ebs_import.cc drives them.
#include "clouds/aws/ebs.h"

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "clouds/signing/sigv4.h"
#include "helper/output.h"

namespace ch {

namespace {

std::string call(const std::string& action, const std::string& region) {
  return "EBS " + action + " (" + region + ")";
}

Result<nlohmann::json> parse_json(const std::string& what, const std::string& body) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Error{what + ": unreadable JSON answer"};
  return doc;
}

// Numbers that AWS sends as JSON numbers and moto sometimes as strings.
uint64_t json_u64(const nlohmann::json& doc, const char* name) {
  auto it = doc.find(name);
  if (it == doc.end()) return 0;
  if (it->is_number_unsigned() || it->is_number_integer()) return it->get<uint64_t>();
  if (it->is_string()) return std::strtoull(it->get<std::string>().c_str(), nullptr, 10);
  return 0;
}

std::string json_str(const nlohmann::json& doc, const char* name) {
  auto it = doc.find(name);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// EBS's "slow down" answers (400 RequestThrottledException,
// ConcurrentLimitExceededException, ThrottlingException, named in the
// x-amzn-ErrorType header) are retried by the shared retry policy in
// AwsClient (clouds/http/retry.h), not here. PutSnapshotBlock also waits out
// the block service lagging a new snapshot (coldsnap #43): 404
// ResourceNotFoundException for up to 2 minutes, 1 s doubling to 16 s with
// jitter, scaled by CLOUD_HELPER_POLL_SCALE.
Result<HttpResponse> send(AwsClient& client, const AwsClient::RestCall& c, bool new_snapshot_lag) {
  const auto lag_end = std::chrono::steady_clock::now() + poll_scaled(std::chrono::minutes(2));
  std::minstd_rand jitter(std::random_device{}());
  auto delay = poll_scaled(std::chrono::seconds(1));
  for (;;) {
    auto response = client.rest(c);
    if (response.ok()) return response;
    const std::string& code = response.error().code;
    const bool lag = new_snapshot_lag && code == "ResourceNotFoundException" &&
                     std::chrono::steady_clock::now() < lag_end;
    if (!lag) return response;
    auto wait = std::chrono::milliseconds(
        std::uniform_int_distribution<int64_t>(delay.count() / 2, std::max<int64_t>(delay.count(), 1))(jitter));
    log_info(c.what + ": " + code + ", retrying in " + std::to_string(wait.count()) + " ms");
    std::this_thread::sleep_for(wait);
    delay = std::min(delay * 2, poll_scaled(std::chrono::seconds(16)));
  }
}

}  // namespace

Sha256Digest ebs_linear_checksum(const std::vector<Sha256Digest>& digests) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  CH_CHECK(ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1);
  for (const Sha256Digest& d : digests) CH_CHECK(EVP_DigestUpdate(ctx.get(), d.data(), d.size()) == 1);
  Sha256Digest out;
  unsigned int len = 0;
  CH_CHECK(EVP_DigestFinal_ex(ctx.get(), out.data(), &len) == 1 && len == out.size());
  return out;
}

Result<EbsSnapshot> ebs_start_snapshot(AwsClient& client, const std::string& region,
                                       const EbsStartSnapshotRequest& r) {
  const std::string what = call("StartSnapshot", region);
  // EBS limits: VolumeSize 1..65536 GiB, Timeout 10..4320 minutes, ClientToken ≤ 64.
  if (r.volume_size_gib < 1 || r.volume_size_gib > 65536)
    return Error{what + ": volume size " + std::to_string(r.volume_size_gib) +
                 " GiB is outside 1..65536"};
  if (r.timeout_minutes < 10 || r.timeout_minutes > 4320)
    return Error{what + ": timeout " + std::to_string(r.timeout_minutes) +
                 " minutes is outside 10..4320"};
  if (r.client_token.size() > 64) return Error{what + ": client token longer than 64 characters"};
  nlohmann::json body = {{"VolumeSize", r.volume_size_gib}, {"Timeout", r.timeout_minutes}};
  if (!r.client_token.empty()) body["ClientToken"] = r.client_token;
  if (!r.description.empty()) body["Description"] = r.description;
  if (!r.tags.empty()) {
    nlohmann::json tags = nlohmann::json::array();
    for (const auto& [k, v] : r.tags) tags.push_back({{"Key", k}, {"Value", v}});
    body["Tags"] = tags;
  }
  AwsClient::RestCall c;
  c.service = AwsService::kEbs;
  c.region = region;
  c.raw_path = "/snapshots";
  c.request.method = "POST";
  c.request.headers.push_back({"Content-Type", "application/json"});
  c.request.body = body.dump();
  c.what = what;
  CH_ASSIGN(response, send(client, c, false));
  CH_ASSIGN(doc, parse_json(what, response.body));
  EbsSnapshot s;
  s.snapshot_id = json_str(doc, "SnapshotId");
  s.block_size = static_cast<uint32_t>(json_u64(doc, "BlockSize"));
  s.status = json_str(doc, "Status");
  s.volume_size_gib = json_u64(doc, "VolumeSize");
  if (s.snapshot_id.empty()) return Error{what + ": the answer has no SnapshotId"};
  return s;
}

Status ebs_put_snapshot_block(AwsClient& client, const std::string& region,
                              const std::string& snapshot_id, uint64_t index, std::string block,
                              const Sha256Digest& sha256) {
  if (block.size() != kEbsBlockSize)
    return Error{"EBS PutSnapshotBlock: block of " + std::to_string(block.size()) +
                 " bytes, not " + std::to_string(kEbsBlockSize)};
  AwsClient::RestCall c;
  c.service = AwsService::kEbs;
  c.region = region;
  c.raw_path = "/snapshots/" + snapshot_id + "/blocks/" + std::to_string(index);
  c.request.method = "PUT";
  c.request.headers = {{"Content-Type", "application/octet-stream"},
                       {"x-amz-Data-Length", std::to_string(block.size())},
                       {"x-amz-Checksum", base64_encode(sha256)},
                       {"x-amz-Checksum-Algorithm", "SHA256"}};
  c.request.body = std::move(block);
  c.payload_sha256 = hex_encode(sha256);
  c.what = "EBS PutSnapshotBlock " + std::to_string(index) + " of " + snapshot_id + " (" + region + ")";
  auto response = send(client, c, /*new_snapshot_lag=*/true);
  if (!response.ok()) return response.error();
  return {};
}

Result<std::string> ebs_complete_snapshot(AwsClient& client, const std::string& region,
                                          const std::string& snapshot_id, uint64_t changed_blocks,
                                          const Sha256Digest& aggregate) {
  const std::string what = "EBS CompleteSnapshot " + snapshot_id + " (" + region + ")";
  AwsClient::RestCall c;
  c.service = AwsService::kEbs;
  c.region = region;
  c.raw_path = "/snapshots/completion/" + snapshot_id;
  c.request.method = "POST";
  c.request.headers = {{"x-amz-ChangedBlocksCount", std::to_string(changed_blocks)}};
  // The aggregate covers the written blocks; an empty snapshot has none.
  if (changed_blocks > 0) {
    c.request.headers.push_back({"x-amz-Checksum", base64_encode(aggregate)});
    c.request.headers.push_back({"x-amz-Checksum-Algorithm", "SHA256"});
    c.request.headers.push_back({"x-amz-Checksum-Aggregation-Method", "LINEAR"});
  }
  c.what = what;
  CH_ASSIGN(response, send(client, c, false));
  CH_ASSIGN(doc, parse_json(what, response.body));
  std::string status = json_str(doc, "Status");
  if (status.empty()) return Error{what + ": the answer has no Status"};
  if (status == "error") return Error{what + ": EBS answered status error"};
  return status;
}

Result<EbsBlockList> ebs_list_snapshot_blocks(AwsClient& client, const std::string& region,
                                              const std::string& snapshot_id) {
  const std::string what = "EBS ListSnapshotBlocks " + snapshot_id + " (" + region + ")";
  EbsBlockList out;
  std::string token;
  for (;;) {
    AwsClient::RestCall c;
    c.service = AwsService::kEbs;
    c.region = region;
    c.raw_path = "/snapshots/" + snapshot_id + "/blocks";
    c.request.method = "GET";
    c.request.query.push_back({"maxResults", "10000"});  // EBS: 100..10000
    if (!token.empty()) c.request.query.push_back({"pageToken", token});
    c.what = what;
    CH_ASSIGN(response, send(client, c, false));
    CH_ASSIGN(doc, parse_json(what, response.body));
    out.block_size = static_cast<uint32_t>(json_u64(doc, "BlockSize"));
    out.volume_size_gib = json_u64(doc, "VolumeSize");
    auto blocks = doc.find("Blocks");
    if (blocks != doc.end() && blocks->is_array()) {
      for (const auto& b : *blocks) {
        if (b.is_object() && b.contains("BlockIndex")) out.indices.push_back(json_u64(b, "BlockIndex"));
      }
    }
    std::string next = json_str(doc, "NextToken");
    if (next.empty() || next == token) break;
    token = next;
  }
  std::sort(out.indices.begin(), out.indices.end());
  out.indices.erase(std::unique(out.indices.begin(), out.indices.end()), out.indices.end());
  return out;
}

}  // namespace ch
