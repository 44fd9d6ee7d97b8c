// The command line against hostile input: every output path is checked before the first step
// of every model family, special files are never replaced, crafted checkpoints and weights get
// errors naming the field, and none of it is an "internal error".
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/factory.h"
#include "engine/safetensors.h"
#include "models/gpt.h"
#include "tests/support/cli.h"

using namespace spool;
using namespace spool::test_support;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

// gpt-tiny's weights under GPT-2 names, initialised from a seed; `poison` sets one entry of
// wte to NaN.
void save_gpt_weights(const std::string& path, bool poison = false,
                      std::map<std::string, std::string> metadata = {}) {
  Generator gen(1);
  models::Gpt model(models::gpt_tiny(), &gen);
  auto state = model.state_dict();
  if (poison)
    for (auto& [n, t] : state)
      if (n == "wte.weight") t.set_at({3, 5}, NAN);
  save_safetensors(path, state, metadata);
}

// Twelve preference pairs (ten to train, two held out... one in ten).
std::string write_pairs(const fs::path& dir) {
  const std::string path = (dir / "pairs.jsonl").string();
  std::ofstream f(path);
  for (int i = 0; i < 12; ++i)
    f << R"({"prompt": "The cat sat on )" << i
      << R"(", "chosen": " the mat.", "rejected": " teh mat."})"
      << "\n";
  return path;
}

}  // namespace

TEST(CliHostile, EveryFamilyChecksItsOutputsBeforeTheFirstStep) {
  auto dir = temp_dir();
  const std::string pairs = write_pairs(dir), missing = (dir / "no/such/folder/out").string();
  const std::vector<std::string> runs = {
      "train --model mlp --steps 2",
      "train --model gpt-tiny --steps 2",
      "train --model tsn-r18 --steps 2 --size 32 --width 8 --test-clips 2",
      "train --model gpt-tiny --sft --steps 2 --data " + pairs,
      "train --model dpo-gpt-tiny --steps 2 --data " + pairs,
      "train --model reward-gpt-tiny --steps 2 --data " + pairs,
  };
  for (const auto& run : runs)
    for (const char* flag : {"--save", "--log"}) {
      const CliResult r = run_cli(run + " " + flag + " " + missing);
      EXPECT_EQ(r.status, 2) << run << " " << flag << "\n" << r.output;
      EXPECT_THAT(r.output, AllOf(HasSubstr(flag), HasSubstr("does not exist")))
          << run << " " << flag;
      // Refused before any data was read or any parameter made.
      EXPECT_THAT(r.output, Not(HasSubstr("parameters"))) << run;
      EXPECT_EQ(count_lines(r.output), 1) << run << "\n" << r.output;
    }
  expect_refused("train --model mlp --steps 2 --log " + dir.string(), "is a folder");
  expect_refused("train --model mlp --steps 2 --save " + (dir / "x").string() + " --log " +
                     (dir / "x").string(),
                 "name the same file");
  // The same file in two spellings: through ".." and through a link to its folder.
  fs::create_directory(dir / "o");
  fs::create_directory_symlink(dir / "o", dir / "link");
  expect_refused("train --model mlp --steps 2 --save " + (dir / "o" / ".." / "o" / "x").string() +
                     " --log " + (dir / "link" / "x").string(),
                 "name the same file");
}

TEST(CliHostile, ASymlinkOutputIsRefusedAndItsTargetKept) {
  auto dir = temp_dir();
  std::ofstream(dir / "target") << "keep me";
  fs::create_symlink(dir / "target", dir / "ckpt");
  expect_refused("train --model mlp --steps 2 --save " + (dir / "ckpt").string(), "symbolic link");
  EXPECT_TRUE(fs::is_symlink(dir / "ckpt"));
  std::ifstream in(dir / "target");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "keep me");
}

