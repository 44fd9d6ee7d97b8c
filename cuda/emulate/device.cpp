// The emulated CUDA device: fibers for a block's threads, the scheduler that runs them between
// barriers and warp collectives (and the checks it makes there), launches with sm_90's limits,
// and the runtime API over host memory. docs/cuda.md ("The emulated device") says what it checks.
#include "cuda/emulate/device.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cuda_runtime.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define SPOOL_EMU_ASAN 1
#endif
#if defined(SPOOL_EMU_ASAN)
// UBSan's report API (ubsan_monitor.cpp; libubsan exports it and calls the weak hook
// __ubsan_on_report for every report, before printing it).
extern "C" int __ubsan_get_current_report_data(const char** kind, const char** message,
                                               const char** file, unsigned* line, unsigned* col,
                                               char** addr);
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define SPOOL_EMU_TSAN 1
// The runtime's report API (tsan_debugging.cpp; libtsan exports it, its header does not declare
// it) and the switch that stops recording a fiber's own memory accesses.
extern "C" {
void __tsan_ignore_thread_begin();
void __tsan_ignore_thread_end();
int __tsan_get_report_data(void* report, const char** description, int* count, int* stack_count,
                           int* mop_count, int* loc_count, int* mutex_count, int* thread_count,
                           int* unique_tid_count, void** sleep_trace, unsigned long trace_size);
int __tsan_get_report_mop(void* report, unsigned long idx, int* tid, void** addr, int* size,
                          int* write, int* atomic, void** trace, unsigned long trace_size);
int __tsan_get_report_loc(void* report, unsigned long idx, const char** type, void** addr,
                          unsigned long* start, unsigned long* size, int* tid, int* fd,
                          int* suppressable, void** trace, unsigned long trace_size);
int __tsan_get_report_thread(void* report, unsigned long idx, int* tid, unsigned long* os_id,
                             int* running, const char** name, int* parent_tid, void** trace,
                             unsigned long trace_size);
}
#endif

// Switches stacks: saves the callee-saved registers, MXCSR and the x87 control word on the current
// stack, stores its pointer in *save, and resumes the context whose stack pointer is `to`.
extern "C" void spool_emu_switch(void** save, void* to);
// A new fiber's first return address: calls r12(rbx) and never returns.
extern "C" void spool_emu_fiber_entry();
asm(R"(
  .text
  .globl spool_emu_switch
  .type spool_emu_switch, @function
spool_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size spool_emu_switch, .-spool_emu_switch
  .globl spool_emu_fiber_entry
  .type spool_emu_fiber_entry, @function
spool_emu_fiber_entry:
  movq %rbx, %rdi
  callq *%r12
  ud2
  .size spool_emu_fiber_entry, .-spool_emu_fiber_entry
)");

namespace spool::emu {

namespace {

constexpr size_t kStackBytes = size_t(64) << 10;
constexpr int kMaxThreads = 1024;
constexpr size_t kDefaultSmem = 48 << 10, kMaxSmem = 227 << 10;  // sm_90, per block

struct Fiber {
  void* sp = nullptr;
  char* stack = nullptr;  // kStackBytes, a guard page below
  int thread = -1;        // linear thread index in the block
  bool done = false;
  void* fake_stack = nullptr;  // ASan's
  void* tsan = nullptr;        // ThreadSanitizer's fiber
  int unwatched = 0;           // its open Unwatched scopes
  char name[64];               // the CUDA thread it runs, as ThreadSanitizer reports it
};

// A barrier of a warp or the block. Arrivals name their call site; all must agree.
struct Barrier {
  int arrived = 0;
  uint64_t gen = 0;
  const char* file = nullptr;
  int line = 0;
  int first_thread = -1;
  // ThreadSanitizer's synchronisation objects, by generation parity: at a barrier that orders
  // memory, arrivals release and leavers acquire, so it orders what its threads did before it
  // against what they do after.
  // (One object would let a thread that ran on to the next barrier's release pass its later
  // accesses to a slow thread still leaving this one.)
  char hb[2];
};

struct Warp {
  Barrier bar;
  unsigned mask = 0;
  const char* what = nullptr;
  unsigned char slot[2][32][16];  // by generation parity: a lane may run ahead by one exchange
};

// Everything one host thread needs to run blocks.
struct Scheduler {
  void* sp = nullptr;  // the scheduler's own context while a fiber runs
  const void* asan_bottom = nullptr;
  size_t asan_size = 0;
  std::vector<Fiber*> idle;
  Fiber* current = nullptr;
  // The block being run.
  int nthreads = 0, live = 0;
  dim3 block;
  std::vector<char> exited;
  Barrier block_bar;
  Warp warps[kMaxThreads / 32];
  uint64_t progress = 0;  // arrivals and exits: a pass over waiting fibers that adds none is stuck
  bool aborted = false;
  std::string fault;
  const LaunchConfig* config = nullptr;
  void (*body)(void*) = nullptr;
  void* arg = nullptr;
  char* smem = nullptr;
  // ThreadSanitizer: the host thread's own fiber; the block's start (the host's release, each
  // thread's acquire) and end (each thread's release, the host's acquire); fibers that finished
  // in this block (not reused before it ends, so a fiber names one CUDA thread in a report); the
  // first data race reported during the launch and the count.
  void* tsan_host = nullptr;
  char hb_start = 0, hb_end = 0;
  std::vector<Fiber*> spent;
  char race[768] = {};
  int races = 0;
  ~Scheduler();  // frees the fibers when the host thread ends
};

thread_local Scheduler t_sched;

// ---- ThreadSanitizer's view of the device (docs/cuda.md, "The emulated device") ----
// Each fiber is a ThreadSanitizer fiber and switches between them carry no synchronisation, so
// the only happens-before edges between a block's threads are the ones CUDA has: the block's
// start and end, __syncthreads and __syncwarp. What the emulator itself shares between fibers
// (barrier counts, the exchange slots, the builtins it sets) is Unwatched: not recorded, so
// ThreadSanitizer reports only what the kernel's threads did. Without ThreadSanitizer all of
// this compiles to nothing.
#ifdef SPOOL_EMU_TSAN
constexpr unsigned kNoSync = __tsan_switch_to_fiber_no_sync;
#endif
void hb_release(void* a) {
#ifdef SPOOL_EMU_TSAN
  __tsan_release(a);
#else
  (void)a;
#endif
}
void hb_acquire(void* a) {
#ifdef SPOOL_EMU_TSAN
  __tsan_acquire(a);
#else
  (void)a;
#endif
}
// Memory accesses of the running fiber (or of the host thread) are not recorded in its scope.
class Unwatched {
 public:
#ifdef SPOOL_EMU_TSAN
  Unwatched() {
    __tsan_ignore_thread_begin();
    f_ = t_sched.current;  // read unwatched: the scheduler writes it
    if (f_) ++f_->unwatched;
  }
  ~Unwatched() {
    if (f_) --f_->unwatched;
    __tsan_ignore_thread_end();
  }
  Unwatched(const Unwatched&) = delete;
  Unwatched& operator=(const Unwatched&) = delete;

