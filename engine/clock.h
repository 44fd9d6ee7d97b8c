// The one clock spool times itself with: milliseconds of a monotonic clock.
#pragma once
#include <chrono>

namespace spool {

inline double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace spool
