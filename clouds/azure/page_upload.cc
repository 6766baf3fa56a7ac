// upload_page_blob: the sparse, resumable page-blob upload of a fixed VHD
// (blob.h states the contract).
//
// One forward pass over the source: the calling thread is the reader. It
// fills chunk buffers in order, feeds the whole-image MD5 (Azure keeps it as
// the blob's Content-MD5, and the VHD's own checksums.md5 is the same
// number), finds each chunk's non-zero 512-byte pages (a new page blob reads
// as zeros, so zero pages never need sending), drops the runs a resumed blob
// already holds, and queues the rest for `parallel` workers that send them with Put Page. The buffers
// form a fixed pool of 2 x parallel chunks, so memory stays bounded however
// far the reader runs ahead; a worker returns its buffer when its page is
// written. The first failure stops the reader and every worker before their
// next request.
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/file.h"
#include "clouds/azure/blob.h"
#include "clouds/signing/digest.h"
#include "formats/formats.h"
#include "formats/zero.h"
#include "helper/output.h"

namespace ch {

namespace {

constexpr uint64_t kMaxPage = 4u << 20;                 // Azure: Put Page writes at most 4 MiB
constexpr uint64_t kMaxPageBlob = 8ull << 40;           // Azure: page blobs up to 8 TiB
const std::string kContentType = "application/octet-stream";

struct Md5Ctx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Md5Ctx() { EVP_DigestInit_ex(ctx, EVP_md5(), nullptr); }
  ~Md5Ctx() { EVP_MD_CTX_free(ctx); }
  Md5Ctx(const Md5Ctx&) = delete;
  Md5Ctx& operator=(const Md5Ctx&) = delete;
  void update(const uint8_t* p, size_t n) { EVP_DigestUpdate(ctx, p, n); }
  std::string base64() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    return base64_encode({md, len});
  }
};

std::string md5_base64(const uint8_t* p, size_t n) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(p, n, md, &len, EVP_md5(), nullptr);
  return base64_encode({md, len});
}

// "0123..ef" (32 hex digits) as base64; false when not an MD5 in hex.
bool md5_hex_to_base64(const std::string& hex, std::string* out) {
  if (hex.size() != 32) return false;
  std::array<uint8_t, 16> bytes{};
  for (size_t i = 0; i < 32; ++i) {
    char c = hex[i];
    int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (v < 0) return false;
    bytes[i / 2] = static_cast<uint8_t>(bytes[i / 2] * 16 + v);
  }
  *out = base64_encode(bytes);
  return true;
}

// The bytes of the page blob: the VHD file as is, or raw data + zero
// padding up to the virtual size + the footer.
struct BlobImage {
  File file;
  uint64_t file_size = 0;
  uint64_t size = 0;  // of the blob
  bool raw = false;
  uint64_t virtual_size = 0;
  std::array<uint8_t, 512> footer{};

  Status read(uint64_t offset, uint8_t* buf, uint64_t len) const {
    if (!raw) return file.pread_full(offset, buf, len);
    uint64_t end = offset + len;
    if (offset < file_size) {
      uint64_t n = std::min(end, file_size) - offset;
      CH_TRY(file.pread_full(offset, buf, n));
    }
    uint64_t zs = std::max(offset, file_size), ze = std::min(end, virtual_size);
    if (ze > zs) std::memset(buf + (zs - offset), 0, ze - zs);
    if (end > virtual_size) {
      uint64_t fs = std::max(offset, virtual_size);
      std::memcpy(buf + (fs - offset), footer.data() + (fs - virtual_size), end - fs);
    }
    return ok_status();
  }
};

// Whether [offset, offset+len) lies inside one of RANGES (merged, sorted).
bool covered(const std::vector<PageRange>& ranges, uint64_t offset, uint64_t len) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), offset,
                             [](uint64_t o, const PageRange& r) { return o < r.start; });
  if (it == ranges.begin()) return false;
  --it;
  return it->end >= offset + len - 1;
}

