// The spool subcommands; each returns the process exit status.
#pragma once

namespace spool::cli {

int cmd_info(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_grad(int argc, char** argv);
int cmd_generate(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_memstudy(int argc, char** argv);
int cmd_make_pairs(int argc, char** argv);
int cmd_make_videos(int argc, char** argv);

}  // namespace spool::cli