 private:
  Fiber* f_;
#else
  Unwatched() {}
#endif
};

std::mutex g_mu;
cudaError_t g_last = cudaSuccess;           // returned and cleared by cudaGetLastError
cudaError_t g_detail_err = cudaSuccess;     // the error g_detail describes
std::string g_detail;                       // the emulator's report of the latest error
std::map<const void*, size_t> g_smem_attr;  // kernel -> max dynamic shared memory
std::map<const void*, size_t> g_allocs;     // device allocations
size_t g_in_use = 0, g_limit = SIZE_MAX;
std::atomic<int64_t> g_launches{0};
Order g_order = Order::forward;
uint64_t g_order_seed = 0;

// ---- the poison fill (device.h's set_fill) ----
std::atomic<int> g_fill{-1};  // -1: not read from SPOOL_EMU_FILL yet

// Static __shared__ arrays, as offsets from spool_emu_tls_anchor in the executable's TLS block,
// found once from the symbol table (see __shared__ in cuda_runtime.h).
struct StaticShared {
  ptrdiff_t from_anchor;
  size_t size;
};
std::vector<StaticShared> g_static_shared;
std::string g_static_shared_why;
std::once_flag g_static_shared_once;

}  // namespace
}  // namespace spool::emu

// The anchor: a thread-local of the executable's own TLS block, as are the arrays (spool_lib is
// linked statically), so each array lies at a fixed distance from it in every host thread.
extern "C" {
[[gnu::used]] thread_local char spool_emu_tls_anchor = 0;
}

namespace spool::emu {
namespace {

// Reads the executable's symbol table: every thread-local `..E<n>spool_emu_shared_mark_<k>`
// names a function (the mangled prefix before <n>) whose other thread-locals with that prefix are
// its static __shared__ arrays.
void find_static_shared() {
  auto fail = [](const char* why) { g_static_shared_why = why; };
  const int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("cannot open /proc/self/exe");
  auto read_at = [&](void* dst, size_t n, uint64_t off) {
    return pread(fd, dst, n, off_t(off)) == ssize_t(n);
  };
  Elf64_Ehdr eh;
  std::vector<Elf64_Shdr> sh;
  std::vector<Elf64_Sym> syms;
  std::vector<char> names;
  bool ok = read_at(&eh, sizeof eh, 0) && std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
            eh.e_ident[EI_CLASS] == ELFCLASS64;
  if (ok) {
    sh.resize(eh.e_shnum);
    ok = read_at(sh.data(), sh.size() * sizeof(Elf64_Shdr), eh.e_shoff);
  }
  const Elf64_Shdr* symtab = nullptr;
  if (ok)
    for (const Elf64_Shdr& h : sh)
      if (h.sh_type == SHT_SYMTAB && h.sh_link < sh.size()) symtab = &h;
  if (ok && symtab) {
    syms.resize(symtab->sh_size / sizeof(Elf64_Sym));
    names.resize(sh[symtab->sh_link].sh_size + 1, 0);
    ok = read_at(syms.data(), syms.size() * sizeof(Elf64_Sym), symtab->sh_offset) &&
         read_at(names.data(), names.size() - 1, sh[symtab->sh_link].sh_offset);
  }
  close(fd);
  if (!ok) return fail("cannot read /proc/self/exe as a 64-bit ELF file");
  if (!symtab) return fail("the executable has no symbol table (stripped)");
  struct Tls {
    const char* name;
    uint64_t value, size;
  };
  std::vector<Tls> tls;
  std::set<std::string> prefixes;
  const Tls* anchor = nullptr;
  static const char kMark[] = "spool_emu_shared_mark_";
  for (const Elf64_Sym& sym : syms) {
    if (ELF64_ST_TYPE(sym.st_info) != STT_TLS || sym.st_name >= names.size() - 1) continue;
    tls.push_back({names.data() + sym.st_name, sym.st_value, sym.st_size});
  }
  for (const Tls& t : tls) {
    if (std::strcmp(t.name, "spool_emu_tls_anchor") == 0) anchor = &t;
    const char* m = std::strstr(t.name, kMark);
    if (!m) continue;
    const char* p = m;
    while (p > t.name && p[-1] >= '0' && p[-1] <= '9') --p;
    if (p > t.name && p[-1] == 'E') prefixes.insert(std::string(t.name, p));
  }
  if (!anchor) return fail("spool_emu_tls_anchor is not in the symbol table");
  std::set<uint64_t> seen;
  for (const Tls& t : tls) {
    if (t.size == 0 || std::strstr(t.name, kMark) || seen.count(t.value)) continue;
    const std::string name = t.name;
    for (const std::string& pre : prefixes)
      if (name.size() > pre.size() && name.compare(0, pre.size(), pre) == 0 &&
          name[pre.size()] >= '0' && name[pre.size()] <= '9') {
        g_static_shared.push_back({ptrdiff_t(t.value) - ptrdiff_t(anchor->value), t.size});
        seen.insert(t.value);
        break;
      }
  }
}

// Fills the current block's shared memory (dynamic and static) with the poison byte.
void fill_shared(char* smem, size_t smem_bytes, unsigned char byte) {
  if (smem) std::memset(smem, byte, smem_bytes);
  char* const anchor = &spool_emu_tls_anchor;
  for (const StaticShared& a : g_static_shared) std::memset(anchor + a.from_anchor, byte, a.size);
}

cudaError_t set_error(cudaError_t err, std::string detail) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_last = err;
  g_detail_err = err;
  g_detail = std::move(detail);
  return err;
}

void fiber_main(Fiber* f);

void fiber_reset(Fiber* f) {
  // Initial frame (see spool_emu_switch): mxcsr/fpu word, r15, r14, r13, r12 = entry, rbx = f,
  // rbp = 0 (ends frame chains), return address = spool_emu_fiber_entry.
  auto* top = reinterpret_cast<uint64_t*>(f->stack + kStackBytes);
  uint64_t* sp = top - 10;  // 16-byte aligned, and so is the stack at the entry's call
  uint32_t csr[2];
  asm volatile("stmxcsr %0" : "=m"(csr[0]));
  asm volatile("fnstcw %0" : "=m"(csr[1]));
  std::memcpy(&sp[0], csr, 8);
  sp[1] = sp[2] = sp[3] = 0;                        // r15, r14, r13
  sp[4] = reinterpret_cast<uint64_t>(&fiber_main);  // r12
  sp[5] = reinterpret_cast<uint64_t>(f);            // rbx
  sp[6] = 0;                                        // rbp
  sp[7] = reinterpret_cast<uint64_t>(&spool_emu_fiber_entry);
  sp[8] = sp[9] = 0;
  f->sp = sp;
  f->thread = -1;
  f->done = false;
#ifdef SPOOL_EMU_TSAN
  if (f->tsan) {
    // A fiber stopped mid-kernel gets a fresh ThreadSanitizer fiber (its shadow call stack holds
    // the frames it never left). As the old fiber, before it goes: what it did happens before
    // the block's end (the scheduler acquires hb_end after resetting the block's stopped
    // fibers), and its ignore scopes are closed (ThreadSanitizer refuses to end a fiber inside
    // one). Nothing but locals is touched while ThreadSanitizer takes it for the current fiber.
    void* const old = f->tsan;
    void* const host = t_sched.tsan_host;
    void* const end = &t_sched.hb_end;
    const int open = f->unwatched;
    __tsan_switch_to_fiber(old, kNoSync);
    __tsan_release(end);
    for (int i = 0; i < open; ++i) __tsan_ignore_thread_end();
    __tsan_switch_to_fiber(host, kNoSync);
    __tsan_destroy_fiber(old);
  }
  f->tsan = __tsan_create_fiber(0);
  f->unwatched = 0;
#endif
}

Fiber* fiber_new() {
  const size_t page = 4096;
  void* mem = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) {
    std::fprintf(stderr, "spool emulated device: cannot map a fiber stack\n");
    std::abort();
  }
  mprotect(mem, page, PROT_NONE);  // a kernel that overflows its stack faults here
  auto* f = new Fiber;
  f->stack = static_cast<char*>(mem) + page;
  fiber_reset(f);
  return f;
}

