#include "server/submitter.h"

namespace moon::server {

Submitter::Submitter() : thread_([this] { loop(); }) {}

Submitter::~Submitter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Submitter::run(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void Submitter::loop() {
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
      if (stop_) break;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard lock(mu_);
    dropped.swap(tasks_);
  }
  // Destroyed outside the lock: a task may own engine streams, whose destructors abort.
}

}  // namespace moon::server
