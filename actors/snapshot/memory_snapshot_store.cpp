#include "actors/snapshot/memory_snapshot_store.hpp"

namespace parley::actors {

std::string memory_snapshot_store::key_of(std::string_view tenant, std::string_view session) {
  std::string k(tenant);
  k += '\0';
  k += session;
  return k;
}

void memory_snapshot_store::finish(held h) {
  if (h.on_commit) {
    if (h.fail) return h.on_commit->committed(*h.fail);
    {
      std::lock_guard<std::mutex> lock(m_);
      data_[h.key] = std::move(*h.bytes);
    }
    return h.on_commit->committed({});
  }
  if (h.fail) return h.on_load->loaded(*h.fail);
  snapshot_read r;
  {
    std::lock_guard<std::mutex> lock(m_);
    auto it = data_.find(h.key);
    if (it != data_.end()) {
      r.found = true;
      r.bytes = it->second;
    }
  }
  h.on_load->loaded(std::move(r));
}

void memory_snapshot_store::load(std::string_view tenant, std::string_view session,
                                 std::shared_ptr<load_handler> done) {
  held h;
  h.key = key_of(tenant, session);
  h.on_load = std::move(done);
  {
    std::lock_guard<std::mutex> lock(m_);
    ++loads_;
    h.fail = std::exchange(fail_load_, std::nullopt);
    if (hold_loads_) return loads_held_.push_back(std::move(h));
  }
  finish(std::move(h));
}

void memory_snapshot_store::commit(std::string_view tenant, std::string_view session,
                                   std::string_view bytes, std::chrono::seconds /*ttl*/,
                                   uint64_t expected_epoch, std::shared_ptr<commit_handler> done) {
  held h;
  h.key = key_of(tenant, session);
  h.bytes = std::string(bytes);
  h.on_commit = std::move(done);
  {
    std::lock_guard<std::mutex> lock(m_);
    ++commits_;
    last_epoch_ = expected_epoch;
    h.fail = std::exchange(fail_commit_, std::nullopt);
    if (hold_commits_) return commits_held_.push_back(std::move(h));
  }
  finish(std::move(h));
}

void memory_snapshot_store::fail_next_commit(std::string message) {
  std::lock_guard<std::mutex> lock(m_);
  fail_commit_ = make_error("redis_unavailable", std::move(message));
}

void memory_snapshot_store::fail_next_load(std::string message) {
  std::lock_guard<std::mutex> lock(m_);
  fail_load_ = make_error("redis_unavailable", std::move(message));
}

void memory_snapshot_store::hold_commits(bool on) {
  std::lock_guard<std::mutex> lock(m_);
  hold_commits_ = on;
}

void memory_snapshot_store::hold_loads(bool on) {
  std::lock_guard<std::mutex> lock(m_);
  hold_loads_ = on;
}

bool memory_snapshot_store::release(std::deque<held>& from) {
  held h;
  {
    std::lock_guard<std::mutex> lock(m_);
    if (from.empty()) return false;
    h = std::move(from.front());
    from.pop_front();
  }
  finish(std::move(h));
  return true;
}

bool memory_snapshot_store::release_commit() { return release(commits_held_); }

bool memory_snapshot_store::release_load() { return release(loads_held_); }

std::size_t memory_snapshot_store::held_commits() const {
  std::lock_guard<std::mutex> lock(m_);
  return commits_held_.size();
}

std::size_t memory_snapshot_store::held_loads() const {
  std::lock_guard<std::mutex> lock(m_);
  return loads_held_.size();
}

std::optional<std::string> memory_snapshot_store::get(std::string_view tenant,
                                                      std::string_view session) const {
  std::lock_guard<std::mutex> lock(m_);
  auto it = data_.find(key_of(tenant, session));
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

void memory_snapshot_store::put(std::string_view tenant, std::string_view session,
                                std::string bytes) {
  std::lock_guard<std::mutex> lock(m_);
  data_[key_of(tenant, session)] = std::move(bytes);
}

int memory_snapshot_store::loads() const {
  std::lock_guard<std::mutex> lock(m_);
  return loads_;
}

int memory_snapshot_store::commits() const {
  std::lock_guard<std::mutex> lock(m_);
  return commits_;
}

uint64_t memory_snapshot_store::last_epoch() const {
  std::lock_guard<std::mutex> lock(m_);
  return last_epoch_;
}

}  // namespace parley::actors
