// How few Put Page requests an upload of IMAGE (a fixed VHD) can make for a
// given number of bytes sent: the trade-off behind azure.upload_merge_gap.
// A Put Page writes one contiguous range (at most 4 MiB), so sending only the
// non-zero 512-byte pages takes one request per run of them; merging two runs
// saves a request and costs the zero gap between them. Printed as markdown:
//   - fixed merge gaps (what azure.upload_merge_gap does), and
//   - the fewest requests for a budget of extra bytes (0.5%, 1% of the
//     non-zero data): merging the smallest gaps first is optimal, since every
//     merge saves exactly one request.
// Built and run by bench/page_runs.sh.
#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <vector>
int main(int argc, char** argv) {
  if (argc != 2) { fprintf(stderr, "usage: page_runs IMAGE\n"); return 2; }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) { perror(argv[1]); return 1; }
  off_t size = lseek(fd, 0, SEEK_END);
  std::vector<std::pair<uint64_t, uint64_t>> runs;  // [start,end) bytes
  std::vector<char> buf(4 << 20);
  static char zero[512];
  off_t pos = 0;
  while (pos < size) {
    off_t d = lseek(fd, pos, SEEK_DATA);
    if (d < 0) break;
    off_t h = lseek(fd, d, SEEK_HOLE);
    for (off_t o = d; o < h; o += buf.size()) {
      size_t n = std::min<off_t>(buf.size(), h - o);
      pread(fd, buf.data(), n, o);
      for (size_t p = 0; p < n; p += 512) {
        bool nz = memcmp(buf.data() + p, zero, std::min<size_t>(512, n - p)) != 0;
        if (!nz) continue;
        uint64_t s = o + p;
        if (!runs.empty() && runs.back().second == s) runs.back().second = s + 512;
        else runs.push_back({s, s + 512});
      }
    }
    pos = h;
  }
  uint64_t data = 0;
  for (auto& r : runs) data += r.second - r.first;
  printf("Non-zero 512-byte pages: %llu bytes in %zu runs.\n\n| merging | requests | bytes sent | / non-zero pages |\n|---|---|---|---|\n", (unsigned long long)data, runs.size());
  const uint64_t kMax = 4 << 20;
  auto count = [&](std::vector<bool>& merge) {  // merge[i]: merge run i with i+1
    uint64_t reqs = 0, bytes = 0;
    size_t i = 0;
    while (i < runs.size()) {
      uint64_t s = runs[i].first, e = runs[i].second;
      while (i + 1 < runs.size() && merge[i] && runs[i + 1].second - s <= kMax) { ++i; e = runs[i].second; }
      // split long runs into 4 MiB requests
      uint64_t len = e - s;
      reqs += (len + kMax - 1) / kMax;
      bytes += len;
      ++i;
    }
    printf(" | %llu | %llu | %.4fx |\n", (unsigned long long)reqs, (unsigned long long)bytes, (double)bytes / data);
  };
  for (uint64_t g : {0ull, 512ull, 1024ull, 2048ull, 4096ull}) {
    std::vector<bool> m(runs.size());
    for (size_t i = 0; i + 1 < runs.size(); ++i) m[i] = runs[i + 1].first - runs[i].second <= g;
    printf("| gaps <= %llu bytes", (unsigned long long)g); count(m);
  }
  std::vector<size_t> idx(runs.size() ? runs.size() - 1 : 0);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return runs[a + 1].first - runs[a].second < runs[b + 1].first - runs[b].second; });
  for (double pct : {0.5, 1.0}) {
    std::vector<bool> m(runs.size());
    uint64_t budget = data * pct / 100, used = 0;
    for (size_t i : idx) { uint64_t g = runs[i + 1].first - runs[i].second; if (used + g > budget) break; used += g; m[i] = true; }
    printf("| smallest gaps first, budget %.1f%%", pct); count(m);
  }
}
