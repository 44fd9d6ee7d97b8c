// The spool subcommands; each returns the process exit status.
#pragma once
#include <vector>

namespace spool::cli {

int cmd_info(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_grad(int argc, char** argv);
int cmd_generate(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_memstudy(int argc, char** argv);
int cmd_make_pairs(int argc, char** argv);
int cmd_make_videos(int argc, char** argv);
int cmd_extract_flow(int argc, char** argv);
int cmd_fuse(int argc, char** argv);
int cmd_rl(int argc, char** argv);
int cmd_sa(int argc, char** argv);
int cmd_comm_bench(int argc, char** argv);

// Every command with its one-line summary, in the order `spool --help` lists them.
struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
};
const std::vector<Command>& commands();

}  // namespace spool::cli
