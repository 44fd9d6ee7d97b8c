// spool info: what this build and this machine offer.
#include <cblas.h>
#include <omp.h>

#include <cstdio>
#include <string>

#include "dist/dist.h"
#include "ops/cpu/paths.h"
#include "tools/cli.h"
#include "tools/commands.h"
#ifdef SPOOL_HAVE_CUDA
#include "cuda/control.h"
#include "cuda/probe.h"
#endif

namespace spool::cli {

int cmd_info(int argc, char** argv) {
  Args args(argc, argv, 2, {}, "info");
  std::printf("spool %s\n", SPOOL_VERSION);
#ifdef SPOOL_HAVE_CUDA
  std::printf("backends: cpu, cuda\n");
  std::string why;
  int n = spool::cuda::device_count(&why);
  if (n > 0)
    std::printf("gpu: %d present (%s)\n", n, spool::cuda::device_name(0).c_str());
  else
    std::printf("gpu: none (%s)\n", why.c_str());
  std::string no_cudnn;
  if (spool::cuda::cudnn_available(&no_cudnn)) {
    const size_t v = spool::cuda::cudnn_version();
    std::printf("cudnn: %zu.%zu.%zu (convolution path with SPOOL_CUDA_CONV=cudnn)\n", v / 10000,
                v / 100 % 100, v % 100);
  } else {
    std::printf("cudnn: none (%s)\n", no_cudnn.c_str());
  }
#else
  std::printf("backends: cpu\n");
  std::printf("gpu: not checked (built without CUDA)\n");
#endif
  std::printf("blas: %s\n", openblas_get_config());
  const bool avx512 = __builtin_cpu_supports("avx512f"), avx2 = __builtin_cpu_supports("avx2");
  std::printf("cpu: %s; f32 matmul %s, convolution %s\n",
              avx512 ? "AVX-512"
              : avx2 ? "AVX2"
                     : "neither AVX2 nor AVX-512",
              cpu::gemm_path() == cpu::Gemm::onednn ? "oneDNN" : "OpenBLAS",
              cpu::conv_path() == cpu::Conv::onednn ? "oneDNN" : "im2col + OpenBLAS");
  // OpenBLAS picks its kernels by the CPU's model number when it loads; on a model it does not
  // know (some virtual machines report none) it falls back to its SSE3 kernels.
  const std::string core = openblas_get_corename();
  if ((avx2 || avx512) && (core == "Prescott" || core == "Core2" || core == "Nehalem" ||
                           core == "Penryn" || core == "Dunnington" || core == "Atom"))
    std::printf(
        "note: OpenBLAS did not recognise this CPU and runs its %s kernels, several times slower "
        "for f64 products and under SPOOL_CPU_GEMM=openblas or SPOOL_CPU_CONV=im2col; "
        "OPENBLAS_CORETYPE=%s in the environment selects the CPU's own\n",
        core.c_str(), avx512 ? "SkylakeX" : "Haswell");
  std::printf("threads: %d\n", omp_get_max_threads());
  // The run's place: rank 0 of 1 for one process (MPI is not started then).
  const dist::ProcessGroup& g = dist::world();
  std::printf("rank: %d of %d (%s)\n", g.rank(), g.world(), dist::discover().launcher.c_str());
  std::printf("mpi: %s\n", dist::mpi_version().c_str());
  return 0;
}

}  // namespace spool::cli
