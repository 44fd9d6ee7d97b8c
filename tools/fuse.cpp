// spool fuse: late fusion of class scores, as the two-stream networks combine their streams
// (TSN weighs RGB 1 and flow 1.5): each input is the file `spool train --scores` writes (the
// test's class scores per clip and the labels, in test-list order); the fused scores are the
// weighted sum, and each stream's and the fusion's top-1, pair and direction accuracies are
// printed as one JSON line; --out writes the fused scores in the same form.
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "data/clips.h"
#include "engine/factory.h"
#include "engine/files.h"
#include "engine/safetensors.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace spool::cli {

namespace {

std::vector<std::string> comma_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

data::ClipScores score(const std::vector<float>& scores, const std::vector<int64_t>& labels,
                       int64_t classes, int64_t motion_only_from) {
  std::map<std::pair<int64_t, int64_t>, int64_t> confusion;
  for (size_t i = 0; i < labels.size(); ++i) {
    int64_t best = 0;
    for (int64_t c = 1; c < classes; ++c)
      if (scores[i * size_t(classes) + size_t(c)] > scores[i * size_t(classes) + size_t(best)])
        best = c;
    ++confusion[{labels[i], best}];
  }
  return data::score_clips(std::move(confusion), classes, motion_only_from);
}

}  // namespace

int cmd_fuse(int argc, char** argv) {
  Args a(argc, argv, 2,
         {{"scores", true, "S1.safetensors,S2.safetensors,...: files of spool train --scores"},
          {"weights", true, "one weight a file (default 1 each; TSN's two streams: 1,1.5)"},
          {"out", true, "F.safetensors: the fused scores and labels, as --scores reads them"},
          {"motion-only-from", true,
           "the first motion-only class: it and those above are scored apart (motion_only_acc)"}},
         "fuse");
  if (!a.has("scores")) throw UsageError("fuse: --scores S1,S2,... is required");
  const auto files = comma_list(a.str("scores", ""));
  if (files.size() < 2) throw UsageError("fuse: --scores names fewer than two files");
  std::vector<double> weights(files.size(), 1.0);
  if (a.has("weights")) {
    const auto w = comma_list(a.str("weights", ""));
    if (w.size() != files.size())
      throw UsageError("fuse: --weights has " + std::to_string(w.size()) + " values for " +
                       std::to_string(files.size()) + " files");
    for (size_t i = 0; i < w.size(); ++i) {
      size_t used = 0;
      double v = -1;
      try {
        v = std::stod(w[i], &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != w[i].size() || !std::isfinite(v) || v < 0)
        throw UsageError("fuse: --weights: '" + w[i] + "' is not a non-negative number");
      weights[i] = v;
    }
  }
  const int64_t motion_only_from =
      a.has("motion-only-from") ? a.positive_int("motion-only-from", 0) : -1;
  const std::string out_path = a.str("out", "");
  if (a.has("out")) check_output_path(out_path, "fuse --out");
  std::vector<int64_t> labels;
  int64_t classes = 0;
  std::vector<float> fused;
  Json out;
  for (size_t i = 0; i < files.size(); ++i) {
    TensorFile f;
    try {
      f = load_safetensors(files[i]);
    } catch (const Error& e) {
      throw UsageError(std::string("fuse: --scores: ") + e.what());
    }
    if (!f.has("scores") || !f.has("labels"))
      throw UsageError("fuse: " + files[i] +
                       " holds no 'scores' and 'labels' (spool train "
                       "--scores writes them)");
    const Tensor& s = f.at("scores");
    const Tensor& l = f.at("labels");
    if (s.dim() != 2 || s.dtype() != DType::f32 || l.dim() != 1 || l.dtype() != DType::i64 ||
        l.size(0) != s.size(0) || s.size(1) < 1)
      throw UsageError("fuse: " + files[i] + ": scores " + describe(s) + " and labels " +
                       describe(l) + " must be f32 [clips, classes] and i64 [clips]");
    const auto these = l.to_vector<int64_t>();
    if (i == 0) {
      labels = these;
      classes = s.size(1);
      fused.assign(size_t(s.numel()), 0.0f);
      if (motion_only_from >= classes)
        throw UsageError("fuse: --motion-only-from " + std::to_string(motion_only_from) +
                         " is not below the " + std::to_string(classes) + " classes of " +
                         files[0]);
    } else if (these != labels || s.size(1) != classes) {
      throw UsageError("fuse: " + files[i] + " scores other clips than " + files[0] +
                       " (its labels or classes differ): fuse runs tested on the same list");
    }
    for (int64_t v : labels)
      if (v < 0 || v >= classes)
        throw UsageError("fuse: " + files[i] + ": label " + std::to_string(v) + " is outside " +
                         std::to_string(classes) + " classes");
    const auto sv = s.to_vector<float>();
    for (size_t j = 0; j < sv.size(); ++j) fused[j] += float(weights[i]) * sv[j];
    const data::ClipScores e = score(sv, labels, classes, motion_only_from);
    const std::string key = "stream" + std::to_string(i + 1);
    out.add(key + "_top1", e.top1)
        .add(key + "_pair_acc", e.pair_acc)
        .add(key + "_direction_acc", e.direction_acc);
    if (motion_only_from >= 0) out.add(key + "_motion_only_acc", e.motion_only_acc);
  }
  const data::ClipScores e = score(fused, labels, classes, motion_only_from);
  out.add("clips", int64_t(labels.size()))
      .add("top1", e.top1)
      .add("pair_acc", e.pair_acc)
      .add("direction_acc", e.direction_acc);
  if (motion_only_from >= 0) out.add("motion_only_acc", e.motion_only_acc);
  std::printf("%s\n", out.str().c_str());
  if (a.has("out"))
    save_safetensors(out_path,
                     {{"scores", from_vector(fused, {int64_t(labels.size()), classes})},
                      {"labels", from_vector(labels)}},
                     {{"fused", a.str("scores", "")}});
  return 0;
}

}  // namespace spool::cli
