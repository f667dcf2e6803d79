#include "src/store/postgres.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <pqxx/pqxx>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace parley::store {

namespace {

bool is_uri(const std::string& url) {
  return url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
}

/// Adds `key=value` to a libpq URI or key/value string unless it is already set.
std::string with_param(std::string url, const std::string& key, const std::string& value) {
  if (url.find(key + "=") != std::string::npos) return url;
  if (is_uri(url)) {
    url += url.find('?') == std::string::npos ? '?' : '&';
    url += key + "=" + value;
  } else {
    url += (url.empty() ? "" : " ") + key + "='" + value + "'";
  }
  return url;
}

struct job_entry {
  postgres_job job;
  postgres_callback done;
  bool autocommit = false;
};

thread_local const void* current_worker_owner = nullptr;

}  // namespace

std::string redact_postgres_url(const std::string& url) {
  std::string out = url;
  if (is_uri(out)) {
    auto start = out.find("://") + 3;
    auto at = out.find('@', start);
    auto slash = out.find('/', start);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      auto colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
    auto pw = out.find("password=");
    if (pw != std::string::npos) {
      auto end = out.find('&', pw);
      out.replace(pw + 9, (end == std::string::npos ? out.size() : end) - pw - 9, "***");
    }
    return out;
  }
  auto pw = out.find("password=");
  if (pw != std::string::npos) {
    auto end = out.find(' ', pw);
    out.replace(pw + 9, (end == std::string::npos ? out.size() : end) - pw - 9, "***");
  }
  return out;
}

struct postgres_client::impl {
  postgres_options opts;
  std::string conn_string;
  std::string shown_url;

  std::mutex mtx;
  std::condition_variable cv;
  std::deque<job_entry> queue;  // guarded by mtx
  bool stopping = false;        // guarded by mtx
  std::vector<std::thread> workers;
  std::atomic<bool> is_connected{false};

  void set_connected(bool up) {
    is_connected.store(up);
    if (opts.probe == nullptr) return;
    if (up)
      opts.probe->connected();
    else
      opts.probe->disconnected();
  }

  error unavailable(const std::string& why) const {
    return make_error("postgres_unavailable",
                      "Postgres at " + shown_url + " is unavailable: " + why);
  }

  void submit(job_entry e) {
    {
      std::lock_guard<std::mutex> lock(mtx);
      queue.push_back(std::move(e));
    }
    cv.notify_one();
  }

  /// Opens `conn` if it is missing or dead (then sets `opened`); returns the failure otherwise.
  std::optional<error> ensure_connection(std::unique_ptr<pqxx::connection>& conn, bool& opened) {
    if (conn && conn->is_open() && !closed_while_idle(*conn)) return std::nullopt;
    conn.reset();
    opened = true;
    try {
      conn = std::make_unique<pqxx::connection>(conn_string);
      set_connected(true);
      return std::nullopt;
    } catch (const std::exception& e) {
      set_connected(false);
      return unavailable(trim(e.what()));
    }
  }

  /// An idle pool connection has nothing to say (pool connections never
  /// LISTEN): a readable socket means the server closed it (restart,
  /// pg_terminate_backend, idle timeout). Replacing it before use also avoids
  /// libpqxx 6.4 leaking a PGresult when BEGIN fails on a dead connection.
  static bool closed_while_idle(pqxx::connection& conn) {
    pollfd p{conn.sock(), POLLIN, 0};
    return p.fd < 0 || ::poll(&p, 1, 0) != 0;
  }

  static std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }

  /// Runs one job on `conn`; throws what the job or pqxx throws.
  static void execute(pqxx::connection& conn, job_entry& e) {
    if (e.autocommit) {
      pqxx::nontransaction tx(conn);
      e.job(tx);
    } else {
      pqxx::work tx(conn);
      e.job(tx);
      tx.commit();
    }
  }

  result<void> run_one(std::unique_ptr<pqxx::connection>& conn, job_entry& e) {
    for (int attempt = 0;; ++attempt) {
      bool fresh = false;
      if (auto err = ensure_connection(conn, fresh)) return *err;
      try {
        execute(*conn, e);
        set_connected(true);
        return {};
      } catch (const pqxx::in_doubt_error& ex) {
        conn.reset();
        set_connected(false);
        return unavailable("connection lost during COMMIT, outcome unknown: " + trim(ex.what()));
      } catch (const pqxx::broken_connection& ex) {
        conn.reset();
        set_connected(false);
        // A pooled connection may have died while idle (server restart):
        // retry once on a fresh one. A fresh one failing means Postgres is down.
        if (fresh || attempt > 0) return unavailable(trim(ex.what()));
      } catch (const pqxx::sql_error& ex) {
        std::string msg = trim(ex.what());
        if (!ex.sqlstate().empty()) msg += " (SQLSTATE " + ex.sqlstate() + ")";
        return make_error("postgres_error", msg);
      } catch (const pqxx::failure& ex) {
        // Other libpq failures leave the connection in an unknown state.
        conn.reset();
        return make_error("postgres_error", trim(ex.what()));
      } catch (const std::exception& ex) {
        return make_error("postgres_job_failed", trim(ex.what()));
      }
    }
  }

  void worker_loop() {
    current_worker_owner = this;
    std::unique_ptr<pqxx::connection> conn;
    for (;;) {
      job_entry e;
      {
        std::unique_lock<std::mutex> lock(mtx);
        cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) return;
        e = std::move(queue.front());
        queue.pop_front();
      }
      auto r = run_one(conn, e);
      e.done(std::move(r));
    }
  }
};

