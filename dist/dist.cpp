// Rank discovery, the group of one process, and the MPI process group (SPOOL_HAVE_MPI).
#include "dist/dist.h"

#include <sched.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/clock.h"
#include "engine/collectives.h"
#include "engine/error.h"
#include "engine/factory.h"

#ifdef SPOOL_HAVE_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only, not the deprecated C++ bindings
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace spool::dist {

namespace {

// A variable's value as an int in [lo, hi]; `fallback` when unset.
int env_int(const std::function<const char*(const char*)>& get, const char* name, int lo, int hi,
            int fallback) {
  const char* v = get(name);
  if (!v) return fallback;
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  SPOOL_CHECK(*v && end && *end == 0 && errno == 0 && x >= lo && x <= hi,
              "distributed launch: ", name, "='", v, "' is not a whole number from ", lo, " to ",
              hi);
  return int(x);
}

// Copies, for the group of one: in and out hold the same elements.
void copy_into(const Tensor& in, Tensor& out) {
  if (in.raw() == out.raw()) return;
  SPOOL_CHECK(in.device() == Device::cpu() && out.device() == Device::cpu(),
              "distributed: a group of one copies CPU tensors; ", describe(in), " is on ",
              in.device().str());
  std::memcpy(out.raw(), in.raw(), in.nbytes());
}

class SingleGroup : public ProcessGroup {
 public:
  SingleGroup() : ProcessGroup(0, 1) {}
  void all_reduce_sum(Tensor& t) override { check(t, "all_reduce_sum", "tensor"); }
  void reduce_scatter_sum(const Tensor& in, Tensor& out) override {
    check(in, "reduce_scatter_sum", "input");
    check(out, "reduce_scatter_sum", "output");
    SPOOL_CHECK(in.numel() == out.numel() && in.dtype() == out.dtype(),
                "reduce_scatter_sum: input ", describe(in), " is not 1 chunk of output ",
                describe(out));
    copy_into(in, out);
  }
  void all_gather(const Tensor& in, Tensor& out) override {
    check(in, "all_gather", "input");
    check(out, "all_gather", "output");
    SPOOL_CHECK(in.numel() == out.numel() && in.dtype() == out.dtype(), "all_gather: output ",
                describe(out), " is not 1 chunk of input ", describe(in));
    copy_into(in, out);
  }
  void broadcast(Tensor& t, int root) override {
    check(t, "broadcast", "tensor");
    SPOOL_CHECK(root == 0, "broadcast: root ", root, " is not a rank of a group of 1");
  }
  void barrier() override {}
  std::unique_ptr<ProcessGroup> duplicate() override {
    auto g = std::make_unique<SingleGroup>();
    g->set_timeout(timeout_);
    return g;
  }
};

#ifdef SPOOL_HAVE_MPI

// MPI_THREAD_SERIALIZED: one thread in MPI at a time, whichever group it calls.
std::mutex& mpi_mutex() {
  static std::mutex m;
  return m;
}

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::f32:
      return MPI_FLOAT;
    case DType::f64:
      return MPI_DOUBLE;
    default:
      return MPI_INT64_T;
  }
}

// out[i] = chunk 0[i] + chunk 1[i] + ... + chunk world-1[i], added in that order, for the
// world consecutive chunks of n elements at `chunks`. `out` may be one of the chunks: each
// element is summed before it is written.
template <class T>
void sum_chunks_of(T* out, const T* chunks, int64_t n, int world) {
  for (int64_t i = 0; i < n; ++i) {
    T acc = chunks[i];
    for (int r = 1; r < world; ++r) acc += chunks[r * n + i];
    out[i] = acc;
  }
}
void sum_chunks(void* out, const void* chunks, int64_t n, int world, DType t) {
  switch (t) {
    case DType::f32:
      return sum_chunks_of(static_cast<float*>(out), static_cast<const float*>(chunks), n, world);
    case DType::f64:
      return sum_chunks_of(static_cast<double*>(out), static_cast<const double*>(chunks), n, world);
    default:
      return sum_chunks_of(static_cast<int64_t*>(out), static_cast<const int64_t*>(chunks), n,
                           world);
  }
}

// Elements [r * n, (r + 1) * n) of contiguous `t`, as a 1-D view.
Tensor chunk_of(const Tensor& t, int r, int64_t n) {
  return Tensor::make(t.storage(), t.offset() + r * n, {n}, {1}, t.dtype());
}

