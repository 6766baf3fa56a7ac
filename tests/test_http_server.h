// A scriptable HTTP/1.1 server on 127.0.0.1 for the HTTP client and retry
// tests: one thread accepts, one thread per connection serves requests in
// keep-alive order. Each request is recorded (method, target, headers, body,
// which connection it came on) and answered with the next queued
// ScriptedResponse, or by the handler when the queue is empty. Faults:
// close without answering, close or stall in the middle of the body.
//
// Not a general server: requests carry Content-Length bodies (what the
// client under test sends); "Expect: 100-continue" is honoured.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace ch::test {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct ReceivedRequest {
  std::string method;
  std::string target;  // "/path?query" as on the request line
  HeaderList headers;  // in received order, values trimmed
  std::string body;
  int connection = 0;  // 1 for the first accepted TCP connection, ...
  // The first header named NAME (case-insensitive), or "" when absent.
  std::string header(std::string_view name) const;
  int count(std::string_view name) const;  // how many headers are named NAME
};

struct ScriptedResponse {
  enum class Fault {
    kNone,
    kCloseWithoutResponse,  // read the request, then close
    kCloseMidBody,          // announce the whole body, send half, close
    kStallMidBody,          // announce the whole body, send half, wait for the client to go
  };
  int status = 200;
  HeaderList headers = {};  // Content-Length is added unless present
  std::string body = {};
  uint64_t generated_body_bytes = 0;   // > 0: this many generated_byte(i) instead of body
  std::chrono::milliseconds delay{0};  // before answering
  bool interim_continue = false;       // first a "100 Continue" carrying "X-Interim: 1"
  bool close_after = false;            // "Connection: close", then close
  Fault fault = Fault::kNone;
};

// Byte I of a generated body.
inline uint8_t generated_byte(uint64_t i) {
  uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull;
  return static_cast<uint8_t>((x ^ (x >> 29)) >> 32);
}

class HttpTestServer {
 public:
  HttpTestServer();  // listening on a free port when constructed
  ~HttpTestServer();
  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;

  uint16_t port() const { return port_; }
  // "http://127.0.0.1:PORT" + target
  std::string url(std::string_view target = "/") const;

  void enqueue(ScriptedResponse response);
  // Answers requests when the queue is empty (default: 200, empty body).
  void set_handler(std::function<ScriptedResponse(const ReceivedRequest&)> handler);

  std::vector<ReceivedRequest> requests() const;
  int connections() const;
  // Most requests ever received and not yet answered at one time.
  int max_concurrent() const;

 private:
  void accept_loop();
  void serve(int fd, int connection);
  ScriptedResponse next_response(const ReceivedRequest& request);
  // Sleeps up to D; false when the server is stopping.
  bool wait(std::chrono::milliseconds d);

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread acceptor_;

  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::deque<ScriptedResponse> queue_;
  std::function<ScriptedResponse(const ReceivedRequest&)> handler_;
  std::vector<ReceivedRequest> requests_;
  std::vector<std::thread> workers_;
  std::vector<int> connection_fds_;
  int in_progress_ = 0;
  int max_concurrent_ = 0;
};

}  // namespace ch::test
