// CPU flash attention (f32). Forward: per (batch, head, query tile), key tiles stream past with
// an online softmax (running max m, running sum l, rescaled accumulator), so the T x T matrix is
// never stored; out and lse = m + log l are written. Backward: per (batch, head), the
// probabilities are recomputed tile by tile from lse:
//   P = exp(S - lse), dV += P^T dO, dP = dO V^T, dS = P (dP - rowsum(dO O)),
//   dQ += dS K scale, dK += dS^T Q scale.
// One (batch, head) per task in backward keeps dK and dV free of races and sums in a fixed order.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/paths.h"
#include "ops/cpu/vec_math.h"

namespace spool::cpu {

namespace {

constexpr int64_t kTile = 64;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Dims {
  int64_t b, h, t, d;
};

// C [m, n] (+)= A [m, k] op B on the f32 GEMM path matmul takes (ops/cpu/paths.h), on the
// calling thread inside the parallel region. (OpenBLAS picks its kernels by the CPU's model and
// falls back to SSE3 "Prescott" ones on a model it does not know, as on some virtual machines;
// oneDNN, the default path, ran them at 20-35 % of the roofline there: docs/profiling.md.)
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, "flash attention");
}

// Which keys of [j0, j0 + nc) query i may see.
struct Mask {
  bool causal;
  const int64_t* seg;  // document start of each token in this row, or null
  bool visible(int64_t i, int64_t j) const {
    if (causal && j > i) return false;
    return !seg || seg[i] == seg[j];
  }
  // The first key any of queries [i0, i1) can see (documents are contiguous).
  int64_t first_key(int64_t i0) const { return seg ? seg[i0] : 0; }
  // Whether every query of [i0, i0 + nr) sees every key of [j0, j0 + nc): the tile needs no
  // mask (under a causal mask, the tiles below the diagonal; documents, those inside one).
  bool all_visible(int64_t i0, int64_t nr, int64_t j0, int64_t nc) const {
    if (causal && j0 + nc - 1 > i0) return false;
    return !seg || std::min(seg[i0], seg[j0]) == std::max(seg[i0 + nr - 1], seg[j0 + nc - 1]);
  }
};

// The largest of the running maximum `mx` and s[0, n), in eight lanes so that it vectorises;
// a NaN is never taken (as std::max(mx, s[c]) in scan order), so it reaches the output through
// exp and the row sum instead.
inline float row_max(const float* s, int64_t n, float mx) {
  float m[8] = {mx, mx, mx, mx, mx, mx, mx, mx};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (int k = 0; k < 8; ++k) m[k] = s[c + k] > m[k] ? s[c + k] : m[k];
  for (; c < n; ++c) m[0] = s[c] > m[0] ? s[c] : m[0];
  for (int k = 1; k < 8; ++k) mx = m[k] > mx ? m[k] : mx;
  return m[0] > mx ? m[0] : mx;
}

// s[c] = exp(s[c] - mx) over [0, n); returns their sum, added in eight lanes (a fixed order).
inline float exp_row(float* s, int64_t n, float mx) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (int k = 0; k < 8; ++k) {
      s[c + k] = exp_f32(s[c + k] - mx);
      acc[k] += s[c + k];
    }
  float tail = 0;
  for (; c < n; ++c) {
    s[c] = exp_f32(s[c] - mx);
    tail += s[c];
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}

float keep_scale(const AttentionParams& p, const Dims& g, int64_t bh, int64_t i, int64_t j) {
  const double u = uniform_at(p.rng, (bh * g.t + i) * g.t + j);
  return u >= p.dropout_p ? float(1.0 / (1.0 - p.dropout_p)) : 0.0f;
}

}  // namespace

void CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& seg,
                           const AttentionParams& p, const Tensor& out, const Tensor& lse) {
  const Dims g{q.shape()[0], q.shape()[1], q.shape()[2], q.shape()[3]};
  const float* pq = q.data<float>();
  const float* pk = k.data<float>();
  const float* pv = v.data<float>();
  const int64_t* ps = seg.defined() ? seg.data<int64_t>() : nullptr;
  float* po = out.data<float>();
  float* pl = lse.data<float>();
  const int64_t tiles = (g.t + kTile - 1) / kTile, tasks = g.b * g.h * tiles;
  const float scale = float(p.scale);
#pragma omp parallel
  {
    std::vector<float> s(kTile * kTile), acc(kTile * g.d), m(kTile), l(kTile);
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t bh = task / tiles, i0 = (task % tiles) * kTile;
      const int64_t nr = std::min(kTile, g.t - i0), b = bh / g.h;
      const Mask mask{p.causal, ps ? ps + b * g.t : nullptr};
      const float* Q = pq + (bh * g.t + i0) * g.d;
      std::fill(acc.begin(), acc.begin() + nr * g.d, 0.0f);
      std::fill(m.begin(), m.end(), kNegInf);
      std::fill(l.begin(), l.end(), 0.0f);
      const int64_t j_end = p.causal ? i0 + nr : g.t;
      for (int64_t j0 = mask.first_key(i0) / kTile * kTile; j0 < j_end; j0 += kTile) {
        const int64_t nc = std::min(kTile, g.t - j0);
        const float* K = pk + (bh * g.t + j0) * g.d;
        const float* V = pv + (bh * g.t + j0) * g.d;
        gemm(false, true, nr, nc, g.d, scale, Q, g.d, K, g.d, 0.0f, s.data(), kTile);  // S = QK^T
        const bool full = mask.all_visible(i0, nr, j0, nc);
        for (int64_t r = 0; r < nr; ++r) {
          float* sr = s.data() + r * kTile;
          const int64_t i = i0 + r;
          if (!full)
            for (int64_t c = 0; c < nc; ++c)
              if (!mask.visible(i, j0 + c)) sr[c] = kNegInf;
          const float mx = row_max(sr, nc, m[size_t(r)]);
          if (mx == kNegInf) {  // nothing visible yet in this row
            std::fill(sr, sr + nc, 0.0f);
            continue;
          }
          const float alpha = exp_f32(m[size_t(r)] - mx);
          const float rowsum = exp_row(sr, nc, mx);
          l[size_t(r)] = l[size_t(r)] * alpha + rowsum;
          m[size_t(r)] = mx;
          float* ar = acc.data() + r * g.d;
          for (int64_t c = 0; c < g.d; ++c) ar[c] *= alpha;
          if (p.dropout_p > 0)
            for (int64_t c = 0; c < nc; ++c) sr[c] *= keep_scale(p, g, bh, i, j0 + c);
        }
        gemm(false, false, nr, g.d, nc, 1.0f, s.data(), kTile, V, g.d, 1.0f, acc.data(), g.d);
      }
      for (int64_t r = 0; r < nr; ++r) {
        float* o = po + (bh * g.t + i0 + r) * g.d;
        const float inv = l[size_t(r)] > 0 ? 1.0f / l[size_t(r)] : 0.0f;
        for (int64_t c = 0; c < g.d; ++c) o[c] = acc[size_t(r * g.d + c)] * inv;
        pl[bh * g.t + i0 + r] = l[size_t(r)] > 0 ? m[size_t(r)] + std::log(l[size_t(r)]) : kNegInf;
      }
    }
  }
}

void CpuBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& seg, const AttentionParams& p, const Tensor& out,
                                    const Tensor& lse, const Tensor& gout, const Tensor& gq,
                                    const Tensor& gk, const Tensor& gv) {
  const Dims g{q.shape()[0], q.shape()[1], q.shape()[2], q.shape()[3]};
  const float* pq = q.data<float>();
  const float* pk = k.data<float>();
  const float* pv = v.data<float>();
  const float* po = out.data<float>();
  const float* pl = lse.data<float>();
  const float* pdo = gout.data<float>();
  const int64_t* ps = seg.defined() ? seg.data<int64_t>() : nullptr;
  float* pdq = gq.data<float>();
  float* pdk = gk.data<float>();
  float* pdv = gv.data<float>();
  const float scale = float(p.scale);
  const int64_t tiles = (g.t + kTile - 1) / kTile;
#pragma omp parallel
  {
    std::vector<float> s(kTile * kTile), dp(kTile * kTile), drow(size_t(g.t));
#pragma omp for schedule(dynamic)
    for (int64_t bh = 0; bh < g.b * g.h; ++bh) {
      const int64_t b = bh / g.h;
      const Mask mask{p.causal, ps ? ps + b * g.t : nullptr};
      const int64_t base = bh * g.t * g.d;
      std::fill(pdq + base, pdq + base + g.t * g.d, 0.0f);
      std::fill(pdk + base, pdk + base + g.t * g.d, 0.0f);
      std::fill(pdv + base, pdv + base + g.t * g.d, 0.0f);
      for (int64_t i = 0; i < g.t; ++i) {  // D_i = rowsum(dO * O)
        double dsum = 0;
        for (int64_t c = 0; c < g.d; ++c)
          dsum += double(pdo[base + i * g.d + c]) * po[base + i * g.d + c];
        drow[size_t(i)] = float(dsum);
      }
      for (int64_t jt = 0; jt < tiles; ++jt) {
        const int64_t j0 = jt * kTile, nc = std::min(kTile, g.t - j0);
        const float* K = pk + base + j0 * g.d;
        const float* V = pv + base + j0 * g.d;
        for (int64_t it = p.causal ? jt : 0; it < tiles; ++it) {
          const int64_t i0 = it * kTile, nr = std::min(kTile, g.t - i0);
          // Documents are contiguous: the tile's first query starts the earliest one it sees,
          // and a key tile whose first document starts after the last query is unseen.
          if (ps && j0 + nc <= mask.first_key(i0)) continue;
          if (ps && ps[b * g.t + j0] > i0 + nr - 1) continue;
          const float* Q = pq + base + i0 * g.d;
          const float* dO = pdo + base + i0 * g.d;
          gemm(false, true, nr, nc, g.d, scale, Q, g.d, K, g.d, 0.0f, s.data(), kTile);
          gemm(false, true, nr, nc, g.d, 1.0f, dO, g.d, V, g.d, 0.0f, dp.data(), kTile);
          const bool plain = p.dropout_p == 0 && mask.all_visible(i0, nr, j0, nc);
          for (int64_t r = 0; r < nr; ++r) {
            const int64_t i = i0 + r;
            const float li = pl[bh * g.t + i];
            float* sr = s.data() + r * kTile;
            float* dr = dp.data() + r * kTile;
            if (plain) {  // every key visible, no dropout: a loop that vectorises
              const float di = drow[size_t(i)];
              if (li == kNegInf) {
                std::fill(sr, sr + nc, 0.0f);
                std::fill(dr, dr + nc, 0.0f);
                continue;
              }
              for (int64_t c = 0; c < nc; ++c) {
                const float prob = exp_f32(sr[c] - li);
                dr[c] = prob * (dr[c] - di);
                sr[c] = prob;
              }
              continue;
            }
            for (int64_t c = 0; c < nc; ++c) {
              const int64_t j = j0 + c;
              const float prob =
                  (li == kNegInf || !mask.visible(i, j)) ? 0.0f : exp_f32(sr[c] - li);
              const float keep = p.dropout_p > 0 ? keep_scale(p, g, bh, i, j) : 1.0f;
              // sr becomes the dropped probability (for dV), dr becomes dS.
              dr[c] = prob * (dr[c] * keep - drow[size_t(i)]);
              sr[c] = prob * keep;
            }
          }
          gemm(true, false, nc, g.d, nr, 1.0f, s.data(), kTile, dO, g.d, 1.0f,
               pdv + base + j0 * g.d,
               g.d);  // dV += P^T dO
          gemm(false, false, nr, g.d, nc, scale, dp.data(), kTile, K, g.d, 1.0f,
               pdq + base + i0 * g.d, g.d);  // dQ += dS K scale
          gemm(true, false, nc, g.d, nr, scale, dp.data(), kTile, Q, g.d, 1.0f,
               pdk + base + j0 * g.d, g.d);  // dK += dS^T Q scale
        }
      }
    }
  }
}

}  // namespace spool::cpu