TEST(CliHostile, ACharacterDeviceOutputIsWrittenThroughAndStaysADevice) {
  auto dir = temp_dir();
  const std::string null = (dir / "null").string();
  // A private node of the null device, so that a broken build cannot replace /dev/null itself.
  if (mknod(null.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0)
    GTEST_SKIP() << "cannot make a device node here (needs root): " << std::strerror(errno);
  const CliResult r = run_cli("train --model mlp --steps 3 --save " + null + " --log " + null);
  EXPECT_EQ(r.status, 0) << r.output;
  struct stat st;
  ASSERT_EQ(lstat(null.c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"null"});  // no temporaries left beside it
}

TEST(CliHostile, ResumeRefusesCraftedMetadataNamingTheField) {
  auto dir = temp_dir();
  const std::string ckpt = (dir / "ckpt.safetensors").string();
  ASSERT_EQ(run_cli("train --model mlp --steps 2 --save " + ckpt).status, 0);
  const TensorFile good = load_safetensors(ckpt);
  auto crafted = [&](const std::string& key, const std::string& value) {
    auto meta = good.metadata;
    meta[key] = value;
    const std::string path = (dir / ("bad_" + key + ".safetensors")).string();
    save_safetensors(path, good.tensors, meta);
    return path;
  };
  const struct {
    std::string key, value, message;
  } cases[] = {{"step", "-5", "'step' is -5, outside"},
               {"step", "abc", "'step' is 'abc', not an integer"},
               {"rng_seed", "1e5", "'rng_seed'"},
               {"rng_offset", "", "'rng_offset'"},
               {"batch", "-32", "'batch'"}};
  for (const auto& c : cases) {
    const CliResult r = run_cli("train --model mlp --steps 4 --resume " + crafted(c.key, c.value));
    EXPECT_EQ(r.status, 2) << c.key << "=" << c.value << "\n" << r.output;
    EXPECT_THAT(r.output, AllOf(HasSubstr("--resume"), HasSubstr(c.message)));
    EXPECT_THAT(r.output, Not(HasSubstr("internal error")));
  }
  // Optimizer state names whose index is not a number.
  nn::NamedTensors renamed = good.tensors;
  for (auto& [n, t] : renamed)
    if (n.rfind("optimizer.0.", 0) == 0) n = "optimizer.zero." + n.substr(12);
  save_safetensors((dir / "bad_index.safetensors").string(), renamed, good.metadata);
  expect_refused("train --model mlp --steps 4 --resume " + (dir / "bad_index.safetensors").string(),
                 "does not start with a parameter index");
  // Without one slot of one parameter: refused at load, naming it (it failed at the first update
  // with "use of an undefined tensor").
  nn::NamedTensors partial;
  for (const auto& [n, t] : good.tensors)
    if (n != "optimizer.0.exp_avg_sq") partial.emplace_back(n, t);
  save_safetensors((dir / "partial.safetensors").string(), partial, good.metadata);
  expect_refused("train --model mlp --steps 4 --resume " + (dir / "partial.safetensors").string(),
                 "has no '0.exp_avg_sq'");
  // At its own last step there is nothing to train: refused, where it printed "final loss nan".
  expect_refused("train --model mlp --steps 2 --resume " + ckpt, "nothing is left to train");
}

TEST(CliHostile, ADivergedRunStopsWithAnErrorAndSavesNothing) {
  auto dir = temp_dir();
  const std::string ckpt = (dir / "ckpt.safetensors").string(), log = (dir / "log.jsonl").string();
  std::ofstream(ckpt) << "a good checkpoint";
  const CliResult r =
      run_cli("train --model mlp --steps 20 --lr 1e308 --save " + ckpt + " --log " + log);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_THAT(r.output, AllOf(HasSubstr("diverged"), HasSubstr("nothing was saved")));
  std::ifstream in(ckpt);
  std::string kept((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(kept, "a good checkpoint");
  std::ifstream l(log);
  std::string logged((std::istreambuf_iterator<char>(l)), {});
  EXPECT_THAT(logged, HasSubstr("\"diverged\": true"));
}

TEST(CliHostile, NonFiniteWeightsAreRefusedUnlessAllowed) {
  auto dir = temp_dir();
  const std::string w = (dir / "nan.safetensors").string();
  save_gpt_weights(w, true);
  expect_refused("generate --weights " + w + " --tokens 4",
                 "'wte.weight' [256, 256] holds 1 NaN or infinite value");
  const CliResult allowed = run_cli("generate --weights " + w + " --tokens 4 --allow-nonfinite");
  EXPECT_EQ(allowed.status, 0) << allowed.output;
  EXPECT_THAT(allowed.output, HasSubstr("warning"));
  expect_refused(
      "train --model gpt-tiny --sft --steps 1 --data " + write_pairs(dir) + " --init " + w,
      "--init");
}

TEST(CliHostile, WeightMetadataAndShapesCannotSizeAModelBeyondTheFile) {
  auto dir = temp_dir();
  const std::string heads = (dir / "heads.safetensors").string();
  save_gpt_weights(heads, false, {{"n_head", "four"}});
  expect_refused("generate --weights " + heads + " --tokens 4", "'n_head' is 'four'");
  save_gpt_weights(heads, false, {{"n_head", "3"}});
  expect_refused("generate --weights " + heads + " --tokens 4", "does not divide the width 256");
  // A 65 KB file naming 200 layers of width 1024 (2.5 G parameters) by one small tensor each.
  nn::NamedTensors few = {{"wte.weight", zeros({4, 1024})}, {"wpe.weight", zeros({4, 1024})}};
  for (int i = 0; i < 200; ++i)
    few.emplace_back("h." + std::to_string(i) + ".ln_1.weight", zeros({1}));
  const std::string small = (dir / "small.safetensors").string();
  save_safetensors(small, few);
  EXPECT_LT(fs::file_size(small), 100000u);
  expect_refused("generate --weights " + small + " --tokens 4", "weights are missing");
}

TEST(CliHostile, GradBuildsNoModelLargerThanItsWeightsFile) {
  auto dir = temp_dir();
  // Zero-byte tensors whose shapes declare a width of 256 and 1.5 M classes: a few hundred bytes
  // that sized a 3 GB ResNet before load_state_dict found them empty.
  const std::string batch = (dir / "b.safetensors").string();
  save_safetensors(batch, {{"images", zeros({1, 3, 8, 8})},
                           {"labels", zeros({1}, DType::i64)},
                           {"frames", zeros({1, 2, 3, 8, 8})}});
  const std::string r = (dir / "r.safetensors").string();
  save_safetensors(r,
                   {{"conv1.weight", zeros({256, 3, 0, 0})}, {"fc.weight", zeros({1500000, 0})}});
  EXPECT_LT(fs::file_size(r), 400u);
  const std::string out = (dir / "g.safetensors").string();
  expect_refused("grad --model resnet18 --weights " + r + " --batch " + batch + " --out " + out,
                 "describes a larger model");
  const std::string v = (dir / "v.safetensors").string();
  save_safetensors(v, {{"backbone.conv1.weight", zeros({256, 3, 0, 0})},
                       {"cls_head.fc_cls.weight", zeros({3000000, 0})}});
  expect_refused("grad --model tsn-r18 --weights " + v + " --batch " + batch + " --out " + out,
                 "describes a larger model");
  EXPECT_FALSE(fs::exists(out));
  // An empty batch has no loss: refused, where it used to write "loss -nan" and exit 0.
  save_safetensors(batch, {{"images", zeros({0, 3, 8, 8})}, {"labels", zeros({0}, DType::i64)}});
  const std::string w = (dir / "w.safetensors").string();
  save_safetensors(w, {{"conv1.weight", zeros({8, 3, 7, 7})}, {"fc.weight", zeros({10, 64})}});
  expect_refused("grad --model resnet18 --weights " + w + " --batch " + batch + " --out " + out,
                 "is empty");
}

TEST(CliHostile, FlagsThatNeedMoreMemoryThanTheMachineAreRefusedAtOnce) {
  // Each of these grew memory a vector or a clip at a time until the system killed the process.
  expect_refused("train --model gpt-tiny --steps 1 --batch 1000000000", "than this machine's");
  expect_refused("train --model tsn-r18 --size 32 --width 8 --steps 1 --batch 1000000000",
                 "one batch of 8-frame clips alone would need");
  expect_refused("train --model i3d-r50 --size 32 --width 8 --steps 1 --batch 1000000000",
                 "than this machine's");
  expect_refused("train --model tsn-r18 --size 32 --width 100000 --steps 1", "--width 100000");
  auto dir = temp_dir();
  expect_refused("make-pairs --out " + (dir / "p.jsonl").string() + " --pairs 1000000000000",
                 "--pairs 1000000000000");
  const std::string w = (dir / "w.safetensors").string();
  save_gpt_weights(w);
  expect_refused("generate --weights " + w + " --prompts " + write_pairs(dir) +
                     " --tokens 2 --samples 1000000000000",
                 "--samples 1000000000000");
}

TEST(CliHostile, AValidationSplitTooShortIsFoundBeforeTraining) {
  auto dir = temp_dir();
  // 40 documents; the held-out ones (every 20th) are a few bytes, shorter than one window.
  std::ofstream f(dir / "corpus.txt");
  for (int i = 1; i <= 40; ++i)
    f << (i % 20 == 0 ? std::string("tiny") : std::string(400, char('a' + i % 26))) << "\n%\n";
  f.close();
  const CliResult r =
      run_cli("train --model gpt-tiny --steps 3 --data " + (dir / "corpus.txt").string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("the validation split holds"));
  EXPECT_THAT(r.output, Not(HasSubstr("steps, train loss")));
}

TEST(CliHostile, GradAndGenerateCheckTheirOutBeforeWorking) {
  auto dir = temp_dir();
  const std::string w = (dir / "w.safetensors").string();
  save_gpt_weights(w);
  expect_refused(
      "grad --model gpt-tiny --weights " + w + " --batch " + w + " --out " + dir.string(),
      "grad: --out: " + dir.string() + " is a folder");
  expect_refused("generate --weights " + w + " --prompts " + w + " --out " +
                     (dir / "no/such/x.jsonl").string(),
                 "does not exist");
}

TEST(CliHostile, MemstudyRefusesAnOutThatIsALinkOrAFile) {
  auto dir = temp_dir();
  std::ofstream(dir / "file") << "x";
  fs::create_symlink(dir, dir / "link");
  expect_refused("memstudy --model mlp --out " + (dir / "file").string(), "is not a folder");
  expect_refused("memstudy --model mlp --out " + (dir / "link").string(), "symbolic link");
}

TEST(CliHostile, CountsThatDoNotFitAreRefusedNotClamped) {
  expect_refused("train --model mlp --steps 99999999999999999999", "not a positive integer");
  expect_refused("train --model mlp --steps ' 5'", "not a positive integer");
  expect_refused("train --model mlp --seed +5", "not a non-negative integer");
  expect_refused("train --model mlp --epochs 204963823041217537", "more steps than can be counted");
  expect_refused("make-videos --out ''", "--out is empty");
}
