// Asks the CUDA runtime what GPUs exist. No CUDA header here: callers build without the toolkit.
#pragma once
#include <string>

namespace spool::cuda {

// Number of usable GPUs; 0 with the runtime's reason in *why when there are none.
int device_count(std::string* why = nullptr);
std::string device_name(int index);

}  // namespace spool::cuda
