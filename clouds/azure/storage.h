// Azure Storage: where a blob is, and how requests to it are authorised.
//
// Blob URLs accepted (storage_url in the YAML, with or without a blob name):
//   az://ACCOUNT/CONTAINER/[NAME]
//   https://ACCOUNT.blob.core.windows.net/CONTAINER/[NAME]   (any cloud's suffix)
//   http(s)://HOST:PORT/ACCOUNT/CONTAINER/[NAME]             path style (Azurite,
//                                                            an IP or localhost host)
// az:// resolves to the connection string's BlobEndpoint when its account
// is ACCOUNT (Azurite: http://127.0.0.1:10000/devstoreaccount1), else to
// https://ACCOUNT.blob.{cloud storage suffix}.
//
// Credentials for the account, first found:
//   1. AZURE_STORAGE_CONNECTION_STRING: AccountName + AccountKey (SharedKey),
//      or SharedAccessSignature; BlobEndpoint / DefaultEndpointsProtocol /
//      EndpointSuffix; "UseDevelopmentStorage=true" is Azurite's well-known
//      account (devstoreaccount1, http://127.0.0.1:10000/devstoreaccount1).
//   2. AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_KEY (SharedKey)
//   3. AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_SAS_TOKEN (SAS, "?" optional)
//   4. an Entra ID token for the storage scope (clouds/azure/entra.h), as
//      Authorization: Bearer (x-ms-version 2017-11-09 or later required).
// Credentials for another account than the URL's are not used (error).
// Keys and signatures are registered with add_secret().
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "base/result.h"
#include "clouds/azure/azure_env.h"
#include "clouds/azure/entra.h"
#include "clouds/http_request.h"

namespace ch {

// The x-ms-version every blob request sends.
inline constexpr std::string_view kAzureStorageVersion = "2021-08-06";

struct BlobLocation {
  std::string endpoint;   // "https://acct.blob.core.windows.net" or
                          // "http://127.0.0.1:10000/devstoreaccount1" (path style)
  std::string account;    // "acct"
  std::string container;  // "images"
  std::string name;       // "dir/disk.vhd"; "" or ending in "/" for a prefix
  // endpoint + "/" + container + "/" + name (name percent-encoded but "/").
  std::string url() const;
  // The same blob as az://account/container/name (for the YAML and messages).
  std::string az_url() const;
  // A copy with NAME appended (when this is a prefix) or replaced.
  BlobLocation with_name(std::string_view blob_name) const;
};

struct ConnectionString {
  std::map<std::string, std::string> fields;  // as given (keys case-sensitive)
  std::string account, key, sas, blob_endpoint;  // resolved, "" when absent
};
// Parses "K=V;K=V" (values may contain '='). Errors: no '=' in a part.
Result<ConnectionString> parse_connection_string(std::string_view text,
                                                 std::string_view storage_suffix = "core.windows.net");

// Parses URL per the forms above. Errors: "storage_url 'X': ..." one line.
Result<BlobLocation> parse_blob_url(std::string_view url, const AzureEnv& env, const AzureCloud& cloud);

struct StorageAuth {
  enum class Kind { kSharedKey, kSas, kBearer } kind = Kind::kSharedKey;
  std::string account;
  std::string key_base64;       // kSharedKey
  std::string sas;              // kSas, without leading '?'
  AzureTokenProvider* tokens = nullptr;  // kBearer (not owned)
  std::string scope;            // kBearer
  std::string source;           // for the log: "connection string (shared key)", ...
};
// The credentials for ACCOUNT per the order above. TOKENS may be null (then
// 4 is unavailable). Errors: none found, a connection string for another
// account, a key that is not base64.
Result<StorageAuth> resolve_storage_auth(const AzureEnv& env, const AzureCloud& cloud,
                                         std::string_view account, AzureTokenProvider* tokens);

// SharedKey, pure: the string to sign for REQUEST as Blob service version
// 2015-02-21+ defines it (verb, the standard headers with Content-Length ""
// when 0, canonicalized x-ms-* headers, canonicalized resource
// "/ACCOUNT/PATH" + "\nkey:values" of the sorted, lower-cased query). For
// a path-style URL the path already holds the account ("/ACCOUNT/ACCOUNT/c/b"
// is what Azurite expects, as the real service does for its secondary).
std::string shared_key_string_to_sign(const HttpRequest& request, std::string_view account);
// Adds "Authorization: SharedKey ACCOUNT:base64(HMAC-SHA256(key, sts))".
// REQUEST must already hold x-ms-date (or Date) and x-ms-version.
// Errors: a key that is not base64.
Status sign_shared_key(HttpRequest& request, std::string_view account, std::string_view key_base64);

// Applies AUTH to REQUEST (x-ms-date and x-ms-version added when absent):
// SharedKey signature, SAS query parameters appended, or a bearer token.
Status authorize_storage_request(HttpRequest& request, const StorageAuth& auth);

}  // namespace ch
