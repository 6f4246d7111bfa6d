// Submits requests to the engine off the I/O thread. EngineClient::submit waits until the
// engine thread has accepted (or refused) the request, which can take up to one engine step;
// on the I/O thread that wait would stall every connection. One fixed thread does the
// waiting instead, in arrival order, so the thread count stays flat under any load.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace moon::server {

class Submitter {
 public:
  Submitter();
  ~Submitter();  // drops tasks not started yet
  Submitter(const Submitter&) = delete;
  Submitter& operator=(const Submitter&) = delete;

  void run(std::function<void()> task);

 private:
  void loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace moon::server
