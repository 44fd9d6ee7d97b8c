// Data parallel over MPI (dist/, docs/distributed.md): two processes under mpirun against one
// with the whole batch, ZeRO-1, checkpoints across world sizes, a failing rank and a dead peer.
// Each test starts spool under `mpirun --oversubscribe -np 2` (two ranks on CI's two cores).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "dist/dist.h"
#include "dist/sync_batch_norm.h"
#include "engine/autograd.h"
#include "engine/clock.h"
#include "engine/factory.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "ops/ops.h"
#include "tests/support/cli.h"

using namespace spool;
using namespace spool::test_support;

namespace {

// Why the MPI tests cannot run here, or "" when they can.
std::string why_no_mpi() {
  if (dist::mpi_version() == "none") return "this spool was built without MPI";
  if (std::system("command -v mpirun > /dev/null 2>&1") != 0) return "mpirun is not installed";
  return "";
}

// `mpirun` with the options every run here needs: ranks beyond the cores, root allowed (CI runs
// as root), one OpenMP thread a rank. Under AddressSanitizer (tools/sanitize.sh) the leak check
// is off in these processes only: Open MPI leaves allocations of its dlopen-ed plugins at
// MPI_Finalize, which LeakSanitizer reports from an unloaded module that no suppression can name.
// Every single-process test still checks spool's own code for leaks.
std::string mpirun() {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
         "OMPI_MCA_rmaps_base_oversubscribe=1 ASAN_OPTIONS=\"$ASAN_OPTIONS:detect_leaks=0\" "
         "OMP_NUM_THREADS=1 mpirun ";
}

// A shell command's exit status and output (stdout and stderr together).
CliResult shell(const std::string& cmd) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t got; (got = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, got);
  const int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

// `spool ARGS` in N processes.
CliResult run_np(int n, const std::string& args) {
  const CliResult r = shell(mpirun() + "-np " + std::to_string(n) + " " + SPOOL_CLI + " " + args);
  // A training run that finished must have run as N processes, not N copies of one.
  if (r.status == 0 && args.rfind("train ", 0) == 0)
    EXPECT_NE(r.output.find("data parallel: " + std::to_string(n) + " process(es)"),
              std::string::npos)
        << r.output;
  return r;
}

// Two processes with a command line each (mpirun's MPMD form).
CliResult run_each(const std::string& rank0, const std::string& rank1) {
  return shell(mpirun() + "-np 1 " + SPOOL_CLI + " " + rank0 + " : -np 1 " + SPOOL_CLI + " " +
               rank1);
}

// The losses of a log's step lines, in order.
std::vector<double> losses(const std::filesystem::path& log) {
  std::vector<double> out;
  static const std::regex loss(R"(, "loss": ([-0-9.e+]+))");
  std::ifstream f(log);
  std::smatch m;
  for (std::string line; std::getline(f, line);)
    if (line.rfind("{\"step\": ", 0) == 0 && std::regex_search(line, m, loss))
      out.push_back(std::stod(m[1]));
  return out;
}

// Each loss within `rel` of the other run's.
void expect_close(const std::vector<double>& a, const std::vector<double>& b, double rel) {
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_NEAR(a[i], b[i], rel * std::abs(b[i])) << "logged step " << i;
}

// The largest difference between two checkpoints' tensors whose names start with `prefix` and
// hold `part` (absolute, or relative to the largest magnitude in that tensor); -1 when the names
// or sizes differ or none is compared.
double checkpoint_difference(const std::filesystem::path& a, const std::filesystem::path& b,
                             const std::string& prefix, bool relative = false,
                             const std::string& part = "") {
  TensorFile fa = load_safetensors(a.string()), fb = load_safetensors(b.string());
  double worst = 0;
  size_t compared = 0;
  for (const auto& [name, t] : fa.tensors) {
    if (name.rfind(prefix, 0) != 0 || name.find(part) == std::string::npos) continue;
    if (!fb.has(name)) return -1;
    const auto x = t.to_vector<float>(), y = fb.at(name).to_vector<float>();
    if (x.size() != y.size()) return -1;
    double diff = 0, scale = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      diff = std::max(diff, double(std::abs(x[i] - y[i])));
      scale = std::max(scale, double(std::abs(y[i])));
    }
    worst = std::max(worst, relative ? diff / std::max(scale, 1e-30) : diff);
    ++compared;
  }
  return compared > 0 ? worst : -1;
}

