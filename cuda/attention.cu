// CUDA flash attention (f32), forward and backward, causal and packed (seg), with dropout drawn
// from the same counter-based stream as the CPU (element (b, h, i, j) keeps its weight iff
// uniform_at(rng, ((b H + h) T + i) T + j) >= p).
//
// Forward: a block of 4 warps takes 16 query rows (4 per warp); key / value tiles of 32 rows
// pass through shared memory; lane c of a warp scores key c of the tile against the warp's rows,
// the online softmax (running max m, running sum l) runs across the warp with shuffles, and each
// lane keeps the output columns lane, lane + 32, ... (head dims up to 128). Only out and the
// row log-sum-exp lse = m + log l are written.
// Backward (FlashAttention-2's split, no atomics): D_i = rowsum(dO_i O_i); one kernel owns 16 key
// rows per block and streams query tiles to accumulate dK and dV; another owns 16 query rows and
// streams key tiles for dQ. Probabilities are recomputed from lse in both.
#include <cmath>

#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"
#include "engine/philox.h"

namespace spool::cuda {

namespace {

constexpr int kWarps = 4, kRows = 4, kBlockRows = kWarps * kRows, kChunk = 32;

struct Geo {
  int64_t b, h, t, d;
  float scale;
  bool causal;
  const int64_t* seg;  // [B, T] document start of each token, or null
  double drop_p;       // compared in double, as on the CPU
  float drop_scale;
  uint64_t seed, offset;
};

__device__ __forceinline__ bool visible(const Geo& g, const int64_t* seg_row, int64_t i,
                                        int64_t j) {
  if (i >= g.t || j >= g.t) return false;
  if (g.causal && j > i) return false;
  return !seg_row || seg_row[i] == seg_row[j];
}

__device__ __forceinline__ float keep(const Geo& g, int64_t bh, int64_t i, int64_t j) {
  if (g.drop_p <= 0) return 1.0f;
  const double u = philox::uniform_at(g.seed, g.offset, (bh * g.t + i) * g.t + j);
  return u >= g.drop_p ? g.drop_scale : 0.0f;
}

// Rows [r0, r0 + rows) of a [T, D] matrix into shared memory with row pitch ld, zeros past row
// T. Called by every thread of the block.
__device__ __forceinline__ void load_rows(const float* src, int64_t r0, int64_t rows, int64_t t,
                                          int64_t d, float* dst, int64_t ld) {
  for (int64_t e = threadIdx.x; e < rows * d; e += blockDim.x) {
    const int64_t r = e / d, c = e % d;
    dst[r * ld + c] = r0 + r < t ? src[(r0 + r) * d + c] : 0.0f;
  }
}

// acc[t] += sum over lanes c of (lane c's w) x S[c][lane + 32 t]: the tile's rows weighted by the
// values the warp's lanes hold, into this lane's head-dim columns.
template <int NT>
__device__ __forceinline__ void add_weighted_rows(float (&acc)[NT], float w, const float* S,
                                                  int64_t ld, int64_t d, int lane) {
  for (int c = 0; c < kChunk; ++c) {
    const float wc = __shfl_sync(0xffffffffu, w, c);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const int64_t col = lane + 32 * t;
      if (col < d) acc[t] = fmaf(wc, S[c * ld + col], acc[t]);
    }
  }
}

// Keys [first, end) that the queries [i0, i1) of one row may see.
__device__ __forceinline__ void key_range(const Geo& g, const int64_t* seg_row, int64_t i0,
                                          int64_t i1, int64_t& first, int64_t& end) {
  first = seg_row ? seg_row[i0] : 0;  // documents are contiguous and start at or before i0
  end = g.causal ? min(i1, g.t) : g.t;
}

template <int NT>
__global__ void __launch_bounds__(kWarps * 32)
    attention_forward_kernel(Geo g, const float* q, const float* k, const float* v, float* out,
                             float* lse) {
  SPOOL_DYNAMIC_SHARED(float, smem);
  const int64_t D = g.d, ldk = D + 1;
  float* Qs = smem;                 // [16][D]
  float* Ks = Qs + kBlockRows * D;  // [32][D + 1]
  float* Vs = Ks + kChunk * ldk;    // [32][D]
  const int64_t bh = blockIdx.y, b = bh / g.h, i0 = int64_t(blockIdx.x) * kBlockRows;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t* seg_row = g.seg ? g.seg + b * g.t : nullptr;
  const float* Q = q + bh * g.t * D;
  const float* K = k + bh * g.t * D;
  const float* V = v + bh * g.t * D;
  load_rows(Q, i0, kBlockRows, g.t, D, Qs, D);
  float acc[kRows][NT], m[kRows], l[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    m[r] = -INFINITY;
    l[r] = 0;
#pragma unroll
    for (int t = 0; t < NT; ++t) acc[r][t] = 0;
  }
  int64_t first, end;
  key_range(g, seg_row, i0, i0 + kBlockRows, first, end);
  for (int64_t j0 = first; j0 < end; j0 += kChunk) {
    __syncthreads();
    load_rows(K, j0, kChunk, g.t, D, Ks, ldk);
    load_rows(V, j0, kChunk, g.t, D, Vs, D);
    __syncthreads();
    const int64_t j = j0 + lane;
    float s[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) s[r] = 0;
    for (int64_t c = 0; c < D; ++c) {
      const float kc = Ks[lane * ldk + c];
#pragma unroll
      for (int r = 0; r < kRows; ++r) s[r] = fmaf(Qs[(warp * kRows + r) * D + c], kc, s[r]);
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int64_t i = i0 + warp * kRows + r;
      const bool vis = visible(g, seg_row, i, j);
      const float sc = vis ? s[r] * g.scale : -INFINITY;
      const float mx = fmaxf(m[r], warp_max(sc));
      if (mx == -INFINITY) continue;  // nothing visible yet in this row
      const float alpha = expf(m[r] - mx);
      const float p = vis ? expf(sc - mx) : 0.0f;
      l[r] = l[r] * alpha + warp_sum(p);
      m[r] = mx;
      const float pd = vis ? p * keep(g, bh, i, j) : 0.0f;
#pragma unroll
      for (int t = 0; t < NT; ++t) acc[r][t] *= alpha;
      add_weighted_rows(acc[r], pd, Vs, D, D, lane);
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t i = i0 + warp * kRows + r;
    if (i >= g.t) continue;
    const float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const int64_t col = lane + 32 * t;
      if (col < D) out[(bh * g.t + i) * D + col] = acc[r][t] * inv;
    }
    if (lane == 0) lse[bh * g.t + i] = l[r] > 0 ? m[r] + logf(l[r]) : -INFINITY;
  }
}

// D_i = rowsum(dO_i * O_i), one warp per row.
__global__ void attention_rowdot_kernel(int64_t rows, int64_t d, const float* dout,
                                        const float* out, float* drow) {
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  const int lane = threadIdx.x & 31;
  for (int64_t r = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32; r < rows; r += warps) {
    double s = 0;
    for (int64_t c = lane; c < d; c += 32) s += double(dout[r * d + c]) * double(out[r * d + c]);
    s = warp_sum(s);
    if (lane == 0) drow[r] = float(s);
  }
}

// dK and dV: 16 key rows per block (4 per warp); lanes take the queries of each 32-row tile.
template <int NT>
__global__ void __launch_bounds__(kWarps * 32)
    attention_dkdv_kernel(Geo g, const float* q, const float* k, const float* v, const float* lse,
                          const float* drow, const float* dout, float* dk, float* dv) {
  SPOOL_DYNAMIC_SHARED(float, smem);
  const int64_t D = g.d, ld = D + 1;
  float* Ks = smem;                 // [16][D]
  float* Vs = Ks + kBlockRows * D;  // [16][D]
  float* Qs = Vs + kBlockRows * D;  // [32][D + 1]
  float* dOs = Qs + kChunk * ld;    // [32][D + 1]
  float* Ls = dOs + kChunk * ld;    // [32]
  float* Ds = Ls + kChunk;          // [32]
  const int64_t bh = blockIdx.y, b = bh / g.h, j0 = int64_t(blockIdx.x) * kBlockRows;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t* seg_row = g.seg ? g.seg + b * g.t : nullptr;
  const int64_t base = bh * g.t * D;
  load_rows(k + base, j0, kBlockRows, g.t, D, Ks, D);
  load_rows(v + base, j0, kBlockRows, g.t, D, Vs, D);
  float gk[kRows][NT], gv[kRows][NT];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int t = 0; t < NT; ++t) gk[r][t] = gv[r][t] = 0;
  const int64_t j_last = min(j0 + kBlockRows, g.t) - 1;
  // Queries that can see these keys start at the first key (causal) or its document's start.
  int64_t start = g.causal ? j0 : (seg_row ? seg_row[j0] : 0);
  start = start / kChunk * kChunk;
  for (int64_t q0 = start; q0 < g.t; q0 += kChunk) {
    if (seg_row && seg_row[q0] > j_last) break;  // later queries' documents start after the keys
    __syncthreads();
    load_rows(q + base, q0, kChunk, g.t, D, Qs, ld);
    load_rows(dout + base, q0, kChunk, g.t, D, dOs, ld);
    if (threadIdx.x < kChunk) {
      const int64_t i = q0 + threadIdx.x;
      Ls[threadIdx.x] = i < g.t ? lse[bh * g.t + i] : -INFINITY;
      Ds[threadIdx.x] = i < g.t ? drow[bh * g.t + i] : 0.0f;
    }
    __syncthreads();
    const int64_t i = q0 + lane;
    float s[kRows], dp[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) s[r] = dp[r] = 0;
    for (int64_t c = 0; c < D; ++c) {
      const float qc = Qs[lane * ld + c], oc = dOs[lane * ld + c];
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        s[r] = fmaf(qc, Ks[(warp * kRows + r) * D + c], s[r]);
        dp[r] = fmaf(oc, Vs[(warp * kRows + r) * D + c], dp[r]);
      }
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int64_t j = j0 + warp * kRows + r;
      const bool vis = visible(g, seg_row, i, j) && Ls[lane] != -INFINITY;
      const float p = vis ? expf(s[r] * g.scale - Ls[lane]) : 0.0f;
      const float kp = vis ? keep(g, bh, i, j) : 0.0f;
      const float ds = p * (dp[r] * kp - Ds[lane]);
      const float pd = p * kp;
      add_weighted_rows(gv[r], pd, dOs, ld, D, lane);
      add_weighted_rows(gk[r], ds, Qs, ld, D, lane);
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t j = j0 + warp * kRows + r;
    if (j >= g.t) continue;
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const int64_t col = lane + 32 * t;
      if (col < D) {
        dk[base + j * D + col] = gk[r][t] * g.scale;
        dv[base + j * D + col] = gv[r][t];
      }
    }
  }
}

