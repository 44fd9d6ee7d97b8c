// Built instead of the CUDA backend when the build has none (SPOOL_CUDA=OFF or no nvcc).
#include "engine/backend.h"

namespace spool {

Backend* cuda_backend(std::string* why) {
  if (why) *why = "this build of spool has no CUDA backend (configure with SPOOL_CUDA=ON)";
  return nullptr;
}

Allocator* cuda_allocator(std::string* why) {
  cuda_backend(why);
  return nullptr;
}

}  // namespace spool