Scheduler::~Scheduler() {
  // Every fiber is idle between launches. ThreadSanitizer's fibers are left to it: each still
  // has its scheduler loop's ignore scope open, which destroying would report.
  for (Fiber* f : idle) {
    munmap(f->stack - 4096, kStackBytes + 4096);
    delete f;
  }
}

void set_builtins(Scheduler& s, int t) {
  threadIdx.x = unsigned(t) % s.block.x;
  threadIdx.y = (unsigned(t) / s.block.x) % s.block.y;
  threadIdx.z = unsigned(t) / (s.block.x * s.block.y);
}

#ifdef SPOOL_EMU_TSAN
// Names f after the CUDA thread it runs, as thread_name() does (by hand: snprintf costs more than
// an elementwise kernel's thread under ThreadSanitizer).
void name_fiber(const Scheduler& s, Fiber* f) {
  const unsigned t = unsigned(f->thread);
  const unsigned v[6] = {t % s.block.x,
                         (t / s.block.x) % s.block.y,
                         t / (s.block.x * s.block.y),
                         blockIdx.x,
                         blockIdx.y,
                         blockIdx.z};
  char* p = f->name;
  auto put = [&](const char* text) {
    while (*text) *p++ = *text++;
  };
  auto num = [&](unsigned x) {
    char d[10];
    int n = 0;
    do d[n++] = char('0' + x % 10);
    while (x /= 10);
    while (n) *p++ = d[--n];
  };
  for (int i = 0; i < 6; ++i) {
    put(i == 0 ? "thread (" : i == 3 ? ") of block (" : ",");
    num(v[i]);
  }
  put(")");
  *p = 0;  // at most 56 characters
  __tsan_set_fiber_name(f->tsan, f->name);
}
#endif

// Scheduler -> fiber.
void resume(Scheduler& s, Fiber* f) {
  set_builtins(s, f->thread);
  s.current = f;
#ifdef SPOOL_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f->stack, kStackBytes);
  spool_emu_switch(&s.sp, f->sp);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#elif defined(SPOOL_EMU_TSAN)
  void* const to = f->sp;  // read before ThreadSanitizer takes the fiber for the current thread
  __tsan_switch_to_fiber(f->tsan, kNoSync);
  spool_emu_switch(&s.sp, to);
#else
  spool_emu_switch(&s.sp, f->sp);
#endif
  s.current = nullptr;
}

// Fiber -> scheduler.
void yield(Scheduler& s) {
  Fiber* f = s.current;
#ifdef SPOOL_EMU_ASAN
  __sanitizer_start_switch_fiber(&f->fake_stack, s.asan_bottom, s.asan_size);
  spool_emu_switch(&f->sp, s.sp);
  __sanitizer_finish_switch_fiber(f->fake_stack, &s.asan_bottom, &s.asan_size);
#elif defined(SPOOL_EMU_TSAN)
  void* const to = s.sp;
  __tsan_switch_to_fiber(s.tsan_host, kNoSync);
  spool_emu_switch(&f->sp, to);
#else
  spool_emu_switch(&f->sp, s.sp);
#endif
}

