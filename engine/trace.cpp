#include "engine/trace.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "engine/allocator.h"
#include "engine/error.h"
#include "engine/files.h"
#include "engine/tensor.h"

namespace spool::trace {

namespace {

struct Event {
  char ph = 'X';  // X: a complete span; C: a counter
  const char* cat = "";
  std::string name;
  double ts = 0, dur = 0, value = 0;
  int tid = 0;
  std::string args;  // "key": value, ... (without braces)
  Work work;
};

std::atomic<bool> g_on{false};
std::mutex g_mu;
std::vector<Event> g_events;
int64_t g_max = 0, g_dropped = 0;
std::atomic<int> g_next_tid{0};
const auto g_epoch = std::chrono::steady_clock::now();

// A small number per thread, in the order threads first record.
int tid() {
  thread_local int id = g_next_tid.fetch_add(1);
  return id;
}
// The start of the first kernel since this thread's last op, span or backward boundary (< 0:
// none): an op's forward span starts there.
thread_local double t_op_start = -1;
// The FLOPs of the kernels this thread has recorded: an OpScope's are the difference across it.
thread_local double t_kernel_flops = 0;

void push(Event e) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_on.load(std::memory_order_relaxed)) return;
  if (int64_t(g_events.size()) >= g_max) {
    ++g_dropped;
    return;
  }
  g_events.push_back(std::move(e));
}

std::string join(const std::vector<Arg>& args) {
  std::string s;
  for (const Arg& a : args) {
    if (!s.empty()) s += ", ";
    s += '"' + a.key + "\": " + a.json;
  }
  return s;
}

std::string quoted(const std::string& text) {
  std::string s = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      s += '\\';
      s += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      s += buf;
    } else {
      s += c;
    }
  }
  return s + '"';
}

std::string number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

bool on() { return g_on.load(std::memory_order_relaxed); }

void start(int64_t max_events) {
  SPOOL_CHECK(max_events > 0, "trace: max_events ", max_events, " must be positive");
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_events.clear();
    g_max = max_events;
    g_dropped = 0;
    t_op_start = -1;
    g_on.store(true);
  }
  allocator(Device::cpu()).trace_now();  // the tracks start at the bytes live now
}

void stop() { g_on.store(false); }

void resume() {
  t_op_start = -1;
  g_on.store(true);
  allocator(Device::cpu()).trace_now();
}

int64_t events() {
  std::lock_guard<std::mutex> lock(g_mu);
  return int64_t(g_events.size());
}

int64_t dropped() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_dropped;
}

double now_us() {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - g_epoch)
      .count();
}

Arg arg(std::string key, const std::string& text) { return {std::move(key), quoted(text)}; }
Arg arg(std::string key, double value) { return {std::move(key), number(value)}; }
Arg arg(std::string key, int64_t value) { return {std::move(key), std::to_string(value)}; }

std::string shape_of(const Tensor& t) {
  if (!t.defined()) return "undefined";
  std::string s = "[";
  for (size_t i = 0; i < t.shape().size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(t.shape()[i]);
  }
  return s + "]";
}

Span::Span(const char* cat, std::string name, std::vector<Arg> args) {
  if (!on()) return;
  active_ = true;
  cat_ = cat;
  name_ = std::move(name);
  args_ = std::move(args);
  t_op_start = -1;
  start_ = now_us();
}

void Span::add(Arg a) {
  if (active_) args_.push_back(std::move(a));
}

Span::~Span() {
  if (!active_) return;
  t_op_start = -1;
  complete(cat_, std::move(name_), start_, now_us(), std::move(args_));
}

// Open OpScopes on this thread: record() makes no op span inside one.
thread_local int t_scopes = 0;

OpScope::OpScope(const char* cat, std::string name) : span_(cat, std::move(name)) {
  if (span_.active()) {
    ++t_scopes;
    flops0_ = t_kernel_flops;
  }
}

void OpScope::io(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                 const std::vector<Tensor>& saved) {
  if (!span_.active()) return;
  for (Arg& a : detail::io_args(inputs, outputs, saved)) span_.add(std::move(a));
}

OpScope::~OpScope() {
  if (!span_.active()) return;
  --t_scopes;
  if (t_kernel_flops > flops0_) span_.add(arg("flops", t_kernel_flops - flops0_));
}

