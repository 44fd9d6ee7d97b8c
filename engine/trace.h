// Traces of where a step's time and memory go, in the Chrome trace event format that Perfetto
// (ui.perfetto.dev) and chrome://tracing open (docs/profiling.md).
//
// While a trace is on, spool records:
//   - a span per kernel (cat "kernel"): each Backend call, with its tensors' shapes, dtype,
//     device and the bytes it reads and writes (and the FLOPs of matmul and convolution);
//   - a span per autograd op's forward (cat "op"): from the first kernel it launched to its
//     record(), so its kernels nest inside it, and per op's backward (cat "backward");
//   - spans the callers open with trace::Span (a step, the optimizer step, data loading, the
//     planner's primitives);
//   - a counter per allocator ("cpu live bytes", "cpu reserved bytes"), written at every
//     allocation and free, so the track is the allocator's own figure at every change.
// Off by default; when off, each hook is one relaxed atomic load.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace spool {
class Tensor;
class Backend;
}  // namespace spool

namespace spool::trace {

// Whether a trace is being recorded now.
bool on();

// Starts recording (clearing what an earlier trace left). At most `max_events` events are kept:
// later ones are dropped and counted (dropped()), so a trace stays bounded.
void start(int64_t max_events = 4'000'000);
// Stops recording; the events stay until the next start(). resume() records again, keeping them.
void stop();
void resume();
// Writes the recorded events as a JSON object {"traceEvents": [...], ...} to `path` atomically
// (a temporary renamed into place; refused over a symbolic link, as every output of spool is).
void write(const std::string& path);
int64_t events();
int64_t dropped();

// Microseconds since the trace's clock started (steady clock).
double now_us();

// One argument of a span, already formatted as a JSON value.
struct Arg {
  std::string key, json;
};
Arg arg(std::string key, const std::string& text);  // a JSON string
Arg arg(std::string key, double value);
Arg arg(std::string key, int64_t value);
// "[2, 3, 4]" for a tensor's shape; "undefined" for an undefined tensor.
std::string shape_of(const Tensor& t);

// A complete span ("ph": "X") on the calling thread, from construction to destruction. Inert
// when no trace is on at construction.
class Span {
 public:
  Span(const char* cat, std::string name, std::vector<Arg> args = {});
  ~Span();
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  // Arguments known only at the end (bytes, a result).
  void add(Arg a);
  bool active() const { return active_; }

 private:
  bool active_ = false;
  const char* cat_ = nullptr;
  std::string name_;
  std::vector<Arg> args_;
  double start_ = 0;
};

// The work a span did, for profiles (-1: not known).
struct Work {
  double flops = -1;
  double bytes = -1;  // read and written
};
// The span of an op that runs other ops and kernels of its own (batch norm's statistics and their
// running averages, dropout's mask, a backward node): the ops it records inside do not get spans
// of their own, so every kernel it launches nests in it, not in whichever op recorded next.
class OpScope {
 public:
  OpScope(const char* cat, std::string name);
  ~OpScope();
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;
  void add(Arg a) { span_.add(std::move(a)); }
  // Its tensors, as an op span's arguments: the shapes of `inputs`, `outputs` and `saved`, the
  // dtype and device, the bytes read (inputs and saved) and written (outputs). The FLOPs of the
  // kernels it launched are added at its end.
  void io(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
          const std::vector<Tensor>& saved);
  bool active() const { return span_.active(); }

 private:
  Span span_;
  double flops0_ = 0;
};

// A span whose times the caller measured.
void complete(const char* cat, std::string name, double start_us, double end_us,
              std::vector<Arg> args = {}, Work work = {});

// The recorded spans, in the order they ended (for profiles: tools/profile.h).
struct SpanRecord {
  const char* cat;
  std::string name;
  double ts = 0, dur = 0;  // microseconds
  int tid = 0;
  Work work;
};
std::vector<SpanRecord> spans();
// A counter track's value from now on.
void counter(const char* track, double value);

namespace detail {
// `inner` wrapped so that each call is a kernel span (engine/trace_backend.cpp); backend()
// hands it out while a trace is on.
Backend& traced(Backend& inner);
// An op span's arguments for these tensors (OpScope::io).
std::vector<Arg> io_args(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                         const std::vector<Tensor>& saved);
// The kernel and op hooks (engine/backend.cpp, engine/autograd.cpp).
void kernel_started(double start_us);
// The forward span of the op record() names, from the first kernel since the last one.
void op_recorded(const char* op, const std::vector<Tensor>& inputs,
                 const std::vector<Tensor>& outputs, double flops);
}  // namespace detail

}  // namespace spool::trace