void fiber_main(Fiber* f) {
  Scheduler& s = t_sched;
#ifdef SPOOL_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &s.asan_bottom, &s.asan_size);
#endif
  Unwatched u;  // all but the kernel's own body
  for (;;) {
    hb_acquire(&s.hb_start);
#ifdef SPOOL_EMU_TSAN
    --f->unwatched;
    __tsan_ignore_thread_end();
#endif
    s.body(s.arg);
#ifdef SPOOL_EMU_TSAN
    __tsan_ignore_thread_begin();
    ++f->unwatched;
#endif
    hb_release(&s.hb_end);
    f->done = true;
    yield(s);
  }
}

std::string where(const char* file, int line) {
  std::string f = file ? file : "?";
  for (const char* dir : {"/tests/", "/cuda/"}) {
    const size_t slash = f.rfind(dir);
    if (slash != std::string::npos) return f.substr(slash + 1) + ":" + std::to_string(line);
  }
  return f + ":" + std::to_string(line);
}

std::string thread_name(const Scheduler& s, int t) {
  const unsigned x = unsigned(t) % s.block.x, y = (unsigned(t) / s.block.x) % s.block.y,
                 z = unsigned(t) / (s.block.x * s.block.y);
  return "thread (" + std::to_string(x) + "," + std::to_string(y) + "," + std::to_string(z) +
         ") of block (" + std::to_string(blockIdx.x) + "," + std::to_string(blockIdx.y) + "," +
         std::to_string(blockIdx.z) + ")";
}

// A failed check: records report() (the launch's first) and stops the thread for good. The
// report is made and freed here, in a scope that ends: the stopped fiber's frames are never
// unwound, so a string left in them would leak.
template <class F>
[[noreturn]] void fault_here(Scheduler& s, F&& report) {
  Unwatched u;
  if (!s.aborted) {
    std::string what = report();
    s.fault = std::move(what);
  }
  s.aborted = true;
  hb_release(&s.hb_end);
  for (;;) yield(s);  // never resumed: the scheduler resets the fiber
}

// Arrive at b (expecting `expected` arrivals) from site file:line and wait for the rest. A barrier
// that orders memory (__syncthreads, __syncwarp) is a happens-before edge for ThreadSanitizer;
// shuffles and ballots exchange values only, as CUDA documents them.
void arrive(Scheduler& s, Barrier& b, int expected, const char* kind, const char* file, int line,
            bool orders_memory) {
  const int me = s.current->thread;
  if (b.arrived == 0) {
    b.file = file;
    b.line = line;
    b.first_thread = me;
  } else if (b.line != line || std::strcmp(b.file, file) != 0) {
    fault_here(s, [&] {
      return std::string("divergent ") + kind + ": " + thread_name(s, b.first_thread) +
             " waits at " + where(b.file, b.line) + ", " + thread_name(s, me) + " arrives at " +
             where(file, line);
    });
  }
  ++s.progress;
  const uint64_t gen = b.gen;
  if (orders_memory) hb_release(&b.hb[gen & 1]);
  if (++b.arrived >= expected) {
    b.arrived = 0;
    ++b.gen;
  } else {
    while (b.gen == gen) yield(s);
  }
  if (orders_memory) hb_acquire(&b.hb[gen & 1]);
}

int warp_lanes(const Scheduler& s, int warp) { return std::min(32, s.nthreads - warp * 32); }

// The lanes of the current warp that exist and have not exited.
unsigned present_lanes(const Scheduler& s, int warp) {
  unsigned m = 0;
  for (int l = 0; l < warp_lanes(s, warp); ++l)
    if (!s.exited[size_t(warp * 32 + l)]) m |= 1u << l;
  return m;
}

// Common checks of a warp collective; returns the warp.
Warp& warp_enter(Scheduler& s, unsigned mask, const char* what, const char* file, int line) {
  if (!s.current) {
    std::fprintf(stderr, "spool emulated device: %s called outside a kernel\n", what);
    std::abort();
  }
  const int t = s.current->thread, lane = t & 31;
  Warp& w = s.warps[t >> 5];
  if (!(mask >> lane & 1u))
    fault_here(s, [&] {
      return std::string(what) + " at " + where(file, line) + ": " + thread_name(s, t) + " (lane " +
             std::to_string(lane) + ") is not in its mask 0x" + [&] {
               char b[16];
               std::snprintf(b, sizeof b, "%08x", mask);
               return std::string(b);
             }();
    });
  const unsigned missing = mask & ~present_lanes(s, t >> 5);
  if (missing) {
    const int l = __builtin_ctz(missing);
    fault_here(s, [&] {
      return std::string(what) + " at " + where(file, line) + ": lane " + std::to_string(l) +
             " of the mask " +
             (l < warp_lanes(s, t >> 5)
                  ? "has exited"
                  : "does not exist (the block has " + std::to_string(s.nthreads) + " threads)") +
             "; " + thread_name(s, t) + " waits for it";
    });
  }
  if (w.bar.arrived == 0) {
    w.mask = mask;
    w.what = what;
  } else if (w.mask != mask) {
    fault_here(s, [&] {
      return std::string(what) + " at " + where(file, line) + ": lanes of one warp pass " +
             "different masks";
    });
  }
  return w;
}

}  // namespace

void syncthreads(const char* file, int line) {
  Unwatched u;
  Scheduler& s = t_sched;
  arrive(s, s.block_bar, s.live, "__syncthreads", file, line, true);
}

void syncwarp(unsigned mask, const char* file, int line) {
  Unwatched u;
  Scheduler& s = t_sched;
  Warp& w = warp_enter(s, mask, "__syncwarp", file, line);
  arrive(s, w.bar, __builtin_popcount(mask), "__syncwarp", file, line, true);
}