// dQ: 16 query rows per block (4 per warp); lanes take the keys of each 32-row tile.
template <int NT>
__global__ void __launch_bounds__(kWarps * 32)
    attention_dq_kernel(Geo g, const float* q, const float* k, const float* v, const float* lse,
                        const float* drow, const float* dout, float* dq) {
  SPOOL_DYNAMIC_SHARED(float, smem);
  const int64_t D = g.d, ld = D + 1;
  float* Qs = smem;                  // [16][D]
  float* dOs = Qs + kBlockRows * D;  // [16][D]
  float* Ks = dOs + kBlockRows * D;  // [32][D + 1]
  float* Vs = Ks + kChunk * ld;      // [32][D + 1]
  const int64_t bh = blockIdx.y, b = bh / g.h, i0 = int64_t(blockIdx.x) * kBlockRows;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t* seg_row = g.seg ? g.seg + b * g.t : nullptr;
  const int64_t base = bh * g.t * D;
  load_rows(q + base, i0, kBlockRows, g.t, D, Qs, D);
  load_rows(dout + base, i0, kBlockRows, g.t, D, dOs, D);
  float L[kRows], Dr[kRows], acc[kRows][NT];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t i = i0 + warp * kRows + r;
    L[r] = i < g.t ? lse[bh * g.t + i] : -INFINITY;
    Dr[r] = i < g.t ? drow[bh * g.t + i] : 0.0f;
#pragma unroll
    for (int t = 0; t < NT; ++t) acc[r][t] = 0;
  }
  int64_t first, end;
  key_range(g, seg_row, i0, i0 + kBlockRows, first, end);
  for (int64_t j0 = first; j0 < end; j0 += kChunk) {
    __syncthreads();
    load_rows(k + base, j0, kChunk, g.t, D, Ks, ld);
    load_rows(v + base, j0, kChunk, g.t, D, Vs, ld);
    __syncthreads();
    const int64_t j = j0 + lane;
    float s[kRows], dp[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) s[r] = dp[r] = 0;
    for (int64_t c = 0; c < D; ++c) {
      const float kc = Ks[lane * ld + c], vc = Vs[lane * ld + c];
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        s[r] = fmaf(Qs[(warp * kRows + r) * D + c], kc, s[r]);
        dp[r] = fmaf(dOs[(warp * kRows + r) * D + c], vc, dp[r]);
      }
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int64_t i = i0 + warp * kRows + r;
      const bool vis = visible(g, seg_row, i, j) && L[r] != -INFINITY;
      const float p = vis ? expf(s[r] * g.scale - L[r]) : 0.0f;
      const float ds = vis ? p * (dp[r] * keep(g, bh, i, j) - Dr[r]) : 0.0f;
      add_weighted_rows(acc[r], ds, Ks, ld, D, lane);
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t i = i0 + warp * kRows + r;
    if (i >= g.t) continue;
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const int64_t col = lane + 32 * t;
      if (col < D) dq[base + i * D + col] = acc[r][t] * g.scale;
    }
  }
}

