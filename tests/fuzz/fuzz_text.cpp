// The text-corpus loader on a hostile file ("%" document separators, UTF-8 checks).
#include "data/text.h"
#include "engine/error.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = spool::fuzz::input_file(data, size, ".txt");
  try {
    (void)spool::data::load_text(path);
  } catch (const spool::Error&) {
  }
  return 0;
}
