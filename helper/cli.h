// Command line: parses argv, dispatches to an action, prints, and chooses
// the exit code (contract.md "Exit status"). The only place that prints.
#pragma once

namespace ch {

enum ExitCode { kExitOk = 0, kExitFailed = 1, kExitBadInput = 2, kExitPartial = 3 };

int run_cli(int argc, char** argv);

}  // namespace ch
