#include "tests/test_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "base/result.h"
#include "clouds/http/ascii_case.h"

namespace ch::test {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Sends bytes [0, count) of the response body.
bool send_body(int fd, const ScriptedResponse& r, uint64_t count) {
  if (r.generated_body_bytes == 0) return send_all(fd, std::string_view(r.body).substr(0, count));
  std::string chunk;
  for (uint64_t pos = 0; pos < count;) {
    uint64_t n = std::min<uint64_t>(count - pos, 256 * 1024);
    chunk.resize(n);
    for (uint64_t i = 0; i < n; ++i) chunk[i] = static_cast<char>(generated_byte(pos + i));
    if (!send_all(fd, chunk)) return false;
    pos += n;
  }
  return true;
}

std::string reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 302:
      return "Found";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

bool parse_head(std::string_view head, ReceivedRequest* r) {
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return false;
  r->method = std::string(line.substr(0, sp1));
  r->target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  while (eol != std::string_view::npos) {
    size_t start = eol + 2;
    eol = head.find("\r\n", start);
    std::string_view h = head.substr(start, eol == std::string_view::npos ? eol : eol - start);
    size_t colon = h.find(':');
    if (colon == std::string_view::npos) return false;
    r->headers.emplace_back(std::string(trim(h.substr(0, colon))),
                            std::string(trim(h.substr(colon + 1))));
  }
  return true;
}

}  // namespace

std::string ReceivedRequest::header(std::string_view name) const {
  for (const auto& [n, v] : headers)
    if (ascii_iequals(n, name)) return v;
  return "";
}

int ReceivedRequest::count(std::string_view name) const {
  return static_cast<int>(std::count_if(headers.begin(), headers.end(),
                                        [&](const auto& h) { return ascii_iequals(h.first, name); }));
}

HttpTestServer::HttpTestServer() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CH_CHECK(listen_fd_ >= 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  CH_CHECK(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  CH_CHECK(::listen(listen_fd_, 128) == 0);
  socklen_t len = sizeof addr;
  CH_CHECK(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

HttpTestServer::~HttpTestServer() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  ::shutdown(listen_fd_, SHUT_RDWR);  // wakes the acceptor's poll
  acceptor_.join();
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (int fd : connection_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (std::thread& t : workers_) t.join();
  for (int fd : connection_fds_) ::close(fd);
  ::close(listen_fd_);
}

std::string HttpTestServer::url(std::string_view target) const {
  return "http://127.0.0.1:" + std::to_string(port_) + std::string(target);
}

void HttpTestServer::enqueue(ScriptedResponse response) {
  std::lock_guard<std::mutex> lk(mu_);
  queue_.push_back(std::move(response));
}

void HttpTestServer::set_handler(std::function<ScriptedResponse(const ReceivedRequest&)> handler) {
  std::lock_guard<std::mutex> lk(mu_);
  handler_ = std::move(handler);
}

std::vector<ReceivedRequest> HttpTestServer::requests() const {
  std::lock_guard<std::mutex> lk(mu_);
  return requests_;
}

int HttpTestServer::connections() const {
  std::lock_guard<std::mutex> lk(mu_);
  return static_cast<int>(connection_fds_.size());
}

int HttpTestServer::max_concurrent() const {
  std::lock_guard<std::mutex> lk(mu_);
  return max_concurrent_;
}

bool HttpTestServer::wait(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lk(mu_);
  stop_cv_.wait_for(lk, d, [&] { return stopping_; });
  return !stopping_;
}

ScriptedResponse HttpTestServer::next_response(const ReceivedRequest& request) {
  std::function<ScriptedResponse(const ReceivedRequest&)> handler;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!queue_.empty()) {
      ScriptedResponse r = std::move(queue_.front());
      queue_.pop_front();
      return r;
    }
    handler = handler_;
  }
  return handler ? handler(request) : ScriptedResponse{};
}

void HttpTestServer::accept_loop() {
  while (true) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stopping_) return;
    }
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    int one = 1;  // headers and body go in separate writes: no Nagle delay
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    connection_fds_.push_back(fd);
    int connection = static_cast<int>(connection_fds_.size());
    workers_.emplace_back([this, fd, connection] { serve(fd, connection); });
  }
}

