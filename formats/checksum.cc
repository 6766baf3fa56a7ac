// One read, many digests. A reader thread fills fixed buffers from a ring of
// kSlots; each algorithm has its own thread that walks every buffer in file
// order. A slot is refilled only after every algorithm has released it, so
// memory stays at kSlots x kBufferSize however large the file is, and the
// fastest digest runs at most kSlots buffers ahead of the slowest.
//
// Why threads per algorithm rather than per block: sha256/sha512/md5 are
// strictly sequential (Merkle-Damgard), so one stream cannot be split; but
// three streams over the same bytes are independent. On 2 cores
// sha256+sha512+md5 then costs about max(slowest, sum/2) instead of the sum.
#include "formats/checksum.h"

#include <fcntl.h>
#include <openssl/evp.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "base/file.h"

namespace ch {

namespace {

// 8 MiB: large enough that locking per buffer is noise, small enough that
// the ring (32 MiB) is harmless beside a conversion.
constexpr size_t kBufferSize = 8u << 20;
constexpr size_t kSlots = 4;

struct Algorithm {
  std::string_view name;
  const EVP_MD* (*md)();
};

const Algorithm kAlgorithms[] = {
    {"sha256", EVP_sha256},
    {"sha512", EVP_sha512},
    {"md5", EVP_md5},
};

const Algorithm* find_algorithm(std::string_view name) {
  for (const Algorithm& a : kAlgorithms)
    if (a.name == name) return &a;
  return nullptr;
}

Error unknown_algorithm(std::string_view name) {
  return Error{"unknown checksum algorithm '" + std::string(name) + "' (expected " +
               checksum_algorithm_names() + ")"};
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

Result<MdCtx> new_ctx(const Algorithm& a) {
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), a.md(), nullptr) != 1)
    return Error{"OpenSSL: cannot initialise " + std::string(a.name)};
  return ctx;
}

std::string finish_hex(EVP_MD_CTX* ctx) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  static const char kHex[] = "0123456789abcdef";
  std::string hex(len * 2, '0');
  for (unsigned i = 0; i < len; ++i) {
    hex[2 * i] = kHex[md[i] >> 4];
    hex[2 * i + 1] = kHex[md[i] & 15];
  }
  return hex;
}

Result<std::vector<const Algorithm*>> resolve(const std::vector<std::string>& names) {
  std::vector<const Algorithm*> out;
  for (const std::string& n : names) {
    const Algorithm* a = find_algorithm(n);
    if (!a) return unknown_algorithm(n);
    out.push_back(a);
  }
  if (out.empty()) return Error{"no checksum algorithm given"};
  return out;
}

struct Slot {
  std::vector<uint8_t> buf;
  size_t len = 0;
  uint64_t seq = UINT64_MAX;  // which buffer of the file this slot holds
  unsigned pending = 0;       // algorithms still to consume it
  bool last = false;
};

}  // namespace

std::string checksum_algorithm_names() {
  std::string s;
  for (const Algorithm& a : kAlgorithms) {
    if (!s.empty()) s += ", ";
    s += a.name;
  }
  return s;
}

bool is_checksum_algorithm(std::string_view name) { return find_algorithm(name) != nullptr; }

Result<std::vector<std::string>> parse_checksum_algorithms(std::string_view list) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view item = list.substr(pos, comma - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!find_algorithm(item)) return unknown_algorithm(item);
    bool seen = false;
    for (const std::string& o : out) seen |= (o == item);
    if (!seen) out.emplace_back(item);
    pos = comma + 1;
  }
  return out;
}

Status check_checksum_algorithms(const std::vector<std::string>& names) {
  for (const std::string& n : names)
    if (!find_algorithm(n)) return unknown_algorithm(n);
  return {};
}

std::string checksum_line(const std::string& hex, const std::string& name) {
  return hex + "  " + name + "\n";
}

Result<std::vector<Digest>> checksum_bytes(std::span<const uint8_t> data,
                                           const std::vector<std::string>& algorithms) {
  CH_ASSIGN(algos, resolve(algorithms));
  std::vector<Digest> out;
  for (const Algorithm* a : algos) {
    CH_ASSIGN(ctx, new_ctx(*a));
    EVP_DigestUpdate(ctx.get(), data.data(), data.size());
    out.push_back({std::string(a->name), finish_hex(ctx.get())});
  }
  return out;
}

Result<std::vector<Digest>> checksum_file(const std::string& path,
                                          const std::vector<std::string>& algorithms,
                                          Progress* progress) {
  CH_ASSIGN(algos, resolve(algorithms));
  CH_ASSIGN(file, File::open_read(path));
  CH_ASSIGN(size, file.size());
  posix_fadvise(file.fd(), 0, 0, POSIX_FADV_SEQUENTIAL);
  if (progress) progress->start("checksumming " + path, size);

  std::vector<MdCtx> ctxs;
  for (const Algorithm* a : algos) {
    CH_ASSIGN(ctx, new_ctx(*a));
    ctxs.push_back(std::move(ctx));
  }

  const unsigned n_algos = static_cast<unsigned>(algos.size());
  std::vector<Slot> slots(kSlots);
  std::mutex mu;
  std::condition_variable filled, freed;
  bool failed = false;
  Status read_status;

  auto hasher = [&](unsigned which) {
    EVP_MD_CTX* ctx = ctxs[which].get();
    for (uint64_t k = 0;; ++k) {
      Slot& s = slots[k % kSlots];
      {
        std::unique_lock<std::mutex> lk(mu);
        filled.wait(lk, [&] { return failed || s.seq == k; });
        if (failed) return;
      }
      EVP_DigestUpdate(ctx, s.buf.data(), s.len);
      bool last = s.last;
      {
        std::lock_guard<std::mutex> lk(mu);
        if (--s.pending == 0) {
          advance(progress, s.len);
          freed.notify_one();
        }
      }
      if (last) return;
    }
  };

  std::vector<std::thread> threads;
  threads.reserve(n_algos);
  for (unsigned i = 0; i < n_algos; ++i) threads.emplace_back(hasher, i);

  // The reader runs on the calling thread.
  uint64_t offset = 0;
  for (uint64_t k = 0;; ++k) {
    Slot& s = slots[k % kSlots];
    {
      std::unique_lock<std::mutex> lk(mu);
      freed.wait(lk, [&] { return s.pending == 0; });
    }
    if (s.buf.empty()) s.buf.resize(kBufferSize);
    size_t len = 0;
    bool eof = false;
    while (len < kBufferSize) {
      Result<size_t> got = file.pread_some(offset, s.buf.data() + len, kBufferSize - len);
      if (!got.ok()) {
        read_status = got.error();
        break;
      }
      if (*got == 0) {
        eof = true;
        break;
      }
      len += *got;
      offset += *got;
    }
    std::lock_guard<std::mutex> lk(mu);
    if (!read_status.ok()) {
      failed = true;
      filled.notify_all();
      break;
    }
    s.len = len;
    s.last = eof;
    s.pending = n_algos;
    s.seq = k;
    filled.notify_all();
    if (eof) break;
  }
  for (std::thread& t : threads) t.join();
  if (!read_status.ok()) return read_status.error();

  std::vector<Digest> out;
  for (unsigned i = 0; i < n_algos; ++i)
    out.push_back({std::string(algos[i]->name), finish_hex(ctxs[i].get())});
  return out;
}

}  // namespace ch
