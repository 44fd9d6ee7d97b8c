// A GPT (gpt-tiny's architecture, smaller) trained through the installed headers on a short
// in-memory text, then sampled a few bytes with the key/value cache. Exit status 0 when the
// training loss fell below half its first value.
#include <cstdio>
#include <string>

#include "data/text.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "models/gpt.h"
#include "nn/optim.h"
#include "ops/ops.h"

using namespace spool;

int main() {
  models::GptConfig c = models::gpt_tiny();
  c.d = 64;
  c.layers = 2;
  c.heads = 2;
  c.context = 64;
  Generator gen(0);
  models::Gpt gpt(c, &gen);
  nn::AdamW opt(gpt.parameters(), {.lr = 3e-3, .weight_decay = 0});

  const data::TextStream text({"the quick brown fox jumps over the lazy dog. ",
                               "pack my box with five dozen liquor jugs. "});
  Generator batches(1);
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    const data::LmBatch b = text.sample(8, 32, batches.take(8 * 33));
    opt.zero_grad();
    Tensor logits = gpt.forward(b.idx);  // [B, T, vocab]
    Tensor loss = cross_entropy(reshape(logits, {-1, c.vocab}), reshape(b.targets, {-1}));
    backward(loss);
    opt.step();
    last = loss.item();
    if (step == 0) first = last;
    if (step % 20 == 0) std::printf("step %2d  loss %.4f\n", step, last);
  }
  std::printf("gpt: loss %.4f -> %.4f\n", first, last);

  // Greedy sampling: the prompt once, then one token at a time from the cache.
  NoGrad no_grad;
  gpt.eval();
  const std::string prompt = "the quick";
  std::vector<int64_t> ids(prompt.begin(), prompt.end());
  models::KvCache cache;
  Tensor next = from_vector(ids, {1, int64_t(ids.size())});
  std::string out = prompt;
  for (int i = 0; i < 16; ++i) {
    Tensor logits = gpt.forward_cached(next, cache);  // [1, t, vocab]
    const int64_t id = int64_t(argmax(narrow(logits, 1, logits.size(1) - 1, 1), -1).item());
    out += char(id);
    next = from_vector(std::vector<int64_t>{id}, {1, 1});
  }
  std::printf("sample: \"%s\"\n", out.c_str());
  return last < 0.5 * first ? 0 : 1;
}
