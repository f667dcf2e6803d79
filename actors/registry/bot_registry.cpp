#include "actors/registry/bot_registry.hpp"

#include <future>

#include "src/bot/text.hpp"
#include "src/log/log.hpp"

namespace parley::actors {
namespace {

std::string bot_key(const std::string& tenant, const std::string& bot) {
  std::string k = tenant;
  k += '\0';
  k += bot;
  return k;
}

std::string version_key(const std::string& tenant, const std::string& bot, uint32_t version) {
  std::string k = bot_key(tenant, bot);
  k += '\0';
  k += std::to_string(version);
  return k;
}

}  // namespace

bool takes_canary(std::string_view session_id, int percent) {
  return percent > 0 && static_cast<int>(bot::detail::fnv1a64(session_id) % 100) < percent;
}

bot_registry::bot_registry(program_source source, std::chrono::milliseconds poll_interval)
    : source_(std::move(source)), poll_interval_(poll_interval) {}

bot_registry::~bot_registry() { stop(); }

void bot_registry::start() {
  if (!poller_.joinable()) poller_ = std::thread([this] { poll_loop(); });
}

void bot_registry::stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
}

void bot_registry::poll_now() {
  {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    poll_now_ = true;
  }
  stop_cv_.notify_all();
}

void bot_registry::active(const std::string& tenant, const std::string& bot, callback done) {
  uint32_t v = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = active_.find(bot_key(tenant, bot));
    if (it != active_.end()) v = it->second.active;
  }
  if (v != 0) return version(tenant, bot, v, std::move(done));
  // Not in the change log yet (an activation newer than the last poll, or before the
  // first poll): ask Postgres, the truth, directly.
  load_version(tenant, bot, 0, std::move(done));
}

void bot_registry::for_new_session(const std::string& tenant, const std::string& bot,
                                   std::string_view session_id, callback done) {
  uint32_t canary = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = active_.find(bot_key(tenant, bot));
    if (it != active_.end() && it->second.canary != 0 &&
        takes_canary(session_id, it->second.percent))
      canary = it->second.canary;
  }
  if (canary != 0) return version(tenant, bot, canary, std::move(done));
  active(tenant, bot, std::move(done));
}

std::vector<bot_registry::canary_split> bot_registry::canaries() const {
  std::vector<canary_split> out;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [key, p] : active_) {
    if (p.canary == 0) continue;
    auto sep = key.find('\0');
    out.push_back({key.substr(0, sep), key.substr(sep + 1), p.canary, p.percent});
  }
  return out;
}

void bot_registry::version(const std::string& tenant, const std::string& bot, uint32_t v,
                           callback done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = programs_.find(version_key(tenant, bot, v));
    if (it != programs_.end()) {
      auto prog = it->second;
      done(loaded_program{v, std::move(prog)});
      return;
    }
  }
  load_version(tenant, bot, v, std::move(done));
}

void bot_registry::load_version(const std::string& tenant, const std::string& bot, uint32_t v,
                                callback done) {
  source_.load(
      tenant, bot, v,
      [this, tenant, bot, done = std::move(done)](result<std::pair<uint32_t, std::string>> r) {
        if (!r) return done(r.err());
        auto [version, bytes] = std::move(*r);
        bot::v1::Program proto;
        if (!proto.ParseFromString(bytes))
          return done(make_error("bad_program", "stored program of " + bot + " v" +
                                                    std::to_string(version) + " does not parse"));
        auto prog = bot::load(std::move(proto));
        if (!prog) return done(prog.err());
        std::shared_ptr<const bot::program> shared = *prog;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          // Two loads may race: keep the first so every actor shares one copy.
          auto [it, inserted] = programs_.emplace(version_key(tenant, bot, version), shared);
          shared = it->second;
        }
        done(loaded_program{version, std::move(shared)});
      });
}

void bot_registry::poll_loop() {
  while (!stop_.load()) {
    {
      // Cleared before the query: a poll_now() while it runs asks for one more (this one
      // may have read the log before that change).
      std::lock_guard<std::mutex> lock(stop_mutex_);
      poll_now_ = false;
    }
    auto p = std::make_shared<std::promise<result<std::vector<store::active_change>>>>();
    auto f = p->get_future();
    source_.changes(applied_seq_.load(), [p](result<std::vector<store::active_change>> r) {
      p->set_value(std::move(r));
    });
    if (f.wait_for(std::chrono::seconds(10)) == std::future_status::ready) {
      auto r = f.get();
      if (r) {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& c : *r) {
          auto& slot = active_[bot_key(c.tenant, c.bot)];
          const auto version = static_cast<uint32_t>(c.version);
          if (slot.active != version && log_loaded_.load())
            log::info(
                "bot_version_activated",
                {{"tenant", c.tenant}, {"bot", c.bot}, {"version", std::to_string(c.version)}});
          const auto canary = static_cast<uint32_t>(c.canary_version);
          if ((slot.canary != canary || slot.percent != c.canary_percent) && log_loaded_.load())
            log::info("bot_canary_changed", {{"tenant", c.tenant},
                                             {"bot", c.bot},
                                             {"canary_version", std::to_string(canary)},
                                             {"percent", std::to_string(c.canary_percent)}});
          slot.active = version;
          slot.canary = canary;
          slot.percent = c.canary_percent;
          if (c.change_seq > applied_seq_.load()) applied_seq_ = c.change_seq;
        }
        log_loaded_ = true;
      } else {
        log::warn("bot_registry_poll_failed", {{"error", r.err().message}});
      }
    }
    std::unique_lock<std::mutex> lock(stop_mutex_);
    stop_cv_.wait_for(lock, poll_interval_, [this] { return stop_.load() || poll_now_; });
  }
}

}  // namespace parley::actors
