#include "helper/cli.h"

#include <cstdio>
#include <string>

#include "formats/formats.h"

namespace ch {

// Minimal dispatcher until the full CLI lands: standalone convert only.
int run_cli(int argc, char** argv) {
  if (argc == 8 && std::string(argv[1]) == "convert") {
    std::string in = argv[3], out = argv[5], fmt = argv[7];
    auto r = convert_file(in, "", out, fmt, WriteOptions{});
    if (!r.ok()) {
      std::fprintf(stderr, "cloud_helper: %s\n", r.message().c_str());
      return kExitBadInput;
    }
    return kExitOk;
  }
  std::fprintf(stderr, "usage: cloud_helper convert -i SRC -o DST -O FORMAT\n");
  return kExitBadInput;
}

}  // namespace ch
