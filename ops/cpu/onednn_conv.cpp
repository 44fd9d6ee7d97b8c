// The oneDNN convolution path (ops/cpu/paths.h): oneDNN's direct convolutions, which run on
// channel-blocked layouts (e.g. nChw16c with AVX-512) that oneDNN picks for the shape and the CPU.
// spool keeps tensors in the contiguous [N, C, *spatial] layout, so every call reorders its
// operands into the primitive's layouts and its result back, as PyTorch's eager CPU path does.
//
// Primitives (and their reorders) are built once per shape and kept in a cache keyed by the entry
// point and the geometry. The blocked copies and oneDNN's scratchpad live in one per-thread
// workspace that grows to the largest call and is reused: kernel scratch like the im2col path's
// column buffer, not tensor memory, so the allocator (and the planner's predictions) never see it.
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#ifdef SPOOL_HAVE_ONEDNN
#include <dnnl.hpp>

#include "engine/error.h"
#include "ops/cpu/onednn_conv.h"

namespace spool::cpu::onednn {

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Dims = memory::dims;

enum class Entry { forward, backward_input, backward_weight };

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// The user's (spool's) layouts for 1, 2 or 3 spatial dims.
Tag act_tag(size_t spatial) {
  return spatial == 1 ? Tag::ncw : spatial == 2 ? Tag::nchw : Tag::ncdhw;
}
Tag weight_tag(size_t spatial, bool grouped) {
  if (grouped) return spatial == 1 ? Tag::goiw : spatial == 2 ? Tag::goihw : Tag::goidhw;
  return spatial == 1 ? Tag::oiw : spatial == 2 ? Tag::oihw : Tag::oidhw;
}

// A reorder from one layout to another, or none where they are the same.
struct Reorder {
  memory::desc from, to;
  std::unique_ptr<dnnl::reorder> prim;  // null: no copy needed
  void build(const memory::desc& a, const memory::desc& b) {
    from = a;
    to = b;
    if (a != b)
      prim = std::make_unique<dnnl::reorder>(
          dnnl::reorder::primitive_desc(cpu_engine(), a, cpu_engine(), b));
  }
};

// One entry point at one geometry: the convolution primitive and the reorders around it. The
// three operands are, by entry point: forward (src x, weights w, dst y), backward_input (diff_src
// gx, weights w, diff_dst gy), backward_weight (src x, diff_weights gw, diff_dst gy); `in` lists
// the two operands read, `out` the one written.
struct Plan {
  dnnl::primitive conv;
  Reorder in[2], out;
  int in_arg[2] = {0, 0}, out_arg = 0;
  memory::desc scratch_md;
  size_t scratch = 0;
};

struct Key {
  Entry entry;
  std::vector<int64_t> v;
  bool operator==(const Key& o) const { return entry == o.entry && v == o.v; }
};
struct KeyHash {
  size_t operator()(const Key& k) const {
    size_t h = size_t(k.entry) * 0x9e3779b97f4a7c15ull;
    for (int64_t x : k.v) h = (h ^ size_t(x)) * 0x100000001b3ull;
    return h;
  }
};

// Geometry of a call, from the shapes of x, w and y and the window.
struct Geometry {
  Dims x, w, y, stride, dilation, pad_l, pad_r;
  size_t spatial = 0;
  bool grouped = false;
};

Geometry geometry(const Shape& x, const Shape& w, const Shape& y, const WindowParams& p) {
  Geometry g;
  g.spatial = x.size() - 2;
  g.grouped = p.groups != 1;
  g.x.assign(x.begin(), x.end());
  g.y.assign(y.begin(), y.end());
  if (g.grouped) {
    g.w = {p.groups, w[0] / p.groups};
    g.w.insert(g.w.end(), w.begin() + 1, w.end());
  } else {
    g.w.assign(w.begin(), w.end());
  }
  for (size_t d = 0; d < g.spatial; ++d) {
    g.stride.push_back(p.stride[d]);
    g.dilation.push_back(p.dilation[d] - 1);  // oneDNN counts the gaps: 0 is no dilation
    g.pad_l.push_back(p.padding[d]);
    g.pad_r.push_back(p.padding[d]);
  }
  return g;
}

Key key_of(Entry e, const Geometry& g, int64_t groups) {
  Key k{e, {}};
  for (const Dims* d : {&g.x, &g.w, &g.y, &g.stride, &g.dilation, &g.pad_l}) {
    k.v.push_back(int64_t(d->size()));
    k.v.insert(k.v.end(), d->begin(), d->end());
  }
  k.v.push_back(groups);
  return k;
}

std::unique_ptr<Plan> build(Entry e, const Geometry& g) {
  const auto f32 = memory::data_type::f32;
  const memory::desc x_user(g.x, f32, act_tag(g.spatial)), y_user(g.y, f32, act_tag(g.spatial)),
      w_user(g.w, f32, weight_tag(g.spatial, g.grouped));
  const memory::desc x_any(g.x, f32, Tag::any), y_any(g.y, f32, Tag::any),
      w_any(g.w, f32, Tag::any);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const auto algo = dnnl::algorithm::convolution_direct;
  const dnnl::convolution_forward::desc fd(dnnl::prop_kind::forward_training, algo, x_any, w_any,
                                           y_any, g.stride, g.dilation, g.pad_l, g.pad_r);
  auto plan = std::make_unique<Plan>();
  if (e == Entry::forward) {
    const dnnl::convolution_forward::primitive_desc pd(fd, attr, cpu_engine());
    plan->conv = dnnl::convolution_forward(pd);
    plan->in[0].build(x_user, pd.src_desc());
    plan->in[1].build(w_user, pd.weights_desc());
    plan->out.build(pd.dst_desc(), y_user);
    plan->in_arg[0] = DNNL_ARG_SRC;
    plan->in_arg[1] = DNNL_ARG_WEIGHTS;
    plan->out_arg = DNNL_ARG_DST;
    plan->scratch_md = pd.scratchpad_desc();
    plan->scratch = plan->scratch_md.get_size();
    return plan;
  }
  const dnnl::convolution_forward::primitive_desc hint(fd, cpu_engine());
  if (e == Entry::backward_input) {
    const dnnl::convolution_backward_data::desc bd(algo, x_any, w_any, y_any, g.stride, g.dilation,
                                                   g.pad_l, g.pad_r);
    const dnnl::convolution_backward_data::primitive_desc pd(bd, attr, cpu_engine(), hint);
    plan->conv = dnnl::convolution_backward_data(pd);
    plan->in[0].build(y_user, pd.diff_dst_desc());
    plan->in[1].build(w_user, pd.weights_desc());
    plan->out.build(pd.diff_src_desc(), x_user);
    plan->in_arg[0] = DNNL_ARG_DIFF_DST;
    plan->in_arg[1] = DNNL_ARG_WEIGHTS;
    plan->out_arg = DNNL_ARG_DIFF_SRC;
    plan->scratch_md = pd.scratchpad_desc();
    plan->scratch = plan->scratch_md.get_size();
    return plan;
  }
  const dnnl::convolution_backward_weights::desc bd(algo, x_any, w_any, y_any, g.stride, g.dilation,
                                                    g.pad_l, g.pad_r);
  const dnnl::convolution_backward_weights::primitive_desc pd(bd, attr, cpu_engine(), hint);
  plan->conv = dnnl::convolution_backward_weights(pd);
  plan->in[0].build(y_user, pd.diff_dst_desc());
  plan->in[1].build(x_user, pd.src_desc());
  plan->out.build(pd.diff_weights_desc(), w_user);
  plan->in_arg[0] = DNNL_ARG_DIFF_DST;
  plan->in_arg[1] = DNNL_ARG_SRC;
  plan->out_arg = DNNL_ARG_DIFF_WEIGHTS;
  plan->scratch_md = pd.scratchpad_desc();
  plan->scratch = plan->scratch_md.get_size();
  return plan;
}

// Plans by geometry. Models use a few dozen shapes; a run that cycles through more than
// kMaxPlans starts the cache afresh rather than growing without bound.
constexpr size_t kMaxPlans = 1024;

// Shared, so that a call still holds its plan when another thread starts the cache afresh.
std::shared_ptr<const Plan> plan_for(Entry e, const Geometry& g, int64_t groups) {
  static std::mutex mu;
  static std::unordered_map<Key, std::shared_ptr<const Plan>, KeyHash> cache;
  Key k = key_of(e, g, groups);
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(k);
  if (it != cache.end()) return it->second;
  if (cache.size() >= kMaxPlans) cache.clear();
  std::shared_ptr<const Plan> p = build(e, g);
  cache.emplace(std::move(k), p);
  return p;
}

// The per-thread workspace: 64-byte aligned, grown to the largest request, never shrunk.
struct Workspace {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<char, Free> data;
  size_t size = 0;
  char* get(size_t bytes) {
    if (bytes > size) {
      const size_t n = (bytes + 4095) / 4096 * 4096;
      data.reset(static_cast<char*>(std::aligned_alloc(64, n)));
      SPOOL_CHECK(data, "conv (oneDNN): could not allocate a workspace of ", n, " bytes");
      size = n;
    }
    return data.get();
  }
};

size_t aligned(size_t n) { return (n + 63) / 64 * 64; }

// Runs plan p on the user's buffers in[0], in[1] (read) and out (written).
void run(const Plan& p, const void* in0, const void* in1, void* out) {
  thread_local Workspace ws;
  thread_local dnnl::stream stream(cpu_engine());
  const Reorder* ins[2] = {&p.in[0], &p.in[1]};
  size_t bytes = aligned(p.scratch);
  for (const Reorder* r : ins)
    if (r->prim) bytes += aligned(r->to.get_size());
  if (p.out.prim) bytes += aligned(p.out.from.get_size());
  char* base = ws.get(std::max<size_t>(bytes, 64));
  char* next = base + aligned(p.scratch);
  std::unordered_map<int, memory> args;
  args.reserve(4);
  args.emplace(DNNL_ARG_SCRATCHPAD, memory(p.scratch_md, cpu_engine(), base));
  const void* user_in[2] = {in0, in1};
  for (int i = 0; i < 2; ++i) {
    const Reorder& r = *ins[i];
    memory user(r.from, cpu_engine(), const_cast<void*>(user_in[i]));
    if (!r.prim) {
      args.emplace(p.in_arg[i], user);
      continue;
    }
    memory blocked(r.to, cpu_engine(), next);
    next += aligned(r.to.get_size());
    r.prim->execute(stream, user, blocked);
    args.emplace(p.in_arg[i], blocked);
  }
  memory user_out(p.out.to, cpu_engine(), out);
  memory result = user_out;
  if (p.out.prim) result = memory(p.out.from, cpu_engine(), next);
  args.emplace(p.out_arg, result);
  p.conv.execute(stream, args);
  if (p.out.prim) p.out.prim->execute(stream, result, user_out);
  stream.wait();
}

template <class F>
void guarded(const char* what, F&& f) {
  try {
    f();
  } catch (const dnnl::error& e) {
    fail(what, " (oneDNN): ", e.what(), " (status ", int(e.status),
         "); SPOOL_CPU_CONV=im2col takes spool's own path");
  }
}

}  // namespace

void conv(const Tensor& x, const Tensor& w, const WindowParams& p, const Tensor& y) {
  guarded("conv", [&] {
    const Geometry g = geometry(x.shape(), w.shape(), y.shape(), p);
    run(*plan_for(Entry::forward, g, p.groups), x.raw(), w.raw(), y.raw());
  });
}

void conv_backward_input(const Tensor& gy, const Tensor& w, const WindowParams& p,
                         const Tensor& gx) {
  guarded("conv_backward_input", [&] {
    const Geometry g = geometry(gx.shape(), w.shape(), gy.shape(), p);
    run(*plan_for(Entry::backward_input, g, p.groups), gy.raw(), w.raw(), gx.raw());
  });
}

void conv_backward_weight(const Tensor& gy, const Tensor& x, const WindowParams& p,
                          const Tensor& gw) {
  guarded("conv_backward_weight", [&] {
    const Geometry g = geometry(x.shape(), gw.shape(), gy.shape(), p);
    run(*plan_for(Entry::backward_weight, g, p.groups), gy.raw(), x.raw(), gw.raw());
  });
}

}  // namespace spool::cpu::onednn
#endif