void warp_exchange(unsigned mask, const void* value, size_t size, int src, void* result,
                   const char* what, const char* file, int line) {
  Unwatched u;
  Scheduler& s = t_sched;
  const int lane = s.current->thread & 31;
  Warp& w = warp_enter(s, mask, what, file, line);
  const int parity = int(w.bar.gen & 1);
  std::memcpy(w.slot[parity][lane], value, size);
  arrive(s, w.bar, __builtin_popcount(mask), what, file, line, false);
  if (src < 0) src = lane;
  if (!(mask >> src & 1u))
    fault_here(s, [&] {
      return std::string(what) + " at " + where(file, line) + ": lane " + std::to_string(lane) +
             " reads lane " + std::to_string(src) + ", which is not in the mask";
    });
  std::memcpy(result, w.slot[parity][src], size);
}

unsigned warp_ballot(unsigned mask, bool pred, const char* file, int line) {
  Unwatched u;
  Scheduler& s = t_sched;
  Warp& w = warp_enter(s, mask, "__ballot_sync", file, line);
  const int parity = int(w.bar.gen & 1), lane = s.current->thread & 31;
  w.slot[parity][lane][0] = pred;
  arrive(s, w.bar, __builtin_popcount(mask), "__ballot_sync", file, line, false);
  unsigned bits = 0;
  for (int l = 0; l < 32; ++l)
    if ((mask >> l & 1u) && w.slot[parity][l][0]) bits |= 1u << l;
  return bits;
}

void* dynamic_shared() {
  Unwatched u;
  return t_sched.smem;
}

void kernel_fault(const char* what) {
  fault_here(t_sched, [&] { return std::string(what); });
}

cudaError_t set_max_dynamic_smem(const void* kernel, int bytes) {
  if (bytes < 0 || size_t(bytes) > kMaxSmem)
    return set_error(cudaErrorInvalidValue,
                     "cudaFuncSetAttribute: " + std::to_string(bytes) +
                         " bytes of dynamic shared memory exceed sm_90's 227 KiB per block");
  std::lock_guard<std::mutex> lock(g_mu);
  g_smem_attr[kernel] = size_t(bytes);
  return cudaSuccess;
}

namespace {

// Runs the current block: threads start in g_order; each runs until it finishes or waits; then
// the waiting ones are resumed in turn until all finish. False when a check failed.
bool run_block(Scheduler& s, const std::vector<int>& order) {
  s.live = s.nthreads;
  s.exited.assign(size_t(s.nthreads), 0);
  s.block_bar = Barrier{};
  for (int w = 0; w < (s.nthreads + 31) / 32; ++w) s.warps[w].bar = Barrier{};
  std::vector<Fiber*> waiting;
  auto finish = [&](Fiber* f) {
    // An exit releases barriers that now have all the live threads they wait for; a thread
    // that exits while others wait at __syncthreads is a divergent barrier.
    const int t = f->thread;
    s.exited[size_t(t)] = 1;
    --s.live;
    ++s.progress;
    if (s.block_bar.arrived > 0 && !s.aborted) {
      s.fault = "divergent __syncthreads: " + thread_name(s, t) + " returned while " +
                thread_name(s, s.block_bar.first_thread) + " waits at " +
                where(s.block_bar.file, s.block_bar.line);
      s.aborted = true;
    }
    Warp& w = s.warps[t >> 5];
    if (w.bar.arrived > 0 && (w.mask >> (t & 31) & 1u) && !s.aborted) {
      s.fault = std::string(w.what) + " at " + where(w.bar.file, w.bar.line) + ": lane " +
                std::to_string(t & 31) + " of the mask returned while " +
                thread_name(s, w.bar.first_thread) + " waits for it";
      s.aborted = true;
    }
    f->thread = -1;
    f->done = false;
#ifdef SPOOL_EMU_TSAN
    s.spent.push_back(f);
#else
    s.idle.push_back(f);
#endif
  };
  for (int t : order) {
    Fiber* f;
    if (s.idle.empty()) {
      f = fiber_new();
    } else {
      f = s.idle.back();
      s.idle.pop_back();
    }
    f->thread = t;
#ifdef SPOOL_EMU_TSAN
    name_fiber(s, f);
#endif
    resume(s, f);
    if (s.aborted) {
      waiting.push_back(f);
      break;
    }
    if (f->done)
      finish(f);
    else
      waiting.push_back(f);
    if (s.aborted) break;
  }
  while (!waiting.empty() && !s.aborted) {
    const uint64_t before = s.progress;
    size_t kept = 0;
    for (size_t i = 0; i < waiting.size(); ++i) {
      Fiber* f = waiting[i];
      if (s.aborted) {
        waiting[kept++] = f;
        continue;
      }
      resume(s, f);
      if (f->done && !s.aborted)
        finish(f);
      else
        waiting[kept++] = f;
    }
    waiting.resize(kept);
    if (!waiting.empty() && s.progress == before && !s.aborted) {
      Fiber* f = waiting.front();
      const Warp& w = s.warps[f->thread >> 5];
      s.fault = "deadlock: " + std::to_string(waiting.size()) +
                " threads wait and none can go on (" + thread_name(s, f->thread) + " at " +
                (w.bar.arrived > 0 ? where(w.bar.file, w.bar.line)
                                   : where(s.block_bar.file, s.block_bar.line)) +
                ")";
      s.aborted = true;
    }
  }
  s.idle.insert(s.idle.end(), s.spent.begin(), s.spent.end());
  s.spent.clear();
  if (s.aborted) {  // fibers stopped mid-kernel start over from their entry
    for (Fiber* f : waiting) {
      fiber_reset(f);
      s.idle.push_back(f);
    }
  }
  // The block's end: what its threads did happens before what the host does next.
  hb_acquire(&s.hb_end);
  return !s.aborted;
}

std::string dims(dim3 d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}

}  // namespace

