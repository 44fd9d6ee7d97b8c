// Process groups and collectives for data-parallel training (docs/distributed.md).
//
// A run of N processes finds its rank and size from its launcher: Open MPI's mpirun
// (OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK), an MPICH-style PMI launcher (PMI_RANK, PMI_SIZE),
// Slurm's srun (SLURM_PROCID, SLURM_NTASKS) or the RANK, WORLD_SIZE, LOCAL_RANK variables of other
// launchers. More than one process needs MPI to connect them: srun and RANK/WORLD_SIZE alone are
// refused with a message naming mpirun, rather than running N unconnected copies. One process (no
// launcher, or a world of 1) never initialises MPI: every collective of its group is the identity.
//
// The collectives work on contiguous tensors (f32, f64, i64): CPU tensors through MPI, CUDA
// tensors through NCCL (engine/collectives.h; its communicator made at the first such collective,
// its id passed over MPI; NCCL's own sum order). For CPU tensors the sums are taken in a
// fixed order whatever the MPI library's algorithm: reduce_scatter sends every rank's chunk to
// its owner (an all-to-all) and the owner adds them in rank order 0, 1, ..., N - 1; all_reduce is
// that reduce-scatter followed by an all-gather. Every rank so holds the same bits, and a run
// repeats bit for bit. Each collective on CPU tensors waits at most timeout() seconds for its
// peers, then throws an Error naming the collective, so a dead or stuck peer becomes an error,
// never a hang. (NCCL's collectives are queued on the GPU's stream and have no time-out here.)
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "engine/tensor.h"

namespace spool::dist {

// Where this process stands in its run.
struct Launch {
  int rank = 0, world = 1, local_rank = 0;
  // "mpirun" (Open MPI), "pmi" (MPICH-style), "slurm", "env" (RANK/WORLD_SIZE) or "single".
  std::string launcher = "single";
};

// The launch described by the environment (`get` reads a variable; nullptr: unset). Throws an
// Error naming the variable when one is not a number or the rank is outside the world.
Launch discover(const std::function<const char*(const char*)>& get);
Launch discover();  // from this process's environment

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  int rank() const { return rank_; }
  int world() const { return world_; }
  double timeout() const { return timeout_; }
  void set_timeout(double seconds);

  // Every rank's `t` replaced by the sum over ranks, added in rank order.
  virtual void all_reduce_sum(Tensor& t) = 0;
  // `in` holds world() chunks of out.numel() elements; rank r's `out` becomes the sum over ranks
  // of their chunk r, added in rank order. `out` may be this rank's chunk of `in` itself (in
  // place: nothing is allocated, and `in`'s other chunks are left undefined).
  virtual void reduce_scatter_sum(const Tensor& in, Tensor& out) = 0;
  // `out` holds world() chunks of in.numel() elements; chunk r becomes rank r's `in`, which may
  // be this rank's chunk of `out` itself (in place).
  virtual void all_gather(const Tensor& in, Tensor& out) = 0;
  // Every rank's `t` replaced by rank `root`'s.
  virtual void broadcast(Tensor& t, int root) = 0;
  virtual void barrier() = 0;
  // A group of the same processes whose collectives are ordered apart from this one's (MPI:
  // MPI_Comm_dup; every rank must call it, in the same order). Data parallel reduces its buckets
  // on one, from its communication thread, while the main thread's collectives (synchronised
  // batch norm, the logged loss) use the other: each group's collectives are issued in the same
  // order on every rank, and MPI calls from the two threads are serialised by a lock.
  virtual std::unique_ptr<ProcessGroup> duplicate() = 0;
  // Seconds spent inside collectives since the group was made (for the scaling study).
  double comm_seconds() const { return comm_seconds_; }
  // Whether collectives may be called from another thread than the one that made the group,
  // one thread at a time (MPI_THREAD_SERIALIZED): data parallel's communication thread.
  bool serialized_threads() const { return serialized_threads_; }

 protected:
  ProcessGroup(int rank, int world) : rank_(rank), world_(world) {}
  // Checks a collective's tensor: contiguous, f32, f64 or i64.
  void check(const Tensor& t, const char* what, const char* which) const;
  int rank_, world_;
  double timeout_ = 300;
  double comm_seconds_ = 0;
  bool serialized_threads_ = true;
};

// The process group of this run, made on first use from discover(): MPI when the world has more
// than one process, otherwise a group of one. Throws when the launch needs MPI and this build has
// none, or when a launcher set WORLD_SIZE > 1 without starting the processes under MPI.
ProcessGroup& world();
// A group of one process: collectives are copies (tests, and single-process runs).
std::unique_ptr<ProcessGroup> single_process_group();
// Whether world() has been made and holds more than one process.
bool distributed();
// This build's MPI library, or "none".
std::string mpi_version();

// Ends the run: MPI_Finalize after a clean exit; after an error on this rank, MPI_Abort, which
// stops every rank with `code` (the message was printed first). No-op for one process.
void finalize();
[[noreturn]] void abort_all(int code);

}  // namespace spool::dist
