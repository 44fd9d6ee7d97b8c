// The safetensors reader on hostile files: header length, JSON header, dtypes, shapes, offsets.
#include <cstdio>
#include <cstdlib>

#include "engine/error.h"
#include "engine/safetensors.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = spool::fuzz::input_file(data, size, ".safetensors");
  try {
    spool::TensorFile f = spool::load_safetensors(path);
    // A tensor the reader accepts lies inside its storage, first byte to last (ASan checks the
    // reads; the size check catches a byte count that wrapped).
    for (const auto& [name, t] : f.tensors) {
      if (t.numel() == 0) continue;
      if (t.nbytes() / size_t(t.numel()) != spool::itemsize(t.dtype()) ||
          size_t(t.offset()) * spool::itemsize(t.dtype()) + t.nbytes() > t.storage()->nbytes()) {
        std::fprintf(stderr, "tensor '%s' claims more bytes than its storage holds\n",
                     name.c_str());
        std::abort();
      }
      const volatile char* p = static_cast<const char*>(t.raw());
      (void)(p[0] + p[t.nbytes() - 1]);
    }
  } catch (const spool::Error&) {
  }
  return 0;
}