result<std::unique_ptr<postgres_client>> postgres_client::create(postgres_options options) {
  if (options.url.empty()) return make_error("bad_postgres_url", "the Postgres URL is empty");
  if (options.workers == 0)
    return make_error("bad_postgres_url", "a Postgres client needs at least one worker");
  auto p = std::make_unique<impl>();
  p->shown_url = redact_postgres_url(options.url);
  std::string cs =
      with_param(options.url, "connect_timeout", std::to_string(options.connect_timeout.count()));
  if (!options.application_name.empty())
    cs = with_param(cs, "application_name", options.application_name);
  p->conn_string = std::move(cs);
  p->opts = std::move(options);
  // Check the syntax now, so a typo fails at start-up rather than as "unavailable".
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(p->conn_string.c_str(), &parse_error);
  if (parsed == nullptr) {
    std::string why = parse_error != nullptr ? impl::trim(parse_error) : "out of memory";
    PQfreemem(parse_error);
    return make_error("bad_postgres_url", "Postgres URL '" + p->shown_url + "': " + why);
  }
  PQconninfoFree(parsed);
  for (std::size_t i = 0; i < p->opts.workers; ++i)
    p->workers.emplace_back([raw = p.get()] { raw->worker_loop(); });
  return std::unique_ptr<postgres_client>(new postgres_client(std::move(p)));
}

postgres_client::postgres_client(std::unique_ptr<impl> impl) : impl_(std::move(impl)) {}

postgres_client::~postgres_client() {
  // Joining a worker from itself would deadlock: a caller bug.
  if (current_worker_owner == impl_.get()) std::abort();
  std::deque<job_entry> rest;
  {
    std::lock_guard<std::mutex> lock(impl_->mtx);
    impl_->stopping = true;
    rest.swap(impl_->queue);
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->workers) t.join();
  for (auto& e : rest)
    e.done(make_error("postgres_unavailable",
                      "Postgres client for " + impl_->shown_url + " is shutting down"));
}

void postgres_client::run(postgres_job job, postgres_callback done) {
  impl_->submit({std::move(job), std::move(done), false});
}

void postgres_client::run_autocommit(postgres_job job, postgres_callback done) {
  impl_->submit({std::move(job), std::move(done), true});
}

void postgres_client::ping(postgres_callback done) {
  run_autocommit([](pqxx::transaction_base& tx) { tx.exec("SELECT 1"); }, std::move(done));
}

namespace {

template <class Submit>
result<void> wait_for(const void* owner, const std::string& url, Submit submit) {
  if (current_worker_owner == owner)
    return make_error("postgres_misuse",
                      "a blocking Postgres call was made from a worker of the client for " + url);
  std::promise<result<void>> p;
  auto f = p.get_future();
  submit([&p](result<void> r) { p.set_value(std::move(r)); });
  return f.get();
}

}  // namespace

result<void> postgres_client::run_sync(postgres_job job) {
  return wait_for(impl_.get(), impl_->shown_url,
                  [&](postgres_callback cb) { run(std::move(job), std::move(cb)); });
}

result<void> postgres_client::run_autocommit_sync(postgres_job job) {
  return wait_for(impl_.get(), impl_->shown_url,
                  [&](postgres_callback cb) { run_autocommit(std::move(job), std::move(cb)); });
}

postgres_probe::postgres_probe(prometheus::Registry& registry)
    : connected_(&prometheus::BuildGauge()
                      .Name("parley_postgres_connected")
                      .Help("1 while the last Postgres connection attempt or job succeeded.")
                      .Register(registry)
                      .Add({})) {}

void postgres_probe::connected() { connected_->Set(1); }

void postgres_probe::disconnected() { connected_->Set(0); }

bool postgres_client::connected() const { return impl_->is_connected.load(); }

const std::string& postgres_client::display_url() const { return impl_->shown_url; }

}  // namespace parley::store
