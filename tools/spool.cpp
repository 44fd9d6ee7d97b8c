// spool: the command line. Bad usage and bad input print one line and exit with status 2.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <string>

#include "engine/error.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace {

const char* kHelp = R"(spool: a deep learning engine with a checkpoint-aware memory planner

usage: spool <command> [flags]

commands:
  info                       version, compiled backends, GPU presence, BLAS, threads
  train --model NAME         train a model and report its evaluation metrics
      [--data SPEC]          data set: 'digits' (default for mlp) or a path to a digits CSV(.gz)
      [--steps N | --epochs N]
      [--batch B] [--lr X] [--seed S]
      [--device cpu|cuda]
      [--log FILE.jsonl]     one JSON object per logged step and a final {"final": true, ...}
      [--log-every K]        log every K-th step (default 10)
      [--save CKPT]          write a training checkpoint (safetensors) at the end
      [--resume CKPT]        continue from a checkpoint up to --steps
      [--allow-nonfinite]    use loaded weights holding NaN or Inf (warned) instead of
                             refusing them (also for grad and generate)
      [--checkpoint-policy P] [--memory-budget B]
                             train under a memory plan (policies and budgets as for
                             memstudy; the first batch of each shape is profiled and planned)
      [--split-blocks]       resnet18 under a plan: each block staged as two stages (a graph)
      [--stem-groups K]      resnet18 under a plan: the stem runs whole and is replayed in its
                             backward in K channel groups, one at a time (fractions of the
                             budget stay of the standard step's activations)
      [--autocast bf16]      gpt-tiny: matmuls (projections, MLP, head) in bf16 with f32
                             accumulation, bf16 copies kept for backward, f32 parameters
  train --model gpt-tiny --sft --data PAIRS.jsonl [--init W]
                             supervised fine-tuning on prompt + chosen (loss on the completion)
  train --model dpo-gpt-tiny --data PAIRS.jsonl [--init W] [--ref-weights R]
      [--loss sigmoid|cdpo|ipo|hinge] [--beta B] [--label-smoothing E] [--precompute-ref]
                             DPO against a frozen reference (a copy of the starting policy
                             unless --ref-weights); --precompute-ref scores every pair with the
                             reference once and drops it from memory
  train --model reward-gpt-tiny --data PAIRS.jsonl [--init W]
                             a Bradley-Terry reward model on the same pairs
                             (preference runs log rewards/chosen, rewards/rejected,
                             rewards/accuracies, rewards/margins, logps/chosen, logps/rejected,
                             loss, and eval_* on every 10th pair, held out)
  train --model tsn-r18|tsm-r18|trn-r18|i3d-r18 (or -r50: on ResNet-50) [--data synthetic|LIST]
      [--steps N] [--batch B] [--lr X] [--size S] [--width W] [--test-clips N]
      [--time-limit SECONDS] [--init-2d W] [--test-list LIST] [--flip]
      [--modality rgb|rgbdiff] [--diff-frames L] [--crop]
                             (W: 2-D ResNet weights, inflated for i3d; LIST: 'path label' or
                             'path num_frames label' lines naming folders of JPEG frames or video
                             files; the test list defaults to val.txt beside it; rgbdiff: TSN's
                             RGB differences of L = 5 frames a segment, 2-D models; --crop:
                             frames read at S * 8/7, TSN's multi-scale crop in training, the
                             centre at test)
                             action recognition on the generated order-sensitive clips (SGD,
                             momentum 0.9, cosine); the final line has top1, per_class,
                             confusion, pair_acc and direction_acc (order within a pair)
  make-videos --out DIR [--clips N] [--test-clips M] [--size S] [--seed S]
                             the generated clips as JPEG frame folders with train.txt / val.txt
  make-pairs --out PAIRS.jsonl [--pairs N] [--data PATH] [--seed S] [--typo-rate R]
                             the generated preference set: corpus prompts, the real continuation
                             chosen over the same text with misspelt words
  grad --model NAME          one forward + backward on given weights, for comparing engines
      --weights W.safetensors --batch B.safetensors --out G.safetensors
      [--mode train|eval] [--no-dropout]
                             writes loss, output and grad.<param> for every parameter
      (dpo-gpt-tiny: --batch holds chosen, rejected, mask; [--ref-weights R] [--loss L]
      [--beta B] [--label-smoothing E]; also writes rewards/chosen, rewards/rejected)

  generate --weights W.safetensors [--prompt TEXT] [--tokens N] [--temperature T] [--top-k K]
      [--seed S]             samples bytes from a GPT (weights or a training checkpoint)
  generate --weights W --prompts PAIRS.jsonl [--samples N] [--out SAMPLES.jsonl]
      [--words-from PATH]    continues the held-out prompts of a pairs file and reports the
                             share of samples whose words are at least 3/4 corpus words
  bench --model dpo-gpt-tiny [--precompute-ref] [--steps N]
                             one DPO step (8 pairs x 128 tokens): median ms, pairs/s, peak bytes
  bench --model gpt-tiny [--steps N] [--warmup N] [--batching random|packed|padded]
      [--attention flash|naive] [--data PATH (packed, padded)] [--checkpoint-blocks]
      [--recompute-gelu] [--autocast bf16]
                             times train steps; one JSON line: median_step_ms, tokens_per_s
                             (targets that count), peak_bytes

  memstudy [--model LIST] [--batch B] [--policies LIST] [--budgets LIST] [--out DIR]
      [--steps N] [--time-limit S] [--recompute-gelu] [--device cpu|cuda] [--no-plot]
                             the memory-versus-recompute study: plans every policy at every
                             budget (bytes, or fractions such as 0.5 or 1/3 of the plain
                             step's activation memory), runs real steps (each paired with a
                             plain step, whose median is the row's "x plain" reference),
                             checks gradients; prints a table, writes DIR/memstudy.csv and
                             DIR/memstudy.png. --device cuda: every byte on the CUDA
                             caching allocator (profiles, plans and measured peaks)
                             --recompute-gelu: gpt-tiny and dpo-gpt-tiny recompute their MLP's
                             GELU in backward (fractions are of that model's plain step)
                             Policies: none, every-K, sqrt, greedy, dp, ilp, dtr
                             --model resnet18-graph: resnet18 with each block staged as two
                             stages (a graph; dp plans chains only and says so)
                             --model resnet18-stem-groups: that graph with the stem replayed
                             in 4 channel groups (train's --stem-groups 4), measured against
                             resnet18's plain step (budget fractions, x plain, gradients)
      [--split-blocks] [--stem-groups K]
                             the same restagings for resnet18 and the tsn, tsm, trn models
                             (with K > 1 each is measured against its standard chain)

models: mlp (the digits MLP: 64 -> 128 -> 64 -> 10), resnet18 (torchvision ResNet-18, 10
        classes; on digits the 8x8 images are upscaled to 3x32x32), gpt-tiny (byte-level
        GPT-2, 3.29 M parameters; --data FILE|FOLDER, default Debian's fortunes; --pack packs
        whole documents per row; --eval-every K steps of validation loss; --time-limit S
        stops after S seconds, the cosine following the time; --beta2 X for AdamW;
        --recompute-gelu recomputes the MLP's GELU in backward; --autocast bf16 multiplies
        in bf16 with f32 accumulation and f32 master weights), dpo-gpt-tiny
        (gpt-tiny at context 128, policy of DPO), reward-gpt-tiny (its trunk + a scalar head),
        tsn-r18, tsm-r18, trn-r18 (frames [N, K, 3, H, W]) and i3d-r18 (clips [N, 3, T, H, W]),
        and the same on ResNet-50: tsn-r50, tsm-r50, trn-r50, i3d-r50

spool --help               this text
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace spool::cli;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::fputs(kHelp, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  try {
    if (cmd == "info") return cmd_info(argc, argv);
    if (cmd == "train") return cmd_train(argc, argv);
    if (cmd == "grad") return cmd_grad(argc, argv);
    if (cmd == "generate") return cmd_generate(argc, argv);
    if (cmd == "bench") return cmd_bench(argc, argv);
    if (cmd == "memstudy") return cmd_memstudy(argc, argv);
    if (cmd == "make-pairs") return cmd_make_pairs(argc, argv);
    if (cmd == "make-videos") return cmd_make_videos(argc, argv);
    throw UsageError("unknown command '" + cmd + "' (see spool --help)");
  } catch (const UsageError& e) {
    std::fprintf(stderr, "spool: %s\n", e.what());
    return 2;
  } catch (const spool::Error& e) {
    std::fprintf(stderr, "spool: %s\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    // An input that asks for more memory than the machine has (a huge --batch, a huge model):
    // the input is at fault, not spool.
    std::fprintf(stderr,
                 "spool: out of memory: the run asks for more memory than this machine can give "
                 "(a smaller --batch, model or input may fit)\n");
    return 2;
  } catch (const std::length_error& e) {
    std::fprintf(stderr, "spool: an input asks for a size beyond what can be held (%s)\n",
                 e.what());
    return 2;
  } catch (const std::filesystem::filesystem_error& e) {
    std::fprintf(stderr, "spool: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spool: internal error: %s\n", e.what());
    return 1;
  }
}
