// Controls of the emulated CUDA device (SPOOL_CUDA=EMULATE) for tests; no CUDA header here.
#pragma once
#include <cstddef>
#include <cstdint>

namespace spool::emu {

// Device memory the emulated cudaMalloc may hand out in all, so tests can make it run out
// (default: no limit beyond the host's).
void set_memory_limit(size_t bytes);
size_t memory_in_use();

// Kernel launches so far (every one that ran, checked or not), for tests that count them.
int64_t launches();

// The byte that fills memory no one has written yet, so that a kernel that reads it shows: fresh
// cudaMalloc'd memory, and at every block's start the launch's dynamic shared memory and every
// static __shared__ array. 0xff by default (NaN as f32 and f64, -1 as integers); SPOOL_EMU_FILL
// (e.g. SPOOL_EMU_FILL=0x00) sets another for a whole run, so that a run can be compared with
// another fill's: a correct kernel's results do not depend on it.
void set_fill(uint8_t byte);
uint8_t fill();
// The static __shared__ arrays found in the executable's symbol table (each is filled at every
// block's start); 0 when it has none (a stripped binary), and then `why` says so.
size_t static_shared_arrays(const char** why = nullptr);

// The order a block's threads start in: lane order, reversed, or shuffled with a seed. A correct
// kernel gives the same result in every order (only barriers and shuffles order threads).
enum class Order { forward, reverse, shuffled };
void set_thread_order(Order order, uint64_t seed = 0);

}  // namespace spool::emu