class MpiGroup : public ProcessGroup {
 public:
  MpiGroup(int rank, int world, bool serialized, MPI_Comm comm)
      : ProcessGroup(rank, world), comm_(comm) {
    serialized_threads_ = serialized;
  }
  ~MpiGroup() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (comm_ != MPI_COMM_WORLD && !finalized) {
      std::lock_guard<std::mutex> lock(mpi_mutex());
      MPI_Comm_free(&comm_);
    }
  }

  std::unique_ptr<ProcessGroup> duplicate() override {
    MPI_Comm dup;
    {
      std::lock_guard<std::mutex> lock(mpi_mutex());
      MPI_Comm_dup(comm_, &dup);
      MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
    }
    auto g = std::make_unique<MpiGroup>(rank_, world_, serialized_threads_, dup);
    g->set_timeout(timeout_);
    return g;
  }

  void all_reduce_sum(Tensor& t) override {
    check(t, "all_reduce_sum", "tensor");
    if (t.device() != Device::cpu()) return device_comm(t).all_reduce_sum(t);
    const int64_t n = t.numel(), chunk = (n + world_ - 1) / world_;
    if (n == 0) return;
    // Padded to world() equal chunks: reduce-scatter, then all-gather, both in place in the
    // padded buffer.
    Tensor padded = zeros({chunk * world_}, t.dtype());
    std::memcpy(padded.raw(), t.raw(), t.nbytes());
    Tensor mine = chunk_of(padded, rank_, chunk);
    reduce_scatter_sum(padded, mine);
    all_gather(mine, padded);
    std::memcpy(t.raw(), padded.raw(), t.nbytes());
  }

  void reduce_scatter_sum(const Tensor& in, Tensor& out) override {
    check(in, "reduce_scatter_sum", "input");
    check(out, "reduce_scatter_sum", "output");
    if (in.device() != Device::cpu()) return device_comm(in).reduce_scatter_sum(in, out);
    const int64_t n = out.numel();
    SPOOL_CHECK(in.numel() == n * world_ && in.dtype() == out.dtype(), "reduce_scatter_sum: input ",
                describe(in), " is not ", world_, " chunks of output ", describe(out));
    check_count(n, "reduce_scatter_sum");
    // Chunk r of every rank's input goes to rank r; rank r adds them in rank order. In place
    // (`out` is this rank's chunk of `in`), the exchange happens in `in` itself.
    const size_t bytes = size_t(n) * itemsize(in.dtype());
    const bool in_place = out.raw() == static_cast<const char*>(in.raw()) + rank_ * bytes;
    Tensor received = in_place ? in : empty({n * world_}, in.dtype());
    MPI_Request req;
    {
      std::lock_guard<std::mutex> lock(mpi_mutex());
      check_rc(MPI_Ialltoall(in_place ? MPI_IN_PLACE : in.raw(), int(n), mpi_type(in.dtype()),
                             received.raw(), int(n), mpi_type(in.dtype()), comm_, &req),
               "reduce_scatter_sum");
    }
    wait(req, "reduce_scatter_sum", n * world_, {in, received});
    sum_chunks(out.raw(), received.raw(), n, world_, in.dtype());
  }

  void all_gather(const Tensor& in, Tensor& out) override {
    check(in, "all_gather", "input");
    check(out, "all_gather", "output");
    if (in.device() != Device::cpu()) return device_comm(in).all_gather(in, out);
    const int64_t n = in.numel();
    SPOOL_CHECK(out.numel() == n * world_ && in.dtype() == out.dtype(), "all_gather: output ",
                describe(out), " is not ", world_, " chunks of input ", describe(in));
    check_count(n, "all_gather");
    // The input may be this rank's chunk of the output itself.
    const bool in_place =
        in.raw() == static_cast<char*>(out.raw()) + rank_ * n * int64_t(itemsize(in.dtype()));
    MPI_Request req;
    {
      std::lock_guard<std::mutex> lock(mpi_mutex());
      check_rc(MPI_Iallgather(in_place ? MPI_IN_PLACE : in.raw(), int(n), mpi_type(in.dtype()),
                              out.raw(), int(n), mpi_type(in.dtype()), comm_, &req),
               "all_gather");
    }
    wait(req, "all_gather", n * world_, {in, out});
  }

  void broadcast(Tensor& t, int root) override {
    check(t, "broadcast", "tensor");
    SPOOL_CHECK(root >= 0 && root < world_, "broadcast: root ", root, " is not a rank of ", world_);
    if (t.device() != Device::cpu()) return device_comm(t).broadcast(t, root);
    check_count(t.numel(), "broadcast");
    MPI_Request req;
    {
      std::lock_guard<std::mutex> lock(mpi_mutex());
      check_rc(MPI_Ibcast(t.raw(), int(t.numel()), mpi_type(t.dtype()), root, comm_, &req),
               "broadcast");
    }
    wait(req, "broadcast", t.numel(), {t});
  }

  void barrier() override {
    MPI_Request req;
    {
      std::lock_guard<std::mutex> lock(mpi_mutex());
      check_rc(MPI_Ibarrier(comm_, &req), "barrier");
    }
    wait(req, "barrier", 0, {});
  }

 private:
  static void check_count(int64_t n, const char* what) {
    SPOOL_CHECK(n <= int64_t(INT32_MAX), what, ": ", n,
                " elements a rank are more than one MPI call moves (2^31 - 1); use smaller "
                "buckets (--bucket-mb)");
  }
  // Polls a non-blocking collective until it completes or timeout() passes. Yields the core
  // between polls: with more ranks than cores (mpirun --oversubscribe) a spinning rank would
  // starve the peer it waits for.
  // An MPI call's error (the communicator returns them: MPI_ERRORS_RETURN) as an Error.
  static void check_rc(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int n = 0;
    MPI_Error_string(rc, text, &n);
    fail("distributed: ", what, ": MPI failed: ", std::string(text, size_t(n)));
  }
  // `buffers` are the collective's: after a time-out MPI may still write them, so they are kept
  // alive (leaked) rather than freed while the error unwinds.
  void wait(MPI_Request& req, const char* what, int64_t elements, Tensors buffers) {
    const double t0 = now_ms() / 1000;
    int done = 0;
    for (int polls = 0;; ++polls) {
      {
        std::lock_guard<std::mutex> lock(mpi_mutex());
        check_rc(MPI_Test(&req, &done, MPI_STATUS_IGNORE), what);
      }
      if (done) break;
      const double waited = now_ms() / 1000 - t0;
      if (waited > timeout_) {
        static std::vector<Tensors> abandoned;
        abandoned.push_back(std::move(buffers));
        fail("distributed: ", what, " of ", elements, " elements on rank ", rank_, " of ", world_,
             " waited ", waited,
             " s for its peers (the time-out, --dist-timeout): a peer has stopped or is stuck");
      }
      if (polls < 1000)
        sched_yield();
      else
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    comm_seconds_ += now_ms() / 1000 - t0;
  }
  // The NCCL communicator of tensors on `t`'s device, made at its first collective: rank 0
  // makes its id, MPI gives it to every rank.
  DeviceComm& device_comm(const Tensor& t) {
    SPOOL_CHECK(t.device().type == DeviceType::cuda, "distributed: ", describe(t), " on ",
                t.device().str(), " has no collectives");
    if (!device_comm_) {
      std::string why;
      SPOOL_CHECK(device_comm_available(t.device(), &why), "distributed: ", why);
      std::string id = rank_ == 0 ? device_comm_id(t.device()) : std::string();
      Tensor bytes = zeros({128}, DType::i64);  // the id's bytes, one a number
      for (size_t i = 0; i < id.size() && i < 128; ++i)
        bytes.data<int64_t>()[i] = int64_t(uint8_t(id[i]));
      Tensor size = full({1}, double(id.size()), DType::i64);
      broadcast(size, 0);
      broadcast(bytes, 0);
      id.resize(size_t(size.item()));
      for (size_t i = 0; i < id.size(); ++i) id[i] = char(uint8_t(bytes.data<int64_t>()[i]));
      device_comm_ = make_device_comm(t.device(), id, rank_, world_);
      device_ = t.device();
    }
    SPOOL_CHECK(t.device() == device_, "distributed: ", describe(t), " is on ", t.device().str(),
                "; this group's GPU collectives are on ", device_.str());
    return *device_comm_;
  }
  MPI_Comm comm_;
  std::unique_ptr<DeviceComm> device_comm_;
  Device device_;
};

