// spool::Error: the one exception type of the engine. Messages name the op, the argument and the
// shapes or dtypes involved, e.g. "matmul: a is [8, 3], b is [4, 5]: inner dimensions 3 and 4
// differ".
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace spool {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class... Parts>
std::string cat_str(const Parts&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  return s.str();
}

template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw Error(cat_str(parts...));
}

}  // namespace spool

// Throws spool::Error built from the remaining arguments when cond is false.
#define SPOOL_CHECK(cond, ...)               \
  do {                                       \
    if (!(cond)) ::spool::fail(__VA_ARGS__); \
  } while (0)
