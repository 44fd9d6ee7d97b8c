// Scaled dot-product attention over q, k, v [B, H, T, D].
//   flash_attention: tiled kernel with an online softmax; saves only out and the per-row
//     log-sum-exp for backward (O(B H T) besides the inputs), recomputing probabilities there.
//   naive_attention: softmax(q k^T * scale + mask) v from ordinary ops; saves the T x T
//     probabilities. Kept as the reference for tests and benchmarks.
// Packed rows: `segments` (from segments_from_cu_seqlens) names each token's document; a query
// then sees only keys of its own document.
#pragma once
#include "engine/rng.h"
#include "engine/tensor.h"

namespace spool {

struct AttentionOptions {
  bool causal = true;
  double dropout_p = 0;      // on the attention probabilities
  Generator* gen = nullptr;  // for dropout; the default generator when null
  Tensor segments;           // i64 [B, T]: the index of each token's document start, or undefined
};

Tensor flash_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionOptions& options = {});
Tensor naive_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionOptions& options = {});

// cu_seqlens (i64 [docs + 1]: 0, end of doc 0, end of doc 1, ..., B * T) over B rows of T
// tokens -> segments [B, T]. Offsets must start at 0, increase strictly and end at B * T, and
// every row boundary must be a document boundary.
Tensor segments_from_cu_seqlens(const Tensor& cu_seqlens, int64_t rows, int64_t row_length);

}  // namespace spool
