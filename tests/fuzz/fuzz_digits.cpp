// The digits CSV reader on hostile files, plain or gzipped (zlib reads either).
#include "data/digits.h"
#include "engine/error.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = spool::fuzz::input_file(data, size, ".csv");
  try {
    spool::Tensor images, labels;
    spool::data::load_digits(path, images, labels);
  } catch (const spool::Error&) {
  }
  return 0;
}
