// GPT-2-style decoder (CONFIGS.md): pre-LayerNorm blocks of fused-QKV causal attention and a
// GELU(tanh) MLP, learned positions, output head tied to the token embedding. Parameter names and
// layouts are Hugging Face GPT-2's (wte, wpe, h.N.attn.c_attn with weight [in, out], ...), so
// GPT-2 safetensors files load unchanged when the sizes match.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "engine/planner/chain.h"
#include "nn/container.h"
#include "nn/layers.h"
#include "nn/norm.h"

namespace spool::models {

struct GptConfig {
  int64_t vocab = 256;
  int64_t context = 256;
  int64_t d = 256;
  int64_t layers = 4;
  int64_t heads = 4;
  double dropout = 0;  // on attention probabilities and residual branches
  bool flash = true;   // flash attention (false: the naive softmax(q k^T) v, for comparison)
  bool checkpoint_blocks = false;  // keep only each block's input; replay blocks in backward
  // The MLP's output projection keeps its GELU's input instead of its output and recomputes
  // the GELU in backward (gelu_matmul): 4d floats a token less held, same values bit for bit.
  bool recompute_gelu = false;
};

GptConfig gpt_tiny();      // vocab 256, context 256, d 256, 4 layers, 4 heads: 3.29 M parameters
GptConfig gpt2_124m();     // vocab 50257, context 1024, d 768, 12 layers, 12 heads
GptConfig dpo_gpt_tiny();  // gpt-tiny with context 128 (policy and reference of DPO)

// GPT-2's Conv1D: y = x @ weight + bias with weight [in, out].
class Conv1D : public nn::Module {
 public:
  Conv1D(int64_t in, int64_t out);
  std::string type_name() const override { return "Conv1D"; }
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
};

// Groups named children without computing anything (GPT-2's "attn" and "mlp" scopes).
class Scope : public nn::Module {
 public:
  explicit Scope(std::string name) : name_(std::move(name)) {}
  std::string type_name() const override { return name_; }
  template <class M>
  std::shared_ptr<M> add(const std::string& child, std::shared_ptr<M> m) {
    return register_module(child, m);
  }

 private:
  std::string name_;
};

// Keys and values of the tokens seen so far, per layer ([B, H, length, head_dim]), for sampling
// one token at a time without recomputing the prefix.
struct KvCache {
  std::vector<Tensor> k, v;
  int64_t length = 0;
};

class GptBlock : public nn::Module {
 public:
  GptBlock(const GptConfig& c, Generator* gen);
  std::string type_name() const override { return "GptBlock"; }
  // x [B, T, d]; segments as for flash_attention (or undefined).
  Tensor forward(const Tensor& x, const Tensor& segments);
  // The block's two residual halves: forward is mlp_half(attention_half(x)).
  Tensor attention_half(const Tensor& x, const Tensor& segments);
  Tensor mlp_half(const Tensor& h);
  // Appends this block's keys and values to the cache slot and attends over all of them.
  Tensor forward_cached(const Tensor& x, Tensor& k_cache, Tensor& v_cache);

 private:
  Tensor attention(const Tensor& x, const Tensor& segments, Tensor* k_cache, Tensor* v_cache);
  GptConfig c_;
  Generator* gen_;
  std::shared_ptr<nn::LayerNorm> ln_1_, ln_2_;
  std::shared_ptr<Conv1D> c_attn_, attn_proj_, c_fc_, mlp_proj_;
};

class Gpt : public nn::Module {
 public:
  explicit Gpt(const GptConfig& config = gpt_tiny(), Generator* gen = nullptr);
  std::string type_name() const override { return "Gpt"; }
  // idx [B, T] i64 -> logits [B, T, vocab]. Packed rows pass positions (restarting at each
  // document) and segments (from segments_from_cu_seqlens); otherwise positions are 0..T-1.
  Tensor forward(const Tensor& idx, const Tensor& positions, const Tensor& segments);
  Tensor forward(const Tensor& idx) override { return forward(idx, {}, {}); }
  // The final LayerNorm's output [B, T, d], before the tied head (for scalar heads such as a
  // reward model's).
  Tensor features(const Tensor& idx, const Tensor& positions = {}, const Tensor& segments = {});
  // The tied output head on features(): logits [..., vocab].
  Tensor head(const Tensor& features);
  // The training step on idx as a chain for the memory planner: the embedding, each block's
  // attention and MLP halves, and the head with the mean cross-entropy against `targets` [B, T].
  Chain chain(const Tensor& idx, const Tensor& targets, const Tensor& positions = {},
              const Tensor& segments = {});
  // The same chain with another loss on the logits [B, T, vocab] as its last stage.
  Chain chain(const Tensor& idx, std::function<Tensor(const Tensor& logits)> loss,
              const Tensor& positions = {}, const Tensor& segments = {});
  // Logits for new tokens given the cache (which it extends); for generation, under NoGrad.
  Tensor forward_cached(const Tensor& idx, KvCache& cache);
  const GptConfig& config() const { return c_; }

 private:
  void check_tokens(const Tensor& idx, int64_t start) const;
  Tensor embed(const Tensor& idx, const Tensor& positions);  // tokens + positions, dropout
  Tensor blocks(Tensor x, const Tensor& segments);
  Tensor logits(const Tensor& x);  // final LN, tied head
  GptConfig c_;
  Generator* gen_;
  std::shared_ptr<nn::Embedding> wte_, wpe_;
  std::shared_ptr<nn::ModuleList> h_;
  std::vector<std::shared_ptr<GptBlock>> blocks_;
  std::shared_ptr<nn::LayerNorm> ln_f_;
};

// Continues every prompt (all of one length, token ids) by n tokens sampled from the model with
// one batched key/value cache: logits / temperature, the top k kept, sampled by inverse CDF from
// `gen`. Returns the n new tokens of each prompt. Runs under NoGrad.
std::vector<std::vector<int64_t>> sample_continuations(
    Gpt& model, const std::vector<std::vector<int64_t>>& prompts, int64_t n, int64_t top_k,
    double temperature, Generator& gen);

}  // namespace spool::models
