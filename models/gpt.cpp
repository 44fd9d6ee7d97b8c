#include "models/gpt.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/factory.h"
#include "nn/init.h"
#include "ops/ops.h"

namespace spool::models {

GptConfig gpt_tiny() { return {256, 256, 256, 4, 4, 0, true, false}; }
GptConfig gpt2_124m() { return {50257, 1024, 768, 12, 12, 0, true, false}; }
GptConfig dpo_gpt_tiny() {
  GptConfig c = gpt_tiny();
  c.context = 128;
  return c;
}

Conv1D::Conv1D(int64_t in, int64_t out) {
  weight = register_parameter("weight", zeros({in, out}));
  bias = register_parameter("bias", zeros({out}));
}

Tensor Conv1D::forward(const Tensor& x) { return matmul(x, weight) + bias; }

GptBlock::GptBlock(const GptConfig& c, Generator* gen) : c_(c), gen_(gen) {
  ln_1_ = register_module("ln_1", std::make_shared<nn::LayerNorm>(Shape{c.d}));
  auto attn = register_module("attn", std::make_shared<Scope>("GptAttention"));
  c_attn_ = attn->add("c_attn", std::make_shared<Conv1D>(c.d, 3 * c.d));
  attn_proj_ = attn->add("c_proj", std::make_shared<Conv1D>(c.d, c.d));
  ln_2_ = register_module("ln_2", std::make_shared<nn::LayerNorm>(Shape{c.d}));
  auto mlp = register_module("mlp", std::make_shared<Scope>("GptMlp"));
  c_fc_ = mlp->add("c_fc", std::make_shared<Conv1D>(c.d, 4 * c.d));
  mlp_proj_ = mlp->add("c_proj", std::make_shared<Conv1D>(4 * c.d, c.d));
  // GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 L).
  const double resid = 0.02 / std::sqrt(2.0 * double(c.layers));
  nn::init::normal_(c_attn_->weight, 0, 0.02, gen);
  nn::init::normal_(attn_proj_->weight, 0, resid, gen);
  nn::init::normal_(c_fc_->weight, 0, 0.02, gen);
  nn::init::normal_(mlp_proj_->weight, 0, resid, gen);
}

Tensor GptBlock::attention(const Tensor& x, const Tensor& segments, Tensor* k_cache,
                           Tensor* v_cache) {
  const int64_t b = x.size(0), t = x.size(1), hd = c_.d / c_.heads;
  Tensors qkv = split(c_attn_->forward(ln_1_->forward(x)), c_.d, 2);  // 3 x [B, T, d]
  auto heads = [&](const Tensor& y) {
    return permute(reshape(y, {b, t, c_.heads, hd}), {0, 2, 1, 3});
  };
  Tensor q = heads(qkv[0]), k = heads(qkv[1]), v = heads(qkv[2]);  // [B, H, T, hd]
  Tensor y;
  if (k_cache) {
    // Cached sampling: the new queries see every cached key and the new keys up to themselves.
    Tensor k_all = k_cache->defined() ? cat({*k_cache, k}, 2) : contiguous(k);
    Tensor v_all = v_cache->defined() ? cat({*v_cache, v}, 2) : contiguous(v);
    const int64_t past = k_all.size(2) - t;
    Tensor scores = matmul(q, transpose(k_all, -1, -2)) * (1.0 / std::sqrt(double(hd)));
    Tensor qi = reshape(arange(double(past), double(past + t), 1, DType::i64, q.device()), {t, 1});
    Tensor kj =
        reshape(arange(0, double(k_all.size(2)), 1, DType::i64, q.device()), {1, k_all.size(2)});
    scores =
        masked_fill(scores, expand(reshape(gt(kj, qi), {1, 1, t, k_all.size(2)}), scores.shape()),
                    -std::numeric_limits<double>::infinity());
    y = matmul(softmax(scores, -1), v_all);
    *k_cache = k_all;
    *v_cache = v_all;
  } else {
    AttentionOptions o{.causal = true, .dropout_p = c_.dropout, .gen = gen_, .segments = segments};
    if (!is_training()) o.dropout_p = 0;
    y = c_.flash ? flash_attention(q, k, v, o) : naive_attention(q, k, v, o);
  }
  y = reshape(permute(y, {0, 2, 1, 3}), {b, t, c_.d});
  return dropout(attn_proj_->forward(y), c_.dropout, is_training(), gen_);
}

Tensor GptBlock::forward(const Tensor& x, const Tensor& segments) {
  return mlp_half(attention_half(x, segments));
}

Tensor GptBlock::attention_half(const Tensor& x, const Tensor& segments) {
  return x + attention(x, segments, nullptr, nullptr);
}

Tensor GptBlock::mlp_half(const Tensor& h) {
  Tensor f = c_fc_->forward(ln_2_->forward(h));
  Tensor m = c_.recompute_gelu
                 ? gelu_matmul(f, mlp_proj_->weight, GeluApprox::tanh) + mlp_proj_->bias
                 : mlp_proj_->forward(gelu(f, GeluApprox::tanh));
  return h + dropout(m, c_.dropout, is_training(), gen_);
}

Tensor GptBlock::forward_cached(const Tensor& x, Tensor& k_cache, Tensor& v_cache) {
  Tensor h = x + attention(x, {}, &k_cache, &v_cache);
  return h + mlp_proj_->forward(gelu(c_fc_->forward(ln_2_->forward(h)), GeluApprox::tanh));
}

Gpt::Gpt(const GptConfig& c, Generator* gen) : c_(c), gen_(gen) {
  SPOOL_CHECK(c.vocab > 0 && c.context > 0 && c.layers > 0 && c.heads > 0 && c.d % c.heads == 0,
              "Gpt: d ", c.d, " must be a positive multiple of heads ", c.heads,
              ", and vocab, context and layers positive");
  wte_ = register_module("wte", std::make_shared<nn::Embedding>(c.vocab, c.d, gen));
  wpe_ = register_module("wpe", std::make_shared<nn::Embedding>(c.context, c.d, gen));
  nn::init::normal_(wte_->weight, 0, 0.02, gen);
  nn::init::normal_(wpe_->weight, 0, 0.01, gen);
  h_ = register_module("h", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < c.layers; ++i)
    blocks_.push_back(h_->push_back(std::make_shared<GptBlock>(c, gen)));
  ln_f_ = register_module("ln_f", std::make_shared<nn::LayerNorm>(Shape{c.d}));
}

void Gpt::check_tokens(const Tensor& idx, int64_t start) const {
  SPOOL_CHECK(idx.dim() == 2 && idx.dtype() == DType::i64, "Gpt: tokens are ", describe(idx),
              "; expected i64 [B, T]");
  SPOOL_CHECK(start + idx.size(1) <= c_.context, "Gpt: sequence of ", start + idx.size(1),
              " tokens is longer than the context of ", c_.context);
  if (idx.numel() == 0) return;
  NoGrad no_grad;
  const int64_t lo = int64_t(min(idx).item()), hi = int64_t(max(idx).item());
  SPOOL_CHECK(lo >= 0 && hi < c_.vocab, "Gpt: token id ", lo < 0 ? lo : hi,
              " is outside the vocabulary of ", c_.vocab);
}

Tensor Gpt::embed(const Tensor& idx, const Tensor& positions) {
  check_tokens(idx, 0);
  const int64_t t = idx.size(1);
  Tensor pos = positions.defined()
                   ? positions
                   : reshape(arange(0, double(t), 1, DType::i64, idx.device()), {1, t});
  return dropout(wte_->forward(idx) + wpe_->forward(pos), c_.dropout, is_training(), gen_);
}

Tensor Gpt::logits(const Tensor& x) { return head(ln_f_->forward(x)); }

Tensor Gpt::head(const Tensor& features) {
  return matmul(features, transpose(wte_->weight, 0, 1));  // tied to the token embedding
}

Tensor Gpt::blocks(Tensor x, const Tensor& segments) {
  for (auto& block : blocks_) {
    if (c_.checkpoint_blocks)  // the block's activations are recomputed in backward
      x = checkpoint([block, segments](const Tensor& h) { return block->forward(h, segments); }, x,
                     {gen_});
    else
      x = block->forward(x, segments);
  }
  return x;
}

Tensor Gpt::forward(const Tensor& idx, const Tensor& positions, const Tensor& segments) {
  return logits(blocks(embed(idx, positions), segments));
}

Tensor Gpt::features(const Tensor& idx, const Tensor& positions, const Tensor& segments) {
  return ln_f_->forward(blocks(embed(idx, positions), segments));
}

Chain Gpt::chain(const Tensor& idx, const Tensor& targets, const Tensor& positions,
                 const Tensor& segments) {
  return chain(
      idx,
      [targets](const Tensor& l) {
        return cross_entropy(reshape(l, {-1, l.size(-1)}), reshape(targets, {-1}));
      },
      positions, segments);
}

Chain Gpt::chain(const Tensor& idx, std::function<Tensor(const Tensor& logits)> loss,
                 const Tensor& positions, const Tensor& segments) {
  Chain c;
  c.input = idx;
  c.generators = {gen_};
  c.stages.push_back({"embed", [this, positions](const Tensor& x) { return embed(x, positions); }});
  for (size_t i = 0; i < blocks_.size(); ++i) {
    auto block = blocks_[i];
    const std::string name = "h." + std::to_string(i);
    c.stages.push_back({name + ".attn", [block, segments](const Tensor& x) {
                          return block->attention_half(x, segments);
                        }});
    c.stages.push_back({name + ".mlp", [block](const Tensor& h) { return block->mlp_half(h); }});
  }
  c.stages.push_back(
      {"head", [this, loss = std::move(loss)](const Tensor& x) { return loss(logits(x)); }});
  return c;
}

Tensor Gpt::forward_cached(const Tensor& idx, KvCache& cache) {
  check_tokens(idx, cache.length);
  const int64_t t = idx.size(1);
  cache.k.resize(blocks_.size());
  cache.v.resize(blocks_.size());
  Tensor pos = reshape(
      arange(double(cache.length), double(cache.length + t), 1, DType::i64, idx.device()), {1, t});
  Tensor x = wte_->forward(idx) + wpe_->forward(pos);
  for (size_t i = 0; i < blocks_.size(); ++i)
    x = blocks_[i]->forward_cached(x, cache.k[i], cache.v[i]);
  cache.length += t;
  return logits(x);
}

namespace {

// The next token of one row: logits / temperature, the top k kept, sampled by inverse CDF.
int64_t sample_next(std::vector<double> z, int64_t top_k, double temperature, Generator& gen) {
  const int64_t vocab = int64_t(z.size()), k = std::min(top_k, vocab);
  std::vector<double> sorted = z;
  std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<double>());
  const double cutoff = sorted[size_t(k - 1)];
  const double mx = *std::max_element(z.begin(), z.end());
  double total = 0;
  for (double& v : z) total += (v = v >= cutoff ? std::exp((v - mx) / temperature) : 0.0);
  double u = uniform_at(gen.take(1), 0) * total;
  int64_t next = 0;
  while (next + 1 < vocab && (u -= z[size_t(next)]) > 0) ++next;
  return next;
}

}  // namespace