Geo geo_of(const Tensor& q, const Tensor& seg, const AttentionParams& p) {
  Geo g;
  g.b = q.shape()[0];
  g.h = q.shape()[1];
  g.t = q.shape()[2];
  g.d = q.shape()[3];
  SPOOL_CHECK(q.dtype() == DType::f32, "attention on cuda: q is ", name(q.dtype()),
              ", the kernel is f32");
  SPOOL_CHECK(g.d <= 128, "attention on cuda: head dimension ", g.d,
              " exceeds the kernel's limit of 128");
  SPOOL_CHECK(g.b * g.h <= 65535, "attention on cuda: batch x heads = ", g.b * g.h,
              " exceeds the kernel's grid limit of 65535");
  g.scale = float(p.scale);
  g.causal = p.causal;
  g.seg = seg.defined() ? static_cast<const int64_t*>(seg.raw()) : nullptr;
  g.drop_p = p.dropout_p;
  g.drop_scale = float(1.0 / (1.0 - p.dropout_p));
  g.seed = p.rng.seed;
  g.offset = p.rng.offset;
  return g;
}

// Calls launch(integral_constant<int, NT>) with NT = ceil(D / 32), the head-dim columns per lane.
template <class Launch>
void with_nt(int64_t d, Launch&& launch) {
  switch ((d + 31) / 32) {
    case 0:
    case 1:
      return launch(std::integral_constant<int, 1>{});
    case 2:
      return launch(std::integral_constant<int, 2>{});
    case 3:
      return launch(std::integral_constant<int, 3>{});
    default:
      return launch(std::integral_constant<int, 4>{});
  }
}