#define SKIP_WITHOUT_MPI()                 \
  do {                                     \
    const std::string why = why_no_mpi();  \
    if (!why.empty()) GTEST_SKIP() << why; \
  } while (0)

// gpt-tiny for `steps` steps of 4 windows (lr 1e-3, warm-up and cosine), every step logged.
std::string gpt(int steps = 6) {
  return "train --model gpt-tiny --steps " + std::to_string(steps) +
         " --batch 4 --log-every 1 --eval-every 100 ";
}

}  // namespace

TEST(DataParallel, RankAndWorldComeFromTheLauncher) {
  auto env = [](std::map<std::string, std::string> vars) {
    return [vars](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  };
  dist::Launch one = dist::discover(env({}));
  EXPECT_EQ(one.world, 1);
  EXPECT_EQ(one.launcher, "single");
  dist::Launch ompi = dist::discover(env({{"OMPI_COMM_WORLD_SIZE", "4"},
                                          {"OMPI_COMM_WORLD_RANK", "3"},
                                          {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}}));
  EXPECT_EQ(ompi.launcher, "mpirun");
  EXPECT_EQ(ompi.world, 4);
  EXPECT_EQ(ompi.rank, 3);
  EXPECT_EQ(ompi.local_rank, 1);
  dist::Launch torch =
      dist::discover(env({{"WORLD_SIZE", "8"}, {"RANK", "5"}, {"LOCAL_RANK", "1"}}));
  EXPECT_EQ(torch.launcher, "env");
  EXPECT_EQ(torch.rank, 5);
  EXPECT_EQ(torch.world, 8);
  for (const auto& bad :
       std::vector<std::map<std::string, std::string>>{{{"WORLD_SIZE", "2"}, {"RANK", "2"}},
                                                       {{"WORLD_SIZE", "two"}, {"RANK", "0"}},
                                                       {{"WORLD_SIZE", "2"}},
                                                       {{"OMPI_COMM_WORLD_SIZE", "0"}}})
    EXPECT_THROW(dist::discover(env(bad)), Error);
}

TEST(DataParallel, TheGroupOfOneProcessCopiesAndChecksItsTensors) {
  auto g = dist::single_process_group();
  Tensor t = full({3}, 2.5);
  g->all_reduce_sum(t);
  EXPECT_EQ(t.to_vector<float>(), std::vector<float>({2.5f, 2.5f, 2.5f}));
  Tensor out = zeros({3});
  g->all_gather(t, out);
  EXPECT_EQ(out.to_vector<float>(), t.to_vector<float>());
  Tensor i32 = zeros({2}, DType::i32);
  EXPECT_THROW(g->all_reduce_sum(i32), Error);
  EXPECT_THROW(g->broadcast(t, 1), Error);
  EXPECT_THROW(g->set_timeout(0), Error);
}

TEST(DataParallel, SyncBatchNormInOneProcessIsBatchNormWithItsGradients) {
  // f64: the global statistics of one process are batch_norm's, and so are the gradients of x,
  // weight and bias (the all-reduce ops' backward is the identity for one rank).
  auto g = dist::single_process_group();
  Generator gen(3);
  auto make = [&](const Shape& shape) {
    Tensor t = randn(shape, DType::f64, &gen);
    t.requires_grad_();
    return t;
  };
  Tensor x = make({4, 3, 2, 5}), w = make({3}), b = make({3}),
         seed = randn({4, 3, 2, 5}, DType::f64, &gen);
  Tensor rm1 = zeros({3}, DType::f64), rv1 = ones({3}, DType::f64);
  Tensor rm2 = zeros({3}, DType::f64), rv2 = ones({3}, DType::f64);
  Tensors plain = grad({sum(batch_norm(x, rm1, rv1, w, b, true, 0.1, 1e-5) * seed)},
                       {ones({}, DType::f64)}, {x, w, b});
  Tensors synced = grad({sum(dist::sync_batch_norm(
                                 *g, [] { return 1.0; }, x, rm2, rv2, w, b, 0.1, 1e-5) *
                             seed)},
                        {ones({}, DType::f64)}, {x, w, b});
  for (size_t i = 0; i < 3; ++i) {
    const auto p = plain[i].to_vector<double>(), q = synced[i].to_vector<double>();
    ASSERT_EQ(p.size(), q.size());
    for (size_t k = 0; k < p.size(); ++k) EXPECT_NEAR(p[k], q[k], 1e-12) << i << " " << k;
  }
  for (auto [a, b2] : {std::pair{rm1, rm2}, std::pair{rv1, rv2}}) {
    const auto p = a.to_vector<double>(), q = b2.to_vector<double>();
    for (size_t k = 0; k < p.size(); ++k) EXPECT_NEAR(p[k], q[k], 1e-12);
  }
}

TEST(DataParallel, DropoutInABatchWindowDrawsTheWholeBatchsNumbersForItsRows) {
  // Samples [2, 5) of 7, each 3 rows of 5 elements (rows start off a 4-element Philox block, so
  // the draw is sliced) or of 4 elements (aligned: the offset moves). The generator ends where
  // the whole batch's draw leaves it.
  for (int64_t width : {5, 4}) {
    Tensor whole = ones({7 * 3, width});
    Generator a(11), b(11);
    Tensor expected = slice(dropout(whole, 0.5, true, &a), 0, 2 * 3, 5 * 3);
    set_batch_window({2, 3, 7});
    Tensor got = dropout(ones({3 * 3, width}), 0.5, true, &b);
    set_batch_window({});
    EXPECT_EQ(got.to_vector<float>(), contiguous(expected).to_vector<float>()) << width;
    EXPECT_EQ(a.state(), b.state()) << width;
  }
}

TEST(DataParallel, ZeroOneInOneProcessEqualsPlainAdamWBitForBit) {
  auto dir = temp_dir();
  const std::string d = dir.string() + "/";
  for (const std::string z : {"0", "1"}) {
    CliResult r = run_cli(gpt() + "--zero " + z + " --log " + d + z + ".jsonl --save " + d + z +
                          ".safetensors");
    ASSERT_EQ(r.status, 0) << r.output;
  }
  EXPECT_EQ(logged_losses(dir / "0.jsonl"), logged_losses(dir / "1.jsonl"));
  // The gathered optimizer state is the plain one's, name for name and bit for bit.
  EXPECT_EQ(checkpoint_difference(dir / "0.safetensors", dir / "1.safetensors", "model."), 0);
  EXPECT_EQ(checkpoint_difference(dir / "0.safetensors", dir / "1.safetensors", "optimizer."), 0);
}

TEST(DataParallel, TwoProcessesEqualOneWithTheWholeBatch) {
  SKIP_WITHOUT_MPI();
  auto dir = temp_dir();
  const std::string d = dir.string() + "/";
  CliResult one = run_cli(gpt() + "--log " + d + "one.jsonl --save " + d + "one.st");
  ASSERT_EQ(one.status, 0) << one.output;
  for (const std::string z : {"0", "1"}) {
    const std::string tag = "two" + z;
    // Small buckets: the gradients go in several.
    CliResult two = run_np(2, gpt() + "--zero " + z + " --bucket-mb 1 --log " + d + tag +
                                  ".jsonl --save " + d + tag + ".st");
    ASSERT_EQ(two.status, 0) << two.output;
    EXPECT_NE(two.output.find("data parallel: 2 process(es)"), std::string::npos) << two.output;
    // One line of output per run: rank 1 prints nothing.
    EXPECT_EQ(std::count(two.output.begin(), two.output.end(), '\n'),
              std::count(one.output.begin(), one.output.end(), '\n') + 1)
        << two.output;
    // The two halves' gradients are summed in another order than the whole batch's: the
    // losses agree to float rounding, and every weight after 6 AdamW steps to a tenth of one
    // step's size, lr = 1e-3 (an Adam step moves a weight by about lr whatever its gradient's
    // size, so rounding in a near-zero gradient can show at that scale; an averaging that was
    // wrong would move weights by whole steps).
    expect_close(losses(dir / (tag + ".jsonl")), losses(dir / "one.jsonl"), 1e-6);
    const double diff = checkpoint_difference(dir / (tag + ".st"), dir / "one.st", "model.");
    EXPECT_GE(diff, 0);
    EXPECT_LT(diff, 1e-4) << tag;
  }
  // ZeRO-1's run and the replicated one step the same reduced gradients.
  EXPECT_EQ(logged_losses(dir / "two0.jsonl"), logged_losses(dir / "two1.jsonl"));
}

TEST(DataParallel, TwoProcessesOfTheDigitsModelsEqualOne) {
  SKIP_WITHOUT_MPI();
  auto dir = temp_dir();
  const std::string d = dir.string() + "/";
  // resnet18's batch norm takes the statistics of both processes' rows (sync_batch_norm), as one
  // process takes its whole batch's. 9 rows split 4 and 5: unequal shares of the loss.
  for (const std::string model : {"mlp", "resnet18"}) {
    const std::string args = "train --model " + model + " --batch 9 --log-every 1 ";
    // The gradients of the first step: AdamW's first moment after one step is 0.1 g exactly.
    // Each tensor agrees to 1e-4 of its largest element: f32 rounding of sums taken in another
    // order, through resnet18's 20 batch norms (measured 1.3e-5; the mlp's 3.7e-7). A wrong share
    // of the loss would be off by a ninth, a wrong statistic by more.
    CliResult one = run_cli(args + "--steps 1 --save " + d + model + "1.st");
    ASSERT_EQ(one.status, 0) << one.output;
    CliResult two = run_np(2, args + "--steps 1 --save " + d + model + "2.st");
    ASSERT_EQ(two.status, 0) << two.output;
    const double g = checkpoint_difference(dir / (model + "1.st"), dir / (model + "2.st"),
                                           "optimizer.", true, "exp_avg");
    EXPECT_GE(g, 0) << model;
    EXPECT_LT(g, 1e-4) << model;
    std::printf("%s: first-step gradients agree to %.2g of each tensor's largest\n", model.c_str(),
                g);
    // Six steps: the losses agree. (At resnet18's lr of 1e-3 a first AdamW step moves each
    // weight by lr times the sign of its gradient, so a gradient that is rounding noise in
    // either run moves its weight the other way; on 9 digits that grows to 2 % of the loss
    // within 4 steps. At 1e-5 it stays at rounding.)
    const std::string lr = model == "mlp" ? "1e-3" : "1e-5";
    ASSERT_EQ(run_cli(args + "--steps 6 --lr " + lr + " --log " + d + model + "1.jsonl").status, 0);
    two = run_np(2, args + "--steps 6 --lr " + lr + " --log " + d + model + "2.jsonl");
    ASSERT_EQ(two.status, 0) << two.output;
    expect_close(losses(dir / (model + "2.jsonl")), losses(dir / (model + "1.jsonl")), 1e-5);
  }
}

TEST(DataParallel, TwoProcessesOfTsmEqualOneAndZeroOneShardsItsMomentum) {
  SKIP_WITHOUT_MPI();
  auto dir = temp_dir();
  const std::string d = dir.string() + "/";
  // 4 clips, 2 a rank: batch norm over both ranks' frames, dropout drawn as for the whole batch
  // (engine/rng.h's batch window), SGD with momentum.
  const std::string args =
      "train --model tsm-r18 --size 32 --width 16 --steps 4 --batch 4 --test-clips 4 "
      "--log-every 1 ";
  ASSERT_EQ(run_cli(args + "--log " + d + "one.jsonl").status, 0);
  CliResult two = run_np(2, args + "--log " + d + "two.jsonl");
  ASSERT_EQ(two.status, 0) << two.output;
  expect_close(losses(dir / "two.jsonl"), losses(dir / "one.jsonl"), 1e-5);
  // The sums are taken in a fixed order: a second run repeats the first bit for bit.
  CliResult again = run_np(2, args + "--log " + d + "again.jsonl");
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_EQ(logged_losses(dir / "again.jsonl"), logged_losses(dir / "two.jsonl"));
  // ZeRO-1 shards SGD's momentum: the shard optimizer's steps are the replicated one's, bit for
  // bit, in 2 processes and in 1.
  CliResult zero = run_np(2, args + "--zero 1 --log " + d + "zero.jsonl");
  ASSERT_EQ(zero.status, 0) << zero.output;
  EXPECT_EQ(logged_losses(dir / "zero.jsonl"), logged_losses(dir / "two.jsonl"));
  ASSERT_EQ(run_cli(args + "--zero 1 --log " + d + "zero1.jsonl").status, 0);
  EXPECT_EQ(logged_losses(dir / "zero1.jsonl"), logged_losses(dir / "one.jsonl"));
}

TEST(DataParallel, TwoProcessesOfSftAndDpoEqualOne) {
  SKIP_WITHOUT_MPI();
  auto dir = temp_dir();
  const std::string d = dir.string() + "/", pairs = d + "pairs.jsonl";
  {
    std::ofstream text(dir / "text.txt");
    for (int i = 0; i < 6; ++i)
      text << "The committee met again on Tuesday to discuss the new bridge over the river. "
              "Everyone agreed that the old one was too narrow for the traffic of the town.\n%\n";
  }
  ASSERT_EQ(run_cli("make-pairs --out " + pairs + " --pairs 30 --data " + d + "text.txt").status,
            0);
  // sft: the loss is a mean over completion bytes, shared by bytes; dpo: a mean over pairs (and
  // every metric of the log line, averaged over the ranks by their shares).
  for (const std::string model : {"gpt-tiny --sft", "dpo-gpt-tiny"}) {
    const std::string tag = model == "dpo-gpt-tiny" ? "dpo" : "sft";
    const std::string args = "train --model " + model + " --data " + pairs +
                             " --steps 3 --batch 5 --eval-every 100 --log-every 1 --log " + d;
    CliResult one = run_cli(args + tag + "1.jsonl");
    ASSERT_EQ(one.status, 0) << one.output;
    CliResult two = run_np(2, args + tag + "2.jsonl");
    ASSERT_EQ(two.status, 0) << two.output;
    expect_close(losses(dir / (tag + "2.jsonl")), losses(dir / (tag + "1.jsonl")), 1e-5);
  }
}

TEST(DataParallel, CheckpointsResumeWithAnotherNumberOfProcesses) {
  SKIP_WITHOUT_MPI();
  auto dir = temp_dir();
  const std::string d = dir.string() + "/";
  // The mlp at a constant learning rate: a run of 3 steps is the first half of one of 6.
  auto mlp = [](int steps) {
    return "train --model mlp --batch 10 --seed 3 --log-every 1 --steps " + std::to_string(steps) +
           " ";
  };
  ASSERT_EQ(run_cli(mlp(6) + "--log " + d + "straight.jsonl").status, 0);
  const std::vector<double> straight = losses(dir / "straight.jsonl");
  // 2 -> 1 (with ZeRO-1: the file holds the gathered state) and 1 -> 2.
  CliResult a = run_np(2, mlp(3) + "--zero 1 --save " + d + "two.st --log " + d + "a1.jsonl");
  ASSERT_EQ(a.status, 0) << a.output;
  CliResult a2 = run_cli(mlp(6) + "--resume " + d + "two.st --log " + d + "a2.jsonl");
  ASSERT_EQ(a2.status, 0) << a2.output;
  CliResult b = run_cli(mlp(3) + "--save " + d + "one.st --log " + d + "b1.jsonl");
  ASSERT_EQ(b.status, 0) << b.output;
  CliResult b2 = run_np(2, mlp(6) + "--zero 1 --resume " + d + "one.st --log " + d + "b2.jsonl");
  ASSERT_EQ(b2.status, 0) << b2.output;
  for (const char* run : {"a", "b"}) {
    std::vector<double> pieces = losses(dir / (std::string(run) + "1.jsonl"));
    for (double l : losses(dir / (std::string(run) + "2.jsonl"))) pieces.push_back(l);
    expect_close(pieces, straight, 1e-6);
  }
}

TEST(DataParallel, ZeroOneHalvesEachRanksOptimizerMoments) {
  SKIP_WITHOUT_MPI();
  auto dir = temp_dir();
  const std::string d = dir.string() + "/";
  auto report = [&](const std::string& z) {
    CliResult r = run_np(2, gpt(2) + "--zero " + z + " --log " + d + z);
    EXPECT_EQ(r.status, 0) << r.output;
    std::ifstream f(dir / z);
    std::smatch m;
    static const std::regex line(R"("moment_bytes": (\d+), "peak_bytes": (\d+))");
    for (std::string l; std::getline(f, l);)
      if (std::regex_search(l, m, line)) return std::pair{std::stoll(m[1]), std::stoll(m[2])};
    ADD_FAILURE() << "no data-parallel line in the log";
    return std::pair{0LL, 0LL};
  };
  const auto [plain_moments, plain_peak] = report("0");
  const auto [zero_moments, zero_peak] = report("1");
  // gpt-tiny's 3,290,624 parameters: m and v in f32 are 26.3 MB; each rank keeps half of them.
  EXPECT_EQ(plain_moments, 2 * 4 * 3290624LL);
  EXPECT_LE(zero_moments, plain_moments / 2 + 2 * 4 * 64);  // a bucket's padding at most
  EXPECT_GE(zero_moments, plain_moments / 2);
  // The peak falls by at least the moments it no longer holds.
  EXPECT_LE(zero_peak, plain_peak - (plain_moments - zero_moments))
      << plain_peak << " " << zero_peak;
}

// Each rank plans its own step (its profile's extra step is its own: no collective); the
// planned steps' gradients are reduced as the plain ones are, so the losses are one process's.
TEST(DataParallel, TwoProcessesUnderAMemoryPlanEqualOne) {
  SKIP_WITHOUT_MPI();
  auto dir = temp_dir();
  const std::string d = dir.string() + "/";
  CliResult one = run_cli(gpt(4) + "--log " + d + "one.jsonl");
  ASSERT_EQ(one.status, 0) << one.output;
  for (const std::string z : {"0", "1"}) {
    CliResult two = run_np(2, gpt(4) + "--checkpoint-policy sqrt --bucket-mb 1 --zero " + z +
                                  " --log " + d + z + ".jsonl");
    ASSERT_EQ(two.status, 0) << two.output;
    EXPECT_NE(two.output.find("checkpoint plan (sqrt"), std::string::npos) << two.output;
    expect_close(losses(dir / (z + ".jsonl")), losses(dir / "one.jsonl"), 1e-6);
  }
}

// memstudy in each of two processes: every rank's predicted peak is its measured one, and
// ZeRO-1 lowers both by the half of AdamW's moments a rank no longer keeps.
TEST(DataParallel, MemstudyPredictsEachRanksPeakWithAndWithoutZeroOne) {
  SKIP_WITHOUT_MPI();
  auto dir = temp_dir();
  std::map<std::string, std::vector<long long>> predicted;
  for (const std::string z : {"0", "1"}) {
    const std::string out = (dir / z).string();
    CliResult r = run_np(2,
                         "memstudy --model gpt-tiny --policies none,sqrt --budgets 1 --steps 1 "
                         "--no-plot --zero " +
                             z + " --out " + out);
    ASSERT_EQ(r.status, 0) << r.output;
    // One line per row with both ranks' peaks, each "predicted = measured".
    static const std::regex ranks(R"(rank 0: (\d+) = (\d+)  rank 1: (\d+) = (\d+))");
    int rows = 0;
    for (std::sregex_iterator it(r.output.begin(), r.output.end(), ranks), end; it != end; ++it) {
      const std::smatch& m = *it;
      EXPECT_EQ(m[1], m[2]);
      EXPECT_EQ(m[3], m[4]);
      predicted[z].push_back(std::stoll(m[1]));
      ++rows;
    }
    EXPECT_EQ(rows, 2) << r.output;
    EXPECT_EQ(r.output.find(" != "), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("account differs"), std::string::npos) << r.output;
    EXPECT_TRUE(std::filesystem::exists(dir / z / "memstudy.csv"));
  }
  // gpt-tiny's 3,290,624 parameters in one bucket split evenly: each rank drops half of m and v.
  ASSERT_EQ(predicted["0"].size(), 2u);
  ASSERT_EQ(predicted["1"].size(), 2u);
  for (size_t i = 0; i < 2; ++i)
    EXPECT_EQ(predicted["0"][i] - predicted["1"][i], 2LL * 4 * 3290624 / 2) << i;
}

TEST(DataParallel, OneRankFailingStopsEveryRankWithItsMessage) {
  SKIP_WITHOUT_MPI();
  // Rank 1 is given a corpus that does not exist.
  const double t0 = now_ms();
  const CliResult r = run_each(gpt(), gpt() + "--data /nonexistent/corpus.txt");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("spool (rank 1 of 2)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("/nonexistent/corpus.txt"), std::string::npos) << r.output;
  EXPECT_LT(now_ms() - t0, 60e3) << r.output;
}

TEST(DataParallel, ADeadPeerBecomesAnErrorAfterTheTimeOut) {
  SKIP_WITHOUT_MPI();
  // Rank 0 stops after 2 steps; rank 1 waits in its third step's collective for 3 s.
  const double t0 = now_ms();
  const CliResult r = run_each(gpt(2), gpt(4) + "--dist-timeout 3");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("spool (rank 1 of 2): distributed:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("for its peers (the time-out, --dist-timeout)"), std::string::npos)
      << r.output;
  EXPECT_LT(now_ms() - t0, 60e3) << r.output;
}

TEST(DataParallel, RefusesWhatItCannotSplit) {
  SKIP_WITHOUT_MPI();
  CliResult r = run_np(2, "train --model gpt-tiny --steps 2 --batch 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--batch 1 does not split over 2 processes"), std::string::npos)
      << r.output;
  r = shell("SLURM_NTASKS=2 SLURM_PROCID=1 " + std::string(SPOOL_CLI) + " info");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("SLURM_NTASKS=2 but this process was not started by an MPI launcher"),
            std::string::npos)
      << r.output;
  r = run_np(2, "train --model ppo-gpt-tiny --steps 1 --data /nonexistent.jsonl");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("data parallel (2 processes) does not train ppo-gpt-tiny"),
            std::string::npos)
      << r.output;
  expect_refused("train --model mlp --steps 1 --zero 2", "--zero '2' is not a ZeRO stage");
}
