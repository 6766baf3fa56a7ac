// A moto server (https://docs.getmoto.org/en/latest/docs/server_mode.html)
// for the AWS tests. CLOUD_HELPER_MOTO_URL, when set, names a shared one and
// nothing is started. Otherwise `moto_server -H 127.0.0.1 -p PORT` (from
// PATH: the pyenv python) is started in its own process group and killed,
// group and all, when this object goes. A port that already answers is
// taken to be another test's moto and used as is, never killed.
//
// Header-only: the test binary is the only user. Tests must use names
// (buckets, roles) of their own: a shared moto keeps everyone's state.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "base/result.h"

namespace ch::test {

class MotoServer {
 public:
  static constexpr uint16_t kDefaultPort = 47130;

  static Result<std::unique_ptr<MotoServer>> start(uint16_t port = kDefaultPort) {
    std::unique_ptr<MotoServer> server(new MotoServer);
    if (const char* url = std::getenv("CLOUD_HELPER_MOTO_URL"); url != nullptr && *url != '\0') {
      server->url_ = url;
      while (!server->url_.empty() && server->url_.back() == '/') server->url_.pop_back();
      return server;
    }
    server->url_ = "http://127.0.0.1:" + std::to_string(port);
    if (answers(port)) return server;  // someone else's moto on this port
    pid_t pid = ::fork();
    if (pid < 0) return Error{"fork for moto_server failed"};
    if (pid == 0) {
      ::setpgid(0, 0);
      int null = ::open("/dev/null", O_RDWR);
      if (null >= 0) {
        ::dup2(null, 1);
        ::dup2(null, 2);
      }
      const std::string p = std::to_string(port);
      ::execlp("moto_server", "moto_server", "-H", "127.0.0.1", "-p", p.c_str(), (char*)nullptr);
      ::_exit(127);
    }
    ::setpgid(pid, pid);
    server->pid_ = pid;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (answers(port)) return server;
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        server->pid_ = -1;
        // Lost a race for the port to another test's moto: use that one.
        if (answers(port)) return server;
        return Error{"moto_server exited (status " + std::to_string(status) +
                     "); is moto installed in the python on PATH?"};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Error{"moto_server did not listen on port " + std::to_string(port) + " within 30 s"};
  }

  ~MotoServer() {
    if (pid_ > 0) {
      // SIGKILL: moto keeps nothing worth a clean exit, which takes it ~2 s.
      ::kill(-pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  // "http://127.0.0.1:47130", no trailing slash.
  const std::string& url() const { return url_; }

 private:
  MotoServer() = default;

  static bool answers(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
  }

  pid_t pid_ = -1;
  std::string url_;
};

}  // namespace ch::test
