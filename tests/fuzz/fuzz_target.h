// One fuzz target for every image reader: the bytes become a file, the file
// is opened as FORMAT (or probed when FORMAT is empty) and every data extent
// is read (bounded). Opening may fail with an Error — that is the expected
// answer to garbage; crashing, hanging, or reading past a buffer is a bug.
// Shared by the libFuzzer binaries (tests/fuzz/reader_fuzz.cc, clang) and the
// corpus regression test (tests/fuzz_corpus_test.cc, run by CTest).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ch {

// Returns 1 when the input opened as an image, 0 when it was refused.
int fuzz_open_and_read(std::string_view format, const uint8_t* data, size_t size);

}  // namespace ch
