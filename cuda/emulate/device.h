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

// The order a block's threads start in: lane order, reversed, or shuffled with a seed. A correct
// kernel gives the same result in every order (only barriers and shuffles order threads).
enum class Order { forward, reverse, shuffled };
void set_thread_order(Order order, uint64_t seed = 0);

}  // namespace spool::emu