#endif  // SPOOL_HAVE_MPI

std::unique_ptr<ProcessGroup>& world_slot() {
  static std::unique_ptr<ProcessGroup> group;
  return group;
}

bool mpi_started = false;

}  // namespace

Launch discover(const std::function<const char*(const char*)>& get) {
  Launch l;
  constexpr int kMax = 1 << 20;
  if (get("OMPI_COMM_WORLD_SIZE")) {
    l.launcher = "mpirun";
    l.world = env_int(get, "OMPI_COMM_WORLD_SIZE", 1, kMax, 1);
    l.rank = env_int(get, "OMPI_COMM_WORLD_RANK", 0, l.world - 1, 0);
    l.local_rank = env_int(get, "OMPI_COMM_WORLD_LOCAL_RANK", 0, l.world - 1, 0);
  } else if (get("PMI_SIZE")) {
    l.launcher = "pmi";
    l.world = env_int(get, "PMI_SIZE", 1, kMax, 1);
    l.rank = env_int(get, "PMI_RANK", 0, l.world - 1, 0);
    l.local_rank = env_int(get, "MPI_LOCALRANKID", 0, l.world - 1, 0);
  } else if (get("SLURM_NTASKS") && get("SLURM_PROCID")) {
    // srun: its variables give the place, but the processes are not connected by an MPI launcher
    // spool knows; world() refuses more than one (start them with mpirun).
    l.launcher = "slurm";
    l.world = env_int(get, "SLURM_NTASKS", 1, kMax, 1);
    l.rank = env_int(get, "SLURM_PROCID", 0, l.world - 1, 0);
    l.local_rank = env_int(get, "SLURM_LOCALID", 0, l.world - 1, 0);
  } else if (get("WORLD_SIZE")) {
    l.launcher = "env";
    l.world = env_int(get, "WORLD_SIZE", 1, kMax, 1);
    SPOOL_CHECK(l.world == 1 || get("RANK"), "distributed launch: WORLD_SIZE=", l.world,
                " but RANK is not set");
    l.rank = env_int(get, "RANK", 0, l.world - 1, 0);
    l.local_rank = env_int(get, "LOCAL_RANK", 0, l.world - 1, 0);
  }
  return l;
}