void HttpTestServer::serve(int fd, int connection) {
  std::string buf;
  std::string chunk(256 * 1024, '\0');
  auto receive = [&](std::string* into, size_t at_most) {
    ssize_t n = ::recv(fd, chunk.data(), std::min(chunk.size(), at_most), 0);
    if (n <= 0) return false;
    into->append(chunk.data(), static_cast<size_t>(n));
    return true;
  };
  while (true) {
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (!receive(&buf, chunk.size())) goto done;
      // Not HTTP (a TLS ClientHello, say): hang up at once.
      if (buf[0] < 'A' || buf[0] > 'Z') goto done;
    }
    {
      ReceivedRequest r;
      r.connection = connection;
      if (!parse_head(std::string_view(buf).substr(0, end), &r)) goto done;
      buf.erase(0, end + 4);
      if (ascii_iequals(r.header("Expect"), "100-continue") &&
          !send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n"))
        goto done;
      uint64_t length = std::strtoull(r.header("Content-Length").c_str(), nullptr, 10);
      size_t take = static_cast<size_t>(std::min<uint64_t>(length, buf.size()));
      r.body.reserve(length);
      r.body.append(buf, 0, take);
      buf.erase(0, take);
      while (r.body.size() < length)
        if (!receive(&r.body, length - r.body.size())) goto done;

      ScriptedResponse resp = next_response(r);
      const bool head = r.method == "HEAD";
      {
        std::lock_guard<std::mutex> lk(mu_);
        requests_.push_back(std::move(r));
        max_concurrent_ = std::max(max_concurrent_, ++in_progress_);
      }
      bool running = wait(resp.delay);
      {
        // Counted down before answering: the client may start its next
        // request as soon as it has the answer.
        std::lock_guard<std::mutex> lk(mu_);
        --in_progress_;
      }
      if (!running) goto done;
      using Fault = ScriptedResponse::Fault;
      if (resp.fault == Fault::kCloseWithoutResponse) goto done;

      if (resp.interim_continue && !send_all(fd, "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"))
        goto done;
      uint64_t body_length =
          resp.generated_body_bytes > 0 ? resp.generated_body_bytes : resp.body.size();
      std::string out =
          "HTTP/1.1 " + std::to_string(resp.status) + " " + reason_phrase(resp.status) + "\r\n";
      bool has_length = false;
      for (const auto& [n, v] : resp.headers) {
        out += n + ": " + v + "\r\n";
        has_length = has_length || ascii_iequals(n, "Content-Length");
      }
      if (!has_length) out += "Content-Length: " + std::to_string(body_length) + "\r\n";
      if (resp.close_after) out += "Connection: close\r\n";
      out += "\r\n";
      if (!send_all(fd, out)) goto done;
      if (head) {
        if (resp.close_after) goto done;
        continue;
      }
      bool partial = resp.fault == Fault::kCloseMidBody || resp.fault == Fault::kStallMidBody;
      if (!send_body(fd, resp, partial ? body_length / 2 : body_length)) goto done;
      if (resp.fault == Fault::kStallMidBody) {
        // Until the client gives up (closes) or the server stops.
        while (true) {
          {
            std::lock_guard<std::mutex> lk(mu_);
            if (stopping_) goto done;
          }
          pollfd p{fd, POLLIN, 0};
          if (::poll(&p, 1, 20) > 0) {
            char c;
            if (::recv(fd, &c, 1, 0) <= 0) goto done;
          }
        }
      }
      if (partial || resp.close_after) goto done;
    }
  }
done:
  ::shutdown(fd, SHUT_RDWR);
}

}  // namespace ch::test
