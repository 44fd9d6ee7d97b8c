// The path switches of ops/cpu/paths.h.
#include "ops/cpu/paths.h"

#include <atomic>
#include <cstdlib>

#include "engine/error.h"

#include <cblas.h>

#ifdef SPOOL_HAVE_ONEDNN
#include <dnnl.h>

#include <dnnl.hpp>
#endif

namespace spool::cpu {

namespace {

// -1 until set: the first conv_path() / gemm_path() reads the environment.
std::atomic<int> g_conv{-1}, g_gemm{-1};

// The path `var` names (`names[0]` ours, `names[1]` oneDNN), oneDNN when unset and available.
int from_environment(const char* var, const char* const (&names)[2]) {
  const char* v = std::getenv(var);
  const std::string s = v ? v : "";
  if (s.empty()) return onednn_available() ? 1 : 0;
  if (s == names[0]) return 0;
  if (s == names[1]) {
    std::string why;
    // Left unset: every call says why, rather than quietly taking the other path.
    if (!onednn_available(&why)) fail(var, "=", s, ": ", why);
    return 1;
  }
  fail(var, "=", s, ": expected ", names[0], " or ", names[1]);
}

}  // namespace

bool onednn_available(std::string* why) {
#ifdef SPOOL_HAVE_ONEDNN
  return true;
#else
  if (why)
    *why =
        "this build has no oneDNN (install libdnnl-dev and reconfigure, or configure with "
        "-DSPOOL_ONEDNN=ON to require it)";
  return false;
#endif
}

std::string onednn_version() {
#ifdef SPOOL_HAVE_ONEDNN
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
#else
  return "";
#endif
}

void set_conv(Conv c) {
  std::string why;
  if (c == Conv::onednn && !onednn_available(&why)) fail("cpu::set_conv(Conv::onednn): ", why);
  g_conv.store(int(c));
}

Conv conv_path() {
  int c = g_conv.load();
  if (c < 0) g_conv.store(c = from_environment("SPOOL_CPU_CONV", {"im2col", "onednn"}));
  return Conv(c);
}

void set_gemm(Gemm g) {
  std::string why;
  if (g == Gemm::onednn && !onednn_available(&why)) fail("cpu::set_gemm(Gemm::onednn): ", why);
  g_gemm.store(int(g));
}

Gemm gemm_path() {
  int g = g_gemm.load();
  if (g < 0) g_gemm.store(g = from_environment("SPOOL_CPU_GEMM", {"openblas", "onednn"}));
  return Gemm(g);
}

void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
           const char* what) {
#ifdef SPOOL_HAVE_ONEDNN
  if (gemm_path() == Gemm::onednn) {
    const dnnl_status_t st =
        dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    SPOOL_CHECK(st == dnnl_success, what, " (oneDNN sgemm): status ", int(st), " for [", m, ", ", k,
                "] @ [", k, ", ", n, "]; SPOOL_CPU_GEMM=openblas takes OpenBLAS");
    return;
  }
#endif
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m),
              int(n), int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

}  // namespace spool::cpu
