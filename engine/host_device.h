// SPOOL_HD marks small inline functions that the CUDA kernels call on the device as well.
#pragma once

#if defined(__CUDACC__)
#define SPOOL_HD __host__ __device__ __forceinline__
#else
#define SPOOL_HD inline
#endif
