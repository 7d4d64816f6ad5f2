// nimbus: one binary; `nimbus serve` is the daemon, other subcommands are the CLI.
#include "cli/cli.h"

int main(int argc, char** argv) { return nimbus::cli::run(argc, argv); }