void launch(const LaunchConfig& c, void (*body)(void*), void* arg) {
  const uint64_t threads = uint64_t(c.block.x) * c.block.y * c.block.z;
  std::string bad;
  if (c.block.x == 0 || c.block.y == 0 || c.block.z == 0 || c.block.x > 1024 || c.block.y > 1024 ||
      c.block.z > 64 || threads > uint64_t(kMaxThreads))
    bad = "block " + dims(c.block) + " is outside sm_90's limits (x, y <= 1024, z <= 64, " +
          "at most 1024 threads)";
  else if (c.grid.x == 0 || c.grid.y == 0 || c.grid.z == 0 || c.grid.x > 2147483647u ||
           c.grid.y > 65535 || c.grid.z > 65535)
    bad = "grid " + dims(c.grid) + " is outside sm_90's limits (x < 2^31, y, z <= 65535)";
  if (!bad.empty()) {
    set_error(cudaErrorInvalidConfiguration, std::string(c.name) + ": " + bad);
    return;
  }
  size_t limit = kDefaultSmem;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_smem_attr.find(c.kernel);
    if (c.kernel && it != g_smem_attr.end()) limit = std::max(limit, it->second);
  }
  if (c.smem > limit) {
    set_error(cudaErrorInvalidValue,
              std::string(c.name) + ": " + std::to_string(c.smem) +
                  " bytes of dynamic shared memory exceed the kernel's limit of " +
                  std::to_string(limit) +
                  (c.kernel ? " (raise it with cudaFuncSetAttribute(MaxDynamicSharedMemorySize))"
                            : " (the emulator could not resolve which kernel this is, so it "
                              "knows no attribute: give the template's arguments)"));
    return;
  }
  ++g_launches;
  Unwatched u;  // the host thread's part (scheduling, the builtins it sets for each thread)
  Scheduler& s = t_sched;
  if (s.current) {
    std::fprintf(stderr, "spool emulated device: %s launched from inside a kernel\n", c.name);
    std::abort();
  }
#ifdef SPOOL_EMU_TSAN
  s.tsan_host = __tsan_get_current_fiber();
  s.races = 0;
  s.race[0] = 0;
#endif
  s.config = &c;
  s.body = body;
  s.arg = arg;
  s.nthreads = int(threads);
  s.block = c.block;
  s.aborted = false;
  s.fault.clear();
  // Dynamic shared memory: exactly the bytes asked for (AddressSanitizer sees an overrun); it and
  // the static __shared__ arrays are filled with the poison byte at every block's start, so a read
  // of what no thread of the block wrote shows.
  std::call_once(g_static_shared_once, find_static_shared);
  const unsigned char poison = fill();
  char* smem =
      c.smem ? static_cast<char*>(::operator new[](c.smem, std::align_val_t(16))) : nullptr;
  s.smem = smem;
  std::vector<int> order(static_cast<size_t>(threads));
  for (size_t i = 0; i < order.size(); ++i) order[i] = int(i);
  if (g_order == Order::reverse) std::reverse(order.begin(), order.end());
  if (g_order == Order::shuffled)
    std::shuffle(order.begin(), order.end(), std::mt19937_64(g_order_seed));
  blockDim = c.block;
  gridDim = c.grid;
  bool ok = true;
  for (unsigned z = 0; z < c.grid.z && ok; ++z)
    for (unsigned y = 0; y < c.grid.y && ok; ++y)
      for (unsigned x = 0; x < c.grid.x && ok; ++x) {
        blockIdx.x = x;
        blockIdx.y = y;
        blockIdx.z = z;
        fill_shared(smem, c.smem, poison);
        hb_release(&s.hb_start);  // the host's work (and the previous block's) happens before
        ok = run_block(s, order);
      }
  if (smem) ::operator delete[](smem, std::align_val_t(16));
  s.smem = nullptr;
  s.config = nullptr;
  if (!ok) {
    set_error(cudaErrorLaunchFailure, std::string(c.name) + ": " + s.fault);
  } else if (s.races > 0) {
    set_error(cudaErrorLaunchFailure,
              std::string(c.name) + ": " + s.race +
                  (s.races > 1 ? " (and " + std::to_string(s.races - 1) + " more reports)" : ""));
  }
}

void set_memory_limit(size_t bytes) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_limit = bytes;
}
size_t memory_in_use() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_in_use;
}
int64_t launches() { return g_launches.load(); }
void set_fill(uint8_t byte) { g_fill = byte; }
uint8_t fill() {
  int f = g_fill.load();
  if (f < 0) {
    const char* env = std::getenv("SPOOL_EMU_FILL");
    f = env && *env ? int(std::strtoul(env, nullptr, 0) & 0xff) : 0xff;
    int unset = -1;
    if (!g_fill.compare_exchange_strong(unset, f)) f = unset;
  }
  return uint8_t(f);
}
size_t static_shared_arrays(const char** why) {
  std::call_once(g_static_shared_once, find_static_shared);
  if (why) *why = g_static_shared_why.c_str();
  return g_static_shared.size();
}
void set_thread_order(Order order, uint64_t seed) {
  g_order = order;
  g_order_seed = seed;
}

}  // namespace spool::emu

