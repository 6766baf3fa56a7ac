// Parallel map with in-order delivery: produce(i) runs on worker threads for
// i in [0, n), consume(i, result) runs on the calling thread in index order.
// At most `window` results exist at once, so memory is bounded by
// window x (size of one result) whatever n is. Used wherever independent
// units (grains, deflate chunks, hash blocks) must come out in file order.
//
// The first error (from either side) stops the pipeline and is returned;
// items already running finish but their results are dropped.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/result.h"

namespace ch {

unsigned default_threads();

template <class R>
Status run_ordered(size_t n, unsigned threads, size_t window,
                   const std::function<Result<R>(size_t)>& produce,
                   const std::function<Status(size_t, R&)>& consume) {
  if (n == 0) return {};
  threads = std::max(1u, threads);
  window = std::max<size_t>(window, threads);
  if (threads == 1) {
    for (size_t i = 0; i < n; ++i) {
      Result<R> r = produce(i);
      if (!r.ok()) return r.error();
      CH_TRY(consume(i, r.value()));
    }
    return {};
  }
  std::mutex mu;
  std::condition_variable cv_worker, cv_consumer;
  std::vector<std::optional<Result<R>>> slots(window);
  size_t next = 0;       // next index to claim
  size_t consumed = 0;   // next index to consume
  bool stop = false;

  auto worker = [&] {
    for (;;) {
      size_t i;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv_worker.wait(lk, [&] { return stop || next >= n || next < consumed + window; });
        if (stop || next >= n) return;
        i = next++;
      }
      Result<R> r = produce(i);
      {
        std::lock_guard<std::mutex> lk(mu);
        slots[i % window].emplace(std::move(r));
      }
      cv_consumer.notify_one();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (unsigned t = 0; t < threads; ++t) pool.emplace_back(worker);

  Status status;
  while (consumed < n) {
    std::optional<Result<R>> item;
    {
      std::unique_lock<std::mutex> lk(mu);
      cv_consumer.wait(lk, [&] { return slots[consumed % window].has_value(); });
      item.swap(slots[consumed % window]);
    }
    if (!item->ok()) {
      status = item->error();
    } else {
      status = consume(consumed, item->value());
    }
    if (!status.ok()) break;
    {
      std::lock_guard<std::mutex> lk(mu);
      ++consumed;
    }
    cv_worker.notify_all();
  }
  {
    std::lock_guard<std::mutex> lk(mu);
    stop = true;
  }
  cv_worker.notify_all();
  for (auto& t : pool) t.join();
  return status;
}

}  // namespace ch
