// What every end-to-end step test shares (tests/<cloud>_steps_*): the built
// binary run in a temporary directory of its own with a hermetic
// environment — nothing inherited but PATH, HOME pointing inside that
// directory — so no developer credentials or config files leak in.
//
// A cloud's fixture derives from its gtest base and from StepFixture, and
// adds the variables its emulator needs: its run(args) is
// run_with(env_text(), args).
#pragma once

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "metadata/image_metadata.h"
#include "tests/test_util.h"

namespace ch::test {

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string env_or(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

struct StepRun {
  int code = -1;
  std::string out, err;
};

class StepFixture {
 protected:
  StepFixture() { ::mkdir(dir_.file("home").c_str(), 0700); }

  // `env -i PATH=… HOME=DIR/home VARS`: VARS are shell words NAME=value.
  std::string hermetic_env(const std::string& vars) const {
    const char* path = std::getenv("PATH");
    return "env -i PATH=" + shell_quote(path ? path : "/usr/bin:/bin") + " HOME=" + shell_quote(dir_.file("home")) +
           " " + vars;
  }
  // `cloud_helper --no-progress ARGS` in the directory, under ENV.
  std::string command_with(const std::string& env, const std::string& args) const {
    return "cd " + shell_quote(dir_.path()) + " && exec " + env + " " + shell_quote(CLOUD_HELPER_BINARY) +
           " --no-progress " + args;
  }
  StepRun run_with(const std::string& env, const std::string& args) const {
    std::string out = dir_.file(".out"), err = dir_.file(".err");
    StepRun r;
    r.code = run_command(command_with(env, args) + " >" + shell_quote(out) + " 2>" + shell_quote(err)).exit_code;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }
  // Starts COMMAND, polls YAML every 5 ms until READY(meta) holds, then
  // SIGKILLs it. False when it ended first (exit code in *code).
  template <typename Ready>
  bool kill_when(const std::string& command, const std::string& yaml, Ready ready, int* code) const {
    std::string cmd = command + " >" + shell_quote(dir_.file(".kout")) + " 2>" + shell_quote(dir_.file(".kerr"));
    auto killed = run_and_kill_when(cmd, dir_.file(yaml), ready, code);
    if (!killed.ok()) ADD_FAILURE() << killed.message();
    return killed.ok() && *killed;
  }

  void write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_.file(name), std::ios::binary) << text;
  }
  std::string read(const std::string& name) const { return slurp(dir_.file(name)); }
  std::string file(const std::string& name) const { return dir_.file(name); }
  ImageMetadata meta(const std::string& yaml = "image.yaml") const {
    auto m = ImageMetadata::load(dir_.file(yaml));
    EXPECT_TRUE(m.ok()) << m.message();
    return m.ok() ? std::move(m).value() : *ImageMetadata::parse("{}", dir_.file(yaml));
  }

  TempDir dir_;
};

}  // namespace ch::test
