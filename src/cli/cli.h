#pragma once
// The `nimbus` command: `serve` runs the daemon; every other subcommand talks
// to a running daemon over its API only.

namespace nimbus::cli {

// Parses argv and runs the subcommand; returns the process exit code.
int run(int argc, char** argv);

}  // namespace nimbus::cli
