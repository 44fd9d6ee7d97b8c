// The video annotation-list parser on hostile lists. Relative paths resolve against the list's
// folder, so most entries are missing files: that is an error too, and fine.
#include "data/video_io.h"
#include "engine/error.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = spool::fuzz::input_file(data, size, ".list");
  try {
    (void)spool::data::read_video_list(path);
  } catch (const spool::Error&) {
  }
  return 0;
}
