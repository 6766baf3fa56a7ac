// Parallel gzip: one gzip member (RFC 1952) with one CRC32 and ISIZE, built
// the way pigz builds it, from independently compressed chunks.
//
// The uncompressed stream is cut into fixed-size chunks. Each chunk is
// deflated on a worker with ISA-L igzip, ending in a sync flush (an empty
// stored block), so it stops on a byte boundary with BFINAL clear and the
// chunks simply concatenate; only the last chunk carries BFINAL. Each chunk
// is primed with the 32 KiB before it as a preset dictionary, so matches may
// reach back across chunk boundaries and the ratio stays that of a serial
// compressor; output depends only on the input bytes and the options, never on
// the thread count or timing. Per-chunk CRC32s (ISA-L, ~13 GB/s) are joined
// with zlib's crc32_combine in file order.
//
// Why ISA-L: ~450 MB/s per core at level 1 against ~85 for zlib -1, and zero
// runs cost almost nothing; libdeflate is faster than zlib but cannot emit a
// non-final block, which chunking needs.
//
// The input is pulled, not pushed: the caller describes the stream as a size
// and a thread-safe fill function, so workers read their own chunks in
// parallel (a tar writer reads image extents straight into the chunk buffer)
// and memory stays bounded by the pipeline window.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "base/result.h"
#include "formats/sink.h"

namespace ch {

struct GzipOptions {
  // ISA-L igzip level, 0..3. Level 3 is the default: on a disk image it
  // lands ~10% above pigz -6 in size at about a quarter of its time
  // (numbers in gzip_stream.cc and the gce-tar notes).
  int level = 3;
  // Uncompressed bytes per independently compressed chunk (at most 64 MiB).
  size_t chunk_size = 1 << 20;
  // Prime every chunk but the first with the 32 KiB that precede it.
  bool prime_dictionary = true;
  unsigned threads = 0;  // 0 = default_threads()
};

// Copies bytes [offset, offset + len) of the uncompressed stream into buf.
// Called from several worker threads at once.
using GzipSource = std::function<Status(uint64_t offset, uint8_t* buf, size_t len)>;

// Called on the calling thread, in order, after each chunk reached the sink,
// with the number of uncompressed bytes done so far.
using GzipProgress = std::function<void(uint64_t done)>;

struct GzipSummary {
  uint64_t compressed_bytes = 0;  // everything written to the sink
  uint32_t crc32 = 0;             // of the uncompressed stream
};

// Writes the gzip member for the `size`-byte stream that `source` describes.
// Header: no name, mtime 0, XFL 0, OS 3 (Unix), so output is deterministic.
Result<GzipSummary> gzip_parallel(uint64_t size, const GzipSource& source, Sink& out,
                                  const GzipOptions& opts, const GzipProgress& progress = {});

// Convenience for small buffers (tests, manifests).
Result<std::vector<uint8_t>> gzip_buffer(const uint8_t* data, size_t len,
                                         const GzipOptions& opts = {});

}  // namespace ch