std::vector<std::vector<int64_t>> sample_continuations(
    Gpt& model, const std::vector<std::vector<int64_t>>& prompts, int64_t n, int64_t top_k,
    double temperature, Generator& gen) {
  SPOOL_CHECK(!prompts.empty() && !prompts[0].empty(), "sample_continuations: no prompt");
  SPOOL_CHECK(top_k >= 1 && temperature > 0, "sample_continuations: top_k ", top_k,
              " and temperature ", temperature, " must be positive");
  const int64_t b = int64_t(prompts.size()), t = int64_t(prompts[0].size());
  const int64_t vocab = model.config().vocab;
  std::vector<int64_t> ids;
  for (const auto& p : prompts) {
    SPOOL_CHECK(int64_t(p.size()) == t, "sample_continuations: prompts of ", t, " and ", p.size(),
                " tokens; batched sampling needs one length");
    ids.insert(ids.end(), p.begin(), p.end());
  }
  NoGrad no_grad;
  const Device device = model.parameters().front().device();
  KvCache cache;
  Tensor logits = model.forward_cached(to(from_vector(ids, {b, t}), device), cache);
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(b));
  for (int64_t i = 0; i < n; ++i) {
    const auto z =
        to(contiguous(narrow(logits, 1, logits.size(1) - 1, 1)), Device::cpu()).to_vector<double>();
    std::vector<int64_t> next(static_cast<size_t>(b));
    for (int64_t r = 0; r < b; ++r) {
      next[size_t(r)] =
          sample_next(std::vector<double>(z.begin() + r * vocab, z.begin() + (r + 1) * vocab),
                      top_k, temperature, gen);
      out[size_t(r)].push_back(next[size_t(r)]);
    }
    if (i + 1 < n) logits = model.forward_cached(to(from_vector(next, {b, 1}), device), cache);
  }
  return out;
}

}  // namespace spool::models