void complete(const char* cat, std::string name, double start_us, double end_us,
              std::vector<Arg> args, Work work) {
  if (!on()) return;
  if (work.flops > 0 && std::strcmp(cat, "kernel") == 0) t_kernel_flops += work.flops;
  Event e;
  e.work = work;
  e.cat = cat;
  e.name = std::move(name);
  e.ts = start_us;
  e.dur = std::max(0.0, end_us - start_us);
  e.tid = tid();
  e.args = join(args);
  push(std::move(e));
}

std::vector<SpanRecord> spans() {
  std::lock_guard<std::mutex> lock(g_mu);
  std::vector<SpanRecord> out;
  for (const Event& e : g_events)
    if (e.ph == 'X') out.push_back({e.cat, e.name, e.ts, e.dur, e.tid, e.work});
  return out;
}

void counter(const char* track, double value) {
  if (!on()) return;
  Event e;
  e.ph = 'C';
  e.name = track;
  e.ts = now_us();
  e.value = value;
  e.tid = tid();
  push(std::move(e));
}

void write(const std::string& path) {
  std::vector<Event> events;
  int64_t dropped_events = 0;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    events = g_events;
    dropped_events = g_dropped;
  }
  OutputFile f(path, "--trace");
  f.write(
      "{\"displayTimeUnit\": \"ms\", \"otherData\": {\"producer\": \"spool\", "
      "\"dropped_events\": " +
      std::to_string(dropped_events) + "},\n\"traceEvents\": [\n");
  f.write(
      "{\"ph\": \"M\", \"name\": \"process_name\", \"pid\": 1, \"tid\": 0, \"args\": {\"name\": "
      "\"spool\"}}");
  std::string line;
  for (const Event& e : events) {
    line = ",\n{\"ph\": \"";
    line += e.ph;
    line += "\", \"pid\": 1, \"tid\": " + std::to_string(e.tid) + ", \"ts\": " + number(e.ts) +
            ", \"name\": " + quoted(e.name);
    if (e.ph == 'X') {
      line += ", \"cat\": " + quoted(e.cat) + ", \"dur\": " + number(e.dur);
      line += ", \"args\": {" + e.args + "}}";
    } else {
      line += ", \"args\": {\"bytes\": " + number(e.value) + "}}";
    }
    f.write(line);
  }
  f.write("\n]}\n");
  f.commit();
}

namespace detail {

void kernel_started(double start_us) {
  if (t_op_start < 0) t_op_start = start_us;
}

std::vector<Arg> io_args(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                         const std::vector<Tensor>& saved) {
  auto shapes = [](const std::vector<Tensor>& ts, int64_t& bytes) {
    std::string s;
    for (const Tensor& t : ts) {
      if (!s.empty()) s += ' ';
      s += shape_of(t);
      if (t.defined()) bytes += int64_t(t.nbytes());
    }
    return s;
  };
  int64_t read = 0, written = 0;
  std::vector<Arg> args{arg("inputs", shapes(inputs, read)),
                        arg("outputs", shapes(outputs, written))};
  if (!saved.empty()) args.push_back(arg("saved", shapes(saved, read)));
  // The dtype and device of the first defined output (of the first input, when none is).
  const Tensor* first = nullptr;
  for (const auto* ts : {&outputs, &inputs})
    for (const Tensor& t : *ts)
      if (!first && t.defined()) first = &t;
  if (first) {
    args.push_back(arg("dtype", std::string(spool::name(first->dtype()))));
    args.push_back(arg("device", first->device().str()));
  }
  args.push_back(arg("bytes_read", read));
  args.push_back(arg("bytes_written", written));
  return args;
}

void op_recorded(const char* op, const std::vector<Tensor>& inputs,
                 const std::vector<Tensor>& outputs, double flops) {
  if (!on()) return;
  const double end = now_us(), start = t_op_start >= 0 ? t_op_start : end;
  t_op_start = -1;
  if (t_scopes > 0) return;  // inside an op's or a backward node's OpScope
  std::vector<Arg> args = io_args(inputs, outputs, {});
  if (flops >= 0) args.push_back(arg("flops", flops));
  complete("op", op, start, end, std::move(args));
}

}  // namespace detail

}  // namespace spool::trace