std::vector<PageRange> merge(std::vector<PageRange> in) {
  std::sort(in.begin(), in.end(), [](const PageRange& a, const PageRange& b) { return a.start < b.start; });
  std::vector<PageRange> out;
  for (const PageRange& r : in) {
    if (!out.empty() && r.start <= out.back().end + 1) {
      out.back().end = std::max(out.back().end, r.end);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

// A piece of a chunk to send: [start, start + length) within the chunk.
struct Piece {
  uint64_t start = 0;
  uint64_t length = 0;
};

struct Chunk {
  uint64_t offset = 0;
  uint64_t length = 0;
  size_t buffer = 0;
  std::vector<Piece> pieces;  // the non-zero runs of the chunk that are not already there
};

// The non-zero runs of BUF[0, LEN) in 512-byte pages: a page blob reads as
// zeros where nothing was written, so only these need sending. Runs closer
// than MERGE_GAP are sent as one (fewer requests for a few zero pages).
std::vector<Piece> nonzero_pieces(const uint8_t* buf, uint64_t len, uint64_t merge_gap) {
  std::vector<Piece> out;
  for (uint64_t at = 0; at < len; at += 512) {
    uint64_t n = std::min<uint64_t>(512, len - at);
    if (is_zero(buf + at, n)) continue;
    if (!out.empty() && at - (out.back().start + out.back().length) <= merge_gap) {
      out.back().length = at + n - out.back().start;
    } else {
      out.push_back({at, n});
    }
  }
  return out;
}

// What the reader and the workers share.
class Pipeline {
 public:
  Pipeline(BlobClient& client, const BlobLocation& blob, const PageBlobUploadOptions& opts, size_t buffers,
           uint64_t chunk_bytes)
      : client_(client), blob_(blob), opts_(opts), buffers_(buffers) {
    for (size_t i = 0; i < buffers; ++i) {
      buffers_[i].reset(new uint8_t[chunk_bytes]);
      free_.push_back(i);
    }
  }

  // Reader side. A free buffer, or nullopt once the upload failed.
  std::optional<size_t> take_buffer() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return failed_ || !free_.empty(); });
    if (failed_) return std::nullopt;
    size_t b = free_.front();
    free_.pop_front();
    return b;
  }
  uint8_t* buffer(size_t b) { return buffers_[b].get(); }
  void give_back(size_t b) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(b);
    cv_.notify_all();
  }
  void submit(Chunk c) {
    std::lock_guard<std::mutex> lock(mu_);
    work_.push_back(std::move(c));
    cv_.notify_all();
  }
  void finish_reading() {
    std::lock_guard<std::mutex> lock(mu_);
    done_reading_ = true;
    cv_.notify_all();
  }
  void fail(Error e) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_) error_ = std::move(e);
    failed_ = true;
    cv_.notify_all();
  }
  bool failed() {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_;
  }
  std::optional<Error> error() {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }
  void progress(uint64_t bytes) {
    if (!opts_.progress) return;
    std::lock_guard<std::mutex> lock(progress_mu_);  // callers need not be thread-safe
    opts_.progress(bytes);
  }

  void worker() {
    for (;;) {
      Chunk c;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return failed_ || !work_.empty() || done_reading_; });
        if (failed_ || work_.empty()) return;
        c = work_.front();
        work_.pop_front();
      }
      const uint8_t* data = buffers_[c.buffer].get();
      for (const Piece& piece : c.pieces) {
        if (failed()) return;
        const uint8_t* p = data + piece.start;
        std::string_view body(reinterpret_cast<const char*>(p), piece.length);
        Status st = client_.put_page(blob_, c.offset + piece.start, body, nullptr, md5_base64(p, piece.length));
        if (!st.ok()) {
          fail(st.error());
          return;
        }
        {
          std::lock_guard<std::mutex> lock(mu_);
          bytes_sent += piece.length;
          ++requests;
        }
        progress(piece.length);
      }
      give_back(c.buffer);
    }
  }

  uint64_t bytes_sent = 0;  // guarded by mu_ while workers run
  uint64_t requests = 0;

 private:
  BlobClient& client_;
  const BlobLocation& blob_;
  const PageBlobUploadOptions& opts_;
  std::vector<std::unique_ptr<uint8_t[]>> buffers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<size_t> free_;
  std::deque<Chunk> work_;
  bool done_reading_ = false;
  bool failed_ = false;
  std::optional<Error> error_;
  std::mutex progress_mu_;
};

}  // namespace