#ifdef SPOOL_EMU_TSAN
namespace spool::emu {
namespace {

// "file:line" of the innermost source line at return address pc, short as where() makes it.
std::string source_line(void* pc) {
  if (!pc) return "?";
  char buf[512] = {};
  __sanitizer_symbolize_pc(pc, "%s:%l", buf, sizeof buf);  // inlined frames follow, NUL-separated
  std::string f = std::string("/") + buf;
  for (const char* dir : {"/tests/", "/cuda/"}) {
    const size_t at = f.rfind(dir);
    if (at != std::string::npos) return f.substr(at + 1);
  }
  return buf;
}

// One report of ThreadSanitizer as a line: what raced, where it lies, and each CUDA thread's
// access with its source line (the printed report has both stacks).
std::string describe_report(Scheduler& s, void* report) {
  const char* description = nullptr;
  int count = 0, stacks = 0, mops = 0, locs = 0, mutexes = 0, threads = 0, tids = 0;
  void* sleep = nullptr;
  if (!__tsan_get_report_data(report, &description, &count, &stacks, &mops, &locs, &mutexes,
                              &threads, &tids, &sleep, 1))
    return "a ThreadSanitizer report (see stderr)";
  const std::string kind = description ? description : "report";
  if (kind != "data-race" || mops < 2) return "ThreadSanitizer: " + kind + " (see stderr)";
  auto thread = [&](int tid) -> std::string {
    for (int i = 0; i < threads; ++i) {
      int t = -1, running = 0, parent = -1;
      unsigned long os_id = 0;
      const char* name = nullptr;
      void* trace = nullptr;
      if (__tsan_get_report_thread(report, (unsigned long)i, &t, &os_id, &running, &name, &parent,
                                   &trace, 1) &&
          t == tid)
        return name && *name ? name : "the host thread";
    }
    return "thread T" + std::to_string(tid);
  };
  struct Access {
    std::string who, line;
    char* addr = nullptr;
    int size = 0;
    bool write = false, atomic = false;
  } a[2];
  for (int i = 0; i < 2; ++i) {
    int tid = -1, size = 0, write = 0, atomic = 0;
    void* addr = nullptr;
    void* trace = nullptr;
    __tsan_get_report_mop(report, (unsigned long)i, &tid, &addr, &size, &write, &atomic, &trace, 1);
    a[i] = {thread(tid), source_line(trace), static_cast<char*>(addr),
            size,        write != 0,         atomic != 0};
  }
  // Where the address lies: the launch's dynamic shared memory, a static __shared__ array
  // (thread-local storage here), a device allocation, or whatever ThreadSanitizer says.
  std::string what = "memory";
  const char* loc_type = nullptr;
  unsigned long start = 0, size = 0;
  if (locs > 0) {
    void* laddr = nullptr;
    int ltid = -1, fd = -1, suppressable = 0;
    void* trace = nullptr;
    __tsan_get_report_loc(report, 0, &loc_type, &laddr, &start, &size, &ltid, &fd, &suppressable,
                          &trace, 1);
  }
  const std::string loc = loc_type ? loc_type : "";
  char* const p = a[0].addr;
  if (s.smem && p >= s.smem && p < s.smem + s.config->smem) {
    what = "dynamic shared memory (byte " + std::to_string(p - s.smem) + " of " +
           std::to_string(s.config->smem) + ")";
  } else if (loc == "tls") {
    what = "shared memory (a static __shared__ array)";
  } else {
    bool device = false;
    if (g_mu.try_lock()) {  // never wait here: ThreadSanitizer holds its locks
      auto it = g_allocs.upper_bound(p);
      if (it != g_allocs.begin()) {
        --it;
        const char* base = static_cast<const char*>(it->first);
        device = p >= base && p < base + it->second;
        if (device)
          what = "device memory (byte " + std::to_string(p - base) + " of an allocation of " +
                 std::to_string(it->second) + ")";
      }
      g_mu.unlock();
    }
    if (!device && !loc.empty()) what = loc + " memory";
  }
  char addr[32];
  std::snprintf(addr, sizeof addr, "%p", static_cast<void*>(p));
  auto verb = [](const Access& x, bool past) {
    return std::string(x.atomic ? "atomically " : "") +
           (x.write ? (past ? "wrote" : "writes") : (past ? "read" : "reads"));
  };
  return "data race on " + what + " at " + addr + " (" + std::to_string(a[0].size) +
         " bytes): " + a[0].who + " " + verb(a[0], false) + " it at " + a[0].line + ", " +
         a[1].who + " " + verb(a[1], true) + " it at " + a[1].line +
         ", with no barrier between (ThreadSanitizer's report, both stacks, is on stderr)";
}

}  // namespace
}  // namespace spool::emu

// ThreadSanitizer calls this after printing each report (libtsan's weak hook). A report made
// while a kernel runs becomes the launch's error, like the emulator's own checks; reports
// outside launches are left to ThreadSanitizer (its exit status).
extern "C" void __tsan_on_report(void* report) {
  spool::emu::Scheduler& s = spool::emu::t_sched;
  if (!s.config) return;
  spool::emu::Unwatched u;
  if (++s.races > 1) return;
  const std::string line = spool::emu::describe_report(s, report);
  std::snprintf(s.race, sizeof s.race, "%s", line.c_str());
}
#endif

#ifdef SPOOL_EMU_ASAN
// UBSan calls this before printing each report (libubsan's weak hook). Every UBSan report is
// fatal in the checking build (-fno-sanitize-recover=all), and the hook runs inside UBSan's report
// lock, so a report cannot become the launch's error as ThreadSanitizer's do (the kernel's fiber
// would never give the lock back); a report made while a kernel runs is named instead: one line
// with the kernel, the CUDA thread and the source line, before UBSan's own report and stack. Its
// array-bounds check (-fsanitize=bounds, part of undefined) is what catches an index past a
// static __shared__ array, the inner dimensions of 2-D ones included; AddressSanitizer does not
// guard thread-local storage.
extern "C" void __ubsan_on_report() {
  spool::emu::Scheduler& s = spool::emu::t_sched;
  if (!s.config || !s.current || s.current->thread < 0) return;
  const char *kind = nullptr, *message = nullptr, *file = nullptr;
  unsigned line = 0, col = 0;
  char* addr = nullptr;
  __ubsan_get_current_report_data(&kind, &message, &file, &line, &col, &addr);
  const std::string who = spool::emu::thread_name(s, s.current->thread);
  std::fprintf(stderr,
               "spool emulated device: %s: %s at %s (UBSan %s), %s; the process ends (UBSan's "
               "report and stack follow)\n",
               s.config->name, message ? message : "?", spool::emu::where(file, int(line)).c_str(),
               kind ? kind : "report", who.c_str());
}
#endif

// ---- the runtime API ----
using spool::emu::set_error;