Launch discover() {
  return discover([](const char* name) { return std::getenv(name); });
}

void ProcessGroup::set_timeout(double seconds) {
  SPOOL_CHECK(seconds > 0, "distributed: the collective time-out must be positive, not ", seconds);
  timeout_ = seconds;
}

void ProcessGroup::check(const Tensor& t, const char* what, const char* which) const {
  SPOOL_CHECK(t.defined(), what, ": the ", which, " is undefined");
  SPOOL_CHECK(t.is_contiguous(), what, ": the ", which, " ", describe(t), " is not contiguous");
  SPOOL_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64 || t.dtype() == DType::i64, what,
              ": the ", which, " ", describe(t), " is not f32, f64 or i64");
}

std::unique_ptr<ProcessGroup> single_process_group() { return std::make_unique<SingleGroup>(); }

ProcessGroup& world() {
  auto& g = world_slot();
  if (g) return *g;
  const Launch l = discover();
  if (l.world == 1) {
    g = single_process_group();
    return *g;
  }
#ifdef SPOOL_HAVE_MPI
  if (l.launcher == "env" || l.launcher == "slurm")
    fail("distributed launch: ", l.launcher == "env" ? "WORLD_SIZE=" : "SLURM_NTASKS=", l.world,
         " but this process was not started by an MPI launcher; spool's CPU collectives go "
         "through MPI: start the run with mpirun -np ",
         l.world, " spool ...");
  int provided = 0;
  // SERIALIZED: data parallel's communication thread makes the buckets' collectives while the
  // main thread runs backward; the two never call MPI at the same time.
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
  mpi_started = true;
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  SPOOL_CHECK(rank == l.rank && size == l.world, "distributed launch: MPI says rank ", rank, " of ",
              size, ", the launcher's variables rank ", l.rank, " of ", l.world);
  // Errors are reported by return code and turned into exceptions, never MPI's own abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  g = std::make_unique<MpiGroup>(rank, size, provided >= MPI_THREAD_SERIALIZED, MPI_COMM_WORLD);
  return *g;
#else
  fail("distributed launch: ", l.launcher, " started ", l.world,
       " processes, but this spool was built without MPI (install libopenmpi-dev and rebuild)");
#endif
}

bool distributed() { return world_slot() && world_slot()->world() > 1; }

std::string mpi_version() {
#ifdef SPOOL_HAVE_MPI
  char v[MPI_MAX_LIBRARY_VERSION_STRING];
  int n = 0;
  MPI_Get_library_version(v, &n);
  std::string s(v, size_t(n));
  if (const size_t nl = s.find_first_of("\n,"); nl != std::string::npos) s.resize(nl);
  return s;
#else
  return "none";
#endif
}

void finalize() {
#ifdef SPOOL_HAVE_MPI
  if (mpi_started) {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
  }
#endif
}

void abort_all(int code) {
#ifdef SPOOL_HAVE_MPI
  if (mpi_started) {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
  }
#endif
  std::exit(code);
}

}  // namespace spool::dist
