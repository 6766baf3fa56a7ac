// The process environment as a map: what the clouds' environment readers
// (AwsEnv, AzureEnv) start from, so tests can hand them any map instead.
#pragma once

#include <map>
#include <string>

namespace ch {

// Every NAME=VALUE of environ (entries without '=' or with an empty name skipped).
std::map<std::string, std::string> process_environment();

}  // namespace ch