namespace {
struct EmuEvent {
  std::chrono::steady_clock::time_point t;
};
const char* error_name(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError:
      return "cudaErrorInitializationError";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDeviceFunction:
      return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoDevice:
      return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice:
      return "cudaErrorInvalidDevice";
    case cudaErrorIllegalAddress:
      return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources:
      return "cudaErrorLaunchOutOfResources";
    case cudaErrorAssert:
      return "cudaErrorAssert";
  }
  return "cudaErrorUnknown";
}
const char* error_text(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    default:
      return "emulated device error";
  }
}
// A device pointer range [p, p + n) inside one allocation.
bool device_range(const void* p, size_t n) {
  std::lock_guard<std::mutex> lock(spool::emu::g_mu);
  auto it = spool::emu::g_allocs.upper_bound(p);
  if (it == spool::emu::g_allocs.begin()) return false;
  --it;
  const char* base = static_cast<const char*>(it->first);
  const char* q = static_cast<const char*>(p);
  return q >= base && q + n <= base + it->second;
}
}  // namespace

const char* cudaGetErrorName(cudaError_t err) { return error_name(err); }
const char* cudaGetErrorString(cudaError_t err) {
  std::lock_guard<std::mutex> lock(spool::emu::g_mu);
  // The emulator's own report of its latest error (kept until the next one).
  if (err == spool::emu::g_detail_err && !spool::emu::g_detail.empty())
    return spool::emu::g_detail.c_str();
  return error_text(err);
}
cudaError_t cudaGetLastError() {
  std::lock_guard<std::mutex> lock(spool::emu::g_mu);
  const cudaError_t e = spool::emu::g_last;
  spool::emu::g_last = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() {
  std::lock_guard<std::mutex> lock(spool::emu::g_mu);
  return spool::emu::g_last;
}
cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess
                     : set_error(cudaErrorInvalidDevice, "the emulated device is device 0");
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return set_error(cudaErrorInvalidDevice, "the emulated device is device 0");
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "spool emulated device (sm_90 limits)");
  prop->totalGlobalMem = size_t(141) << 30;
  prop->sharedMemPerBlock = 48 << 10;
  prop->sharedMemPerBlockOptin = 227 << 10;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
  prop->multiProcessorCount = 132;
  prop->major = 9;
  prop->minor = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  cudaDeviceProp p;
  if (const cudaError_t e = cudaGetDeviceProperties(&p, device)) return e;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock:
      *value = p.maxThreadsPerBlock;
      break;
    case cudaDevAttrMaxSharedMemoryPerBlock:
      *value = int(p.sharedMemPerBlock);
      break;
    case cudaDevAttrWarpSize:
      *value = 32;
      break;
    case cudaDevAttrMultiProcessorCount:
      *value = p.multiProcessorCount;
      break;
    case cudaDevAttrComputeCapabilityMajor:
      *value = p.major;
      break;
    case cudaDevAttrComputeCapabilityMinor:
      *value = p.minor;
      break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
      *value = int(p.sharedMemPerBlockOptin);
      break;
    default:
      return set_error(cudaErrorInvalidValue,
                       "cudaDeviceGetAttribute: an attribute the "
                       "emulated device does not know");
  }
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaMalloc(void** p, size_t size) {
  *p = nullptr;
  {
    std::lock_guard<std::mutex> lock(spool::emu::g_mu);
    if (size > spool::emu::g_limit - spool::emu::g_in_use) {
      spool::emu::g_last = cudaErrorMemoryAllocation;
      spool::emu::g_detail_err = cudaErrorMemoryAllocation;
      spool::emu::g_detail = "out of memory: " + std::to_string(size) + " bytes asked, " +
                             std::to_string(spool::emu::g_in_use) + " of the limit " +
                             std::to_string(spool::emu::g_limit) + " in use";
      return cudaErrorMemoryAllocation;
    }
  }
  // 256-byte aligned like cudaMalloc, and exactly `size` bytes, so AddressSanitizer reports a
  // kernel that reads or writes past the end.
  void* q = nullptr;
  if (posix_memalign(&q, 256, size ? size : 1) != 0)
    return set_error(cudaErrorMemoryAllocation,
                     "out of host memory allocating " + std::to_string(size) + " bytes");
  // Filled with the poison byte, as cudaMalloc's memory holds whatever was there before.
  std::memset(q, spool::emu::fill(), size);
  std::lock_guard<std::mutex> lock(spool::emu::g_mu);
  spool::emu::g_allocs[q] = size;
  spool::emu::g_in_use += size;
  *p = q;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(spool::emu::g_mu);
    auto it = spool::emu::g_allocs.find(p);
    if (it == spool::emu::g_allocs.end()) {
      spool::emu::g_last = cudaErrorInvalidValue;
      spool::emu::g_detail_err = cudaErrorInvalidValue;
      spool::emu::g_detail = "cudaFree of a pointer cudaMalloc did not return";
      return cudaErrorInvalidValue;
    }
    spool::emu::g_in_use -= it->second;
    spool::emu::g_allocs.erase(it);
  }
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind,
                            cudaStream_t) {
  if (n == 0) return cudaSuccess;
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice,
             src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if ((dst_dev && !device_range(dst, n)) || (src_dev && !device_range(src, n)))
    return set_error(cudaErrorInvalidValue,
                     "cudaMemcpy of " + std::to_string(n) + " bytes outside a device allocation");
  std::memmove(dst, src, n);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  return cudaMemcpyAsync(dst, src, n, kind, nullptr);
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t n, cudaStream_t) {
  if (n == 0) return cudaSuccess;
  if (!device_range(p, n))
    return set_error(cudaErrorInvalidValue,
                     "cudaMemset of " + std::to_string(n) + " bytes outside a device allocation");
  std::memset(p, value, n);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int value, size_t n) { return cudaMemsetAsync(p, value, n); }
// Work runs when it is queued, so streams are in order and always idle.
cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  static char token;
  *s = reinterpret_cast<cudaStream_t>(&token);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = reinterpret_cast<cudaEvent_t>(new EmuEvent);
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete reinterpret_cast<EmuEvent*>(e);
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  reinterpret_cast<EmuEvent*>(e)->t = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  *ms = std::chrono::duration<float, std::milli>(reinterpret_cast<EmuEvent*>(end)->t -
                                                 reinterpret_cast<EmuEvent*>(start)->t)
            .count();
  return cudaSuccess;
}
