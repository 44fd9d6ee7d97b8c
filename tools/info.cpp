// spool info: what this build and this machine offer.
#include <cblas.h>
#include <omp.h>

#include <cstdio>

#include "tools/cli.h"
#include "tools/commands.h"
#ifdef SPOOL_HAVE_CUDA
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
#else
  std::printf("backends: cpu\n");
  std::printf("gpu: not checked (built without CUDA)\n");
#endif
  std::printf("blas: %s\n", openblas_get_config());
  std::printf("threads: %d\n", omp_get_max_threads());
  return 0;
}

}  // namespace spool::cli