Result<PageBlobUploadResult> upload_page_blob(BlobClient& client, const BlobLocation& blob,
                                              const PageBlobSource& source, const PageBlobUploadOptions& opts) {
  const std::string context = "uploading " + source.path + " to " + blob.az_url();
  // Everything is checked before the first request.
  if (blob.name.empty() || blob.name.back() == '/') return Error{context + ": the destination names no blob"};
  if (opts.parallel < 1) return Error{context + ": parallel must be at least 1"};
  if (opts.chunk_bytes == 0 || opts.chunk_bytes % 512 != 0 || opts.chunk_bytes > kMaxPage) {
    return Error{context + ": chunk size " + std::to_string(opts.chunk_bytes) +
                 " must be a multiple of 512 of at most 4 MiB (Put Page's limit)"};
  }
  std::string known_md5;
  if (!opts.known_md5_hex.empty() && !md5_hex_to_base64(opts.known_md5_hex, &known_md5)) {
    return Error{context + ": '" + opts.known_md5_hex + "' is not an MD5 in hex"};
  }
  BlobImage image;
  image.raw = source.raw_with_footer;
  {
    Result<File> f = File::open_read(source.path);
    if (!f.ok()) return f.error().wrap(context);
    image.file = std::move(*f);
    Result<uint64_t> sz = image.file.size();
    if (!sz.ok()) return sz.error().wrap(context);
    image.file_size = *sz;
  }
  if (image.raw) {
    image.virtual_size = vhd_virtual_size(image.file_size);
    Result<std::array<uint8_t, 512>> footer = vhd_fixed_footer(image.virtual_size, source.footer_file_name);
    if (!footer.ok()) return footer.error().wrap(context);
    image.footer = *footer;
    image.size = image.virtual_size + 512;
  } else {
    if (image.file_size == 0 || image.file_size % 512 != 0) {
      return Error{context + ": the file's size " + std::to_string(image.file_size) +
                   " is not a positive multiple of 512 (a fixed VHD is whole sectors and a 512-byte footer)"};
    }
    image.size = image.file_size;
  }
  if (image.size > kMaxPageBlob) {
    return Error{context + ": " + std::to_string(image.size) + " bytes exceed the 8 TiB limit of a page blob"};
  }

  PageBlobUploadResult result;
  result.blob_size = image.size;
  std::vector<PageRange> present;
  bool create = !opts.resume;
  if (opts.resume) {
    CH_ASSIGN(props, client.properties(blob));
    if (!props) {
      log_info("azure: " + blob.az_url() + " to resume is gone; creating it again");
      create = true;
    } else if (props->blob_type != "PageBlob" || props->content_length != image.size) {
      return Error{context + ": cannot resume: the blob is a " + props->blob_type + " of " +
                   std::to_string(props->content_length) + " bytes, not a page blob of " +
                   std::to_string(image.size)};
    } else {
      CH_ASSIGN(ranges, client.page_ranges(blob));
      present = merge(std::move(ranges));
    }
  }
  if (create) {
    if (opts.overwrite) CH_TRY(client.delete_blob(blob));
    CH_TRY(client.create_page_blob(blob, image.size, opts.metadata, !opts.overwrite));
  }
  if (opts.on_created) CH_TRY(opts.on_created());
  log_info("azure: uploading " + source.path + " to " + blob.az_url() + " as a page blob of " +
           std::to_string(image.size) + " bytes" + (present.empty() ? "" : " (resuming)"));

  const uint64_t chunk = opts.chunk_bytes;
  const uint64_t chunks = (image.size + chunk - 1) / chunk;
  const size_t threads = static_cast<size_t>(std::min<uint64_t>(static_cast<uint64_t>(opts.parallel), chunks));
  Pipeline pipe(client, blob, opts, 2 * threads, chunk);
  std::vector<std::thread> workers;
  for (size_t i = 0; i < threads; ++i) workers.emplace_back([&pipe] { pipe.worker(); });

  const bool hash = known_md5.empty();
  Md5Ctx md5;
  for (uint64_t offset = 0; offset < image.size; offset += chunk) {
    const uint64_t len = std::min(chunk, image.size - offset);
    const bool have = !present.empty() && covered(present, offset, len);
    if (have && !hash) {  // nothing to learn from reading it
      result.resumed_bytes += len;
      pipe.progress(len);
      continue;
    }
    std::optional<size_t> b = pipe.take_buffer();
    if (!b) break;
    uint8_t* buf = pipe.buffer(*b);
    Status st = image.read(offset, buf, len);
    if (!st.ok()) {
      pipe.give_back(*b);
      pipe.fail(st.error().wrap(context));
      break;
    }
    if (hash) md5.update(buf, len);
    if (have) {
      result.resumed_bytes += len;
      pipe.give_back(*b);
      pipe.progress(len);
      continue;
    }
    Chunk c{offset, len, *b, {}};
    uint64_t send = 0, resumed_here = 0;
    for (const Piece& piece : nonzero_pieces(buf, len, opts.merge_gap_bytes)) {
      if (!present.empty() && covered(present, offset + piece.start, piece.length)) {
        resumed_here += piece.length;  // a piece an earlier run wrote
        continue;
      }
      c.pieces.push_back(piece);
      send += piece.length;
    }
    result.resumed_bytes += resumed_here;
    result.zero_bytes_skipped += len - send - resumed_here;
    pipe.progress(len - send);
    if (c.pieces.empty()) {
      pipe.give_back(*b);
      continue;
    }
    pipe.submit(std::move(c));
  }
  pipe.finish_reading();
  for (std::thread& t : workers) t.join();
  result.bytes_sent = pipe.bytes_sent;
  result.put_page_requests = pipe.requests;
  if (std::optional<Error> e = pipe.error()) return *e;

  result.md5_base64 = hash ? md5.base64() : known_md5;
  CH_TRY(client.set_content_md5(blob, result.md5_base64, kContentType));
  log_info("azure: " + blob.az_url() + " written: " + std::to_string(result.bytes_sent) + " bytes in " +
           std::to_string(result.put_page_requests) + " Put Page requests, " +
           std::to_string(result.zero_bytes_skipped) + " zero bytes skipped, " +
           std::to_string(result.resumed_bytes) + " already present");
  return result;
}

}  // namespace ch
