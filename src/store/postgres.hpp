#pragma once
/// parley::store Postgres client on libpqxx 6.4: a small pool of dedicated
/// worker threads, each with its own pqxx::connection.
///
/// Threads: callers on any thread (CAF scheduler, HTTP threads) only enqueue a
/// job and return at once. A worker thread runs the job inside a transaction,
/// commits it, then runs the completion callback on that same worker thread.
/// Callbacks must be short and must not block or throw (post the result to an
/// actor, a strand or a promise). Jobs of one client run in parallel across
/// workers; two jobs submitted one after the other may complete in any order.
///
/// Failures: a connection that cannot be opened, or breaks, fails the job with
/// `postgres_unavailable`; the next job opens a new connection, so the client
/// recovers by itself after a server restart. A job whose connection broke
/// before COMMIT is run once more on a fresh connection (as pqxx::perform
/// does), so a job must keep its effects inside the transaction or reset its
/// captured output at its start. A connection lost during COMMIT fails with
/// `postgres_unavailable` ("outcome unknown") and is not retried. An SQL error
/// fails with `postgres_error` and the server's message and SQLSTATE; any other
/// exception a job throws fails with `postgres_job_failed`. No pqxx header is
/// included here: job bodies include <pqxx/pqxx> in their own .cpp.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "src/common/result.hpp"

namespace pqxx {
class transaction_base;
}

namespace prometheus {
class Registry;
class Gauge;
}  // namespace prometheus

namespace parley::store {

/// The Postgres client's Prometheus families, registered in the node's registry:
/// parley_postgres_connected (1 while the last connection attempt or job succeeded).
/// The client reports through the verbs; thread-safe.
class postgres_probe {
 public:
  explicit postgres_probe(prometheus::Registry& registry);
  /// A connection opened or a job ran.
  void connected();
  /// A connection attempt failed or a connection broke.
  void disconnected();

 private:
  prometheus::Gauge* connected_;
};

struct postgres_options {
  /// libpq connection string: "postgresql://user@host/db?..." or "host=... dbname=...".
  std::string url;
  /// Worker threads, each with one connection.
  std::size_t workers = 2;
  /// Passed to libpq as connect_timeout unless the URL sets one (libpq's
  /// smallest effective value is 2 s).
  std::chrono::seconds connect_timeout{2};
  /// Sent as application_name unless the URL sets one (shows in pg_stat_activity).
  std::string application_name = "parleyd";
  /// Where the client reports its state; may be null. Must outlive the client.
  postgres_probe* probe = nullptr;
};

/// A job: runs queries on the transaction it is given. It must not commit or
/// abort it; it may throw to abort (the error reaches `done`).
using postgres_job = std::function<void(pqxx::transaction_base&)>;
using postgres_callback = std::function<void(result<void>)>;

/// The URL with any password replaced by "***", for logs and error messages.
std::string redact_postgres_url(const std::string& url);

class postgres_client {
 public:
  /// Starts the workers. Connections open lazily on the first job, so create
  /// succeeds while Postgres is down (see ping()); fails only on bad options
  /// (code `bad_postgres_url`).
  static result<std::unique_ptr<postgres_client>> create(postgres_options options);

  /// Jobs still queued fail with `postgres_unavailable` ("shutting down") on
  /// the destructor's thread; running jobs finish first. Calling it from a
  /// job or callback of this client aborts (it would deadlock).
  ~postgres_client();

  postgres_client(const postgres_client&) = delete;
  postgres_client& operator=(const postgres_client&) = delete;

  /// Runs `job` in a read-committed read-write transaction (pqxx::work) and
  /// commits it; `done` runs once on the worker thread after COMMIT (or the failure).
  void run(postgres_job job, postgres_callback done);

  /// Like run() without a transaction block (pqxx::nontransaction): each
  /// statement commits by itself. For CREATE DATABASE, session advisory locks
  /// and other statements that cannot run inside a transaction.
  void run_autocommit(postgres_job job, postgres_callback done);

  /// run() for a job that returns a value: `done` gets it after COMMIT.
  template <class F, class T = std::invoke_result_t<F&, pqxx::transaction_base&>>
  void query(F job, std::function<void(result<T>)> done) {
    auto out = std::make_shared<std::optional<T>>();
    run([out, job = std::move(job)](pqxx::transaction_base& tx) mutable { out->emplace(job(tx)); },
        [out, done = std::move(done)](result<void> r) {
          if (!r) {
            done(r.err());
          } else {
            done(std::move(**out));
          }
        });
  }

  /// SELECT 1 on a worker; `done` gets success or why Postgres is unusable.
  void ping(postgres_callback done);

  /// Blocking run() for tools, start-up and tests. Never call it from an
  /// actor, an HTTP handler, or a job or callback of this client (a worker
  /// calling it fails with `postgres_misuse` instead of deadlocking).
  result<void> run_sync(postgres_job job);
  result<void> run_autocommit_sync(postgres_job job);

  /// Blocking query() for tools, start-up and tests.
  template <class F, class T = std::invoke_result_t<F&, pqxx::transaction_base&>>
  result<T> query_sync(F job) {
    std::optional<T> out;
    auto r = run_sync([&out, &job](pqxx::transaction_base& tx) { out.emplace(job(tx)); });
    if (!r) return r.err();
    return std::move(*out);
  }

  /// Whether the most recent connection attempt or job found Postgres
  /// reachable. Unlike redis_client it is only refreshed by use: call ping()
  /// for a fresh answer.
  bool connected() const;

  /// The URL with the password redacted.
  const std::string& display_url() const;

 private:
  struct impl;
  explicit postgres_client(std::unique_ptr<impl> impl);
  std::unique_ptr<impl> impl_;
};

}  // namespace parley::store
