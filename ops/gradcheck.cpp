#include "ops/gradcheck.h"

#include <cmath>
#include <sstream>

#include "engine/autograd.h"
#include "engine/factory.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"

namespace spool {

namespace {

Shape unravel(int64_t k, const Shape& shape) {
  Shape idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = k % shape[d];
    k /= shape[d];
  }
  return idx;
}

}  // namespace

std::string gradcheck(const std::function<Tensor(const Tensors&)>& f, const Tensors& inputs,
                      const GradcheckOptions& o) {
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].requires_grad())
      SPOOL_CHECK(inputs[i].dtype() == DType::f64 && inputs[i].is_leaf(), "gradcheck: input ", i,
                  " is ", describe(inputs[i]), "; inputs checked must be f64 leaves");

  Tensor out = f(inputs);
  SPOOL_CHECK(is_float(out.dtype()), "gradcheck: f returned ", describe(out));
  Generator gen(o.seed);
  Tensor r = randn(out.shape(), out.dtype(), &gen);
  auto objective = [&](const Tensor& y) { return sum(y * r); };

  for (const Tensor& x : inputs)
    if (x.defined()) x.impl().grad.reset();
  Tensor loss = objective(out);
  if (!loss.requires_grad())
    return "gradcheck: the output does not depend on any input that requires grad";
  backward(loss);

  std::ostringstream report;
  double worst = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor analytic = x.grad();
    for (int64_t k = 0; k < x.numel(); ++k) {
      Shape idx = unravel(k, x.shape());
      const double orig = x.at(idx);
      double plus, minus;
      {
        NoGrad no_grad;
        x.impl().requires_grad = false;  // so set_at is not refused; restored below
        Tensor xv = x;
        xv.set_at(idx, orig + o.eps);
        plus = objective(f(inputs)).item();
        xv.set_at(idx, orig - o.eps);
        minus = objective(f(inputs)).item();
        xv.set_at(idx, orig);
        x.impl().requires_grad = true;
      }
      const double numeric = (plus - minus) / (2 * o.eps);
      const double got = analytic.defined() ? analytic.at(idx) : 0.0;
      const double err = std::abs(got - numeric);
      const double tol = o.atol + o.rtol * std::abs(numeric);
      if (err > tol && err - tol > worst) {
        worst = err - tol;
        report.str("");
        report << "gradcheck: input " << i << " " << describe(x) << " element " << str(idx)
               << ": backward gives " << got << ", finite differences give " << numeric
               << " (|diff| " << err << " > tolerance " << tol << ")";
      }
    }
  }
  return report.str();
}

}  // namespace spool
