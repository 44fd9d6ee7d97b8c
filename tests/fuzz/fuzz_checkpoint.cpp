// A training checkpoint as `spool train --resume` reads it: the safetensors file, its metadata
// (nn::read_checkpoint_meta), then its "optimizer.*" tensors into the AdamW state and its
// "model.*" tensors into the parameters of a small model (Linear 4 -> 3: AdamW parameters 0, the
// weight [3, 4], and 1, the bias [3], as decay_matrices_only groups them).
#include "engine/error.h"
#include "engine/factory.h"
#include "engine/safetensors.h"
#include "nn/checkpoint_meta.h"
#include "nn/linear.h"
#include "nn/optim.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = spool::fuzz::input_file(data, size, ".safetensors");
  spool::TensorFile file;
  try {
    file = spool::load_safetensors(path);
  } catch (const spool::Error&) {
    return 0;
  }
  try {
    (void)spool::nn::read_checkpoint_meta(file);
  } catch (const spool::Error&) {
  }
  spool::nn::NamedTensors model_state, opt_state;
  for (const auto& [n, t] : file.tensors) {
    if (n.rfind("model.", 0) == 0) model_state.emplace_back(n.substr(6), t);
    if (n.rfind("optimizer.", 0) == 0) opt_state.emplace_back(n.substr(10), t);
  }
  spool::Generator gen(0);
  spool::nn::Linear model(4, 3, true, &gen);
  spool::nn::AdamW opt(spool::nn::decay_matrices_only(model, 0.01), {.lr = 1e-3});
  try {
    model.load_state_dict(model_state);
  } catch (const spool::Error&) {
  }
  try {
    opt.load_state(opt_state);
    // A state that loaded must step: its tensors are the parameters' shapes and dtypes.
    for (spool::Tensor p : opt.params()) p.set_grad(spool::ones_like(p));
    opt.step();
  } catch (const spool::Error&) {
  }
  return 0;
}