// Raises the kernel's dynamic shared-memory limit when smem is over the default 48 KiB.
template <class K>
void allow_smem(K kernel, size_t smem) {
  if (smem > 48 * 1024)
    SPOOL_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
}

}  // namespace

void CudaBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& seg,
                            const AttentionParams& p, const Tensor& out, const Tensor& lse) {
  const Geo g = geo_of(q, seg, p);
  if (g.b * g.h * g.t == 0) return;
  const dim3 grid(unsigned((g.t + kBlockRows - 1) / kBlockRows), unsigned(g.b * g.h));
  const size_t smem = size_t(kBlockRows * g.d + kChunk * (g.d + 1) + kChunk * g.d) * sizeof(float);
  with_nt(g.d, [&](auto nt) {
    constexpr int NT = decltype(nt)::value;
    allow_smem(attention_forward_kernel<NT>, smem);
    SPOOL_LAUNCH(attention_forward_kernel<NT>, grid, kWarps * 32, smem, stream(), g,
                 static_cast<const float*>(q.raw()), static_cast<const float*>(k.raw()),
                 static_cast<const float*>(v.raw()), static_cast<float*>(out.raw()),
                 static_cast<float*>(lse.raw()));
    SPOOL_CUDA_LAUNCHED("attention_forward");
  });
}

void CudaBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& seg, const AttentionParams& p, const Tensor& out,
                                     const Tensor& lse, const Tensor& gout, const Tensor& gq,
                                     const Tensor& gk, const Tensor& gv) {
  const Geo g = geo_of(q, seg, p);
  const int64_t rows = g.b * g.h * g.t;
  if (rows == 0) return;
  auto* drow = static_cast<float*>(scratch(size_t(rows) * sizeof(float)));
  SPOOL_LAUNCH(attention_rowdot_kernel, grid_for(rows * 32), kThreads, 0, stream(), rows, g.d,
               static_cast<const float*>(gout.raw()), static_cast<const float*>(out.raw()), drow);
  SPOOL_CUDA_LAUNCHED("attention_backward (row dots)");
  const dim3 grid(unsigned((g.t + kBlockRows - 1) / kBlockRows), unsigned(g.b * g.h));
  const float* pq = static_cast<const float*>(q.raw());
  const float* pk = static_cast<const float*>(k.raw());
  const float* pv = static_cast<const float*>(v.raw());
  const float* pl = static_cast<const float*>(lse.raw());
  const float* pdo = static_cast<const float*>(gout.raw());
  const size_t smem_kv =
      size_t(2 * kBlockRows * g.d + 2 * kChunk * (g.d + 1) + 2 * kChunk) * sizeof(float);
  with_nt(g.d, [&](auto nt) {
    constexpr int NT = decltype(nt)::value;
    allow_smem(attention_dkdv_kernel<NT>, smem_kv);
    SPOOL_LAUNCH(attention_dkdv_kernel<NT>, grid, kWarps * 32, smem_kv, stream(), g, pq, pk, pv, pl,
                 drow, pdo, static_cast<float*>(gk.raw()), static_cast<float*>(gv.raw()));
    SPOOL_CUDA_LAUNCHED("attention_backward (dK, dV)");
  });
  const size_t smem_q = size_t(2 * kBlockRows * g.d + 2 * kChunk * (g.d + 1)) * sizeof(float);
  with_nt(g.d, [&](auto nt) {
    constexpr int NT = decltype(nt)::value;
    allow_smem(attention_dq_kernel<NT>, smem_q);
    SPOOL_LAUNCH(attention_dq_kernel<NT>, grid, kWarps * 32, smem_q, stream(), g, pq, pk, pv, pl,
                 drow, pdo, static_cast<float*>(gq.raw()));
    SPOOL_CUDA_LAUNCHED("attention_backward (dQ)");
  });
}

}  // namespace spool::cuda
