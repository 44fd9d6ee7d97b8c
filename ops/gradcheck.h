// Compares autograd's gradients with central finite differences, in f64.
#pragma once
#include <functional>
#include <string>

#include "engine/tensor.h"

namespace spool {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-4;
  uint64_t seed = 12345;  // for the random projection of non-scalar outputs
};

// f maps the inputs to one tensor. Each input that requires grad (they must be f64 leaves) is
// checked element by element: d(sum(f(x) * r))/dx by backward, against the central difference,
// for a fixed random r. Returns "" when all agree, otherwise a report of the worst mismatch
// naming the input, the element and both values.
std::string gradcheck(const std::function<Tensor(const Tensors&)>& f, const Tensors& inputs,
                      const GradcheckOptions& options = {});

}  // namespace spool
