// spool: the command line. Bad usage and bad input print one line and exit with status 2.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "dist/dist.h"
#include "engine/error.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace spool::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"info", "version, compiled backends, GPU presence, BLAS, threads", cmd_info},
      {"train", "train a model and report its evaluation metrics", cmd_train},
      {"grad", "one forward + backward on given weights and batch, for comparing engines",
       cmd_grad},
      {"generate", "sample bytes from a GPT, or continue a pairs file's held-out prompts",
       cmd_generate},
      {"bench", "time training steps of gpt-tiny, dpo-gpt-tiny or a video model (one JSON line)",
       cmd_bench},
      {"memstudy", "the memory-versus-recompute study: every policy at every budget, measured",
       cmd_memstudy},
      {"make-pairs", "write the generated preference set (chosen text over misspelt text)",
       cmd_make_pairs},
      {"make-videos", "write the generated motion clips as JPEG frame folders with lists",
       cmd_make_videos},
      {"extract-flow", "optical flow (TV-L1 or Farneback) of a video list, as 8-bit images",
       cmd_extract_flow},
      {"fuse", "late fusion of the test scores of several runs (two-stream: RGB and flow)",
       cmd_fuse},
      {"rl", "reinforcement learning on a grid world: values, policy, curve and a plot", cmd_rl},
      {"sa", "stochastic approximation: mean estimation, Robbins-Monro, SGD against batch GD",
       cmd_sa},
      {"comm-bench",
       "all-reduce times over message sizes (under mpirun), the alpha-beta fit and predictions",
       cmd_comm_bench},
  };
  return table;
}

}  // namespace spool::cli

namespace {

const char* kModels =
    R"(models: mlp (the digits MLP: 64 -> 128 -> 64 -> 10), resnet18 (torchvision ResNet-18, 10
classes; on digits the 8x8 images are upscaled to 3x32x32), gpt-tiny (byte-level GPT-2, 3.29 M
parameters), gpt2-124m (GPT-2 small), dpo-gpt-tiny (gpt-tiny at context 128, the policy of
DPO), reward-gpt-tiny (its trunk + a scalar head), ppo-gpt-tiny (dpo-gpt-tiny + a value head,
trained by PPO against a reward model), tsn-r18, tsm-r18, trn-r18, tea-r18, stm-r18,
eco-r18 (frames [N, K, 3, H, W]), tdn-r18 (snippets [N, K, 15, H, W]), i3d-r18 and gcn-r18
(NL I3D + GCN; clips [N, 3, T, H, W]), and the same on ResNet-50: tsn-r50, tsm-r50, trn-r50,
tea-r50, stm-r50, eco-r50, tdn-r50, i3d-r50, gcn-r50.
Checkpoint policies: none, every-K, sqrt, greedy, dp, ilp, dtr (docs/memory.md).

spool <command> --help lists the command's flags.)";

// The top level's help, made by CLI11 from the command table.
std::string help() {
  CLI::App app("spool: a deep learning engine with a checkpoint-aware memory planner", "spool");
  app.set_help_flag("-h,--help", "print this help and exit");
  for (const auto& c : spool::cli::commands()) app.add_subcommand(c.name, c.summary);
  app.footer(kModels);
  return app.help();
}

// The errors' prefix: "spool", with the rank in a run of several processes.
std::string who() {
  if (!spool::dist::distributed()) return "spool";
  const spool::dist::ProcessGroup& g = spool::dist::world();
  return "spool (rank " + std::to_string(g.rank()) + " of " + std::to_string(g.world()) + ")";
}

}  // namespace

// Runs the command; returns its exit status, the error printed.
static int run_command(int argc, char** argv) {
  using namespace spool::cli;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::fputs(help().c_str(), argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  try {
    for (const Command& c : commands())
      if (cmd == c.name) return c.run(argc, argv);
    throw UsageError("unknown command '" + cmd + "' (see spool --help)");
  } catch (const HelpRequested& e) {
    std::fputs(e.what(), stdout);
    return 0;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: %s\n", who().c_str(), e.what());
    return 2;
  } catch (const spool::Error& e) {
    std::fprintf(stderr, "%s: %s\n", who().c_str(), e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    // An input that asks for more memory than the machine has (a huge --batch, a huge model):
    // the input is at fault, not spool.
    std::fprintf(stderr,
                 "%s: out of memory: the run asks for more memory than this machine can give "
                 "(a smaller --batch, model or input may fit)\n",
                 who().c_str());
    return 2;
  } catch (const std::length_error& e) {
    std::fprintf(stderr, "%s: an input asks for a size beyond what can be held (%s)\n",
                 who().c_str(), e.what());
    return 2;
  } catch (const std::filesystem::filesystem_error& e) {
    std::fprintf(stderr, "%s: %s\n", who().c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", who().c_str(), e.what());
    return 1;
  }
}

// One process exits with the command's status. In a run of several, a failing rank stops every
// rank (MPI_Abort) after printing its message, so none waits on it until the time-out.
int main(int argc, char** argv) {
  const int rc = run_command(argc, argv);
  if (rc != 0 && spool::dist::distributed()) spool::dist::abort_all(rc);
  spool::dist::finalize();
  return rc;
}
