#pragma once
/// The catalog's job runner. Every catalog operation is a job: a function of a pqxx
/// transaction that returns a value (tenants.hpp, api_keys.hpp, ... make them). Run
/// one with run_job (asynchronous, with a callback) or run_job_sync (blocking):
///
///   store::run_job(pg, store::get_active(tenant, bot), [](result<bot_program> r) {...});
///   auto t = store::run_job_sync(pg, store::create_tenant(id, name, actor));
///
/// Threads: run_job enqueues the job on the postgres_client and returns at once; `done`
/// runs exactly once on a worker thread of that client, after COMMIT or the failure,
/// and must be short and must not block or throw (see postgres.hpp). run_job_sync
/// blocks the caller and is for tools, start-up and tests only: never call it from an
/// actor, an HTTP handler, or a callback of the client.
///
/// Transactions: each run is one transaction, retried once on a fresh connection when
/// the connection breaks before COMMIT (postgres.hpp), so a job must be safe to run
/// twice. Jobs compose: a job may call another job with its own transaction.
///
/// Errors: a job fails with its own code by fail() (the transaction rolls back and the
/// caller gets that error); any other exception is the client's `postgres_error` or
/// `postgres_job_failed`, an unreachable server `postgres_unavailable`.

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "src/common/result.hpp"
#include "src/store/postgres.hpp"

namespace parley::store {

template <class T>
using catalog_callback = std::function<void(result<T>)>;

/// A catalog operation, run in one transaction by run_job or run_job_sync.
template <class T>
using catalog_job = std::function<T(pqxx::transaction_base&)>;

/// A failure a job reports with its own code (see fail()).
struct catalog_failure : std::exception {
  error err;
  explicit catalog_failure(error e) : err(std::move(e)) {}
  const char* what() const noexcept override { return err.message.c_str(); }
};

/// Fails the running job with `code`: its transaction rolls back and the caller gets
/// this error instead of the client's generic one.
[[noreturn]] inline void fail(std::string code, std::string message) {
  throw catalog_failure(make_error(std::move(code), std::move(message)));
}

namespace detail {

template <class T>
using stored_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// What one job produced: its value or its catalog failure. Reset at the start of
/// every attempt (the client may run a job twice, see postgres.hpp).
template <class T>
struct job_slot {
  std::optional<error> failure;
  std::optional<stored_t<T>> value;
};

template <class T>
postgres_job wrap(catalog_job<T> job, std::shared_ptr<job_slot<T>> slot) {
  return [job = std::move(job), slot](pqxx::transaction_base& tx) {
    slot->failure.reset();
    slot->value.reset();
    try {
      if constexpr (std::is_void_v<T>) {
        job(tx);
        slot->value.emplace();
      } else {
        slot->value.emplace(job(tx));
      }
    } catch (const catalog_failure& f) {
      slot->failure = f.err;
      throw;
    }
  };
}

template <class T>
result<T> finish(job_slot<T>& slot, const result<void>& r) {
  if (slot.failure) return *slot.failure;
  if (!r) return r.err();
  if constexpr (std::is_void_v<T>) {
    return result<void>{};
  } else {
    return std::move(*slot.value);
  }
}

template <class T>
struct same {
  using type = T;
};

}  // namespace detail

/// Runs `job` asynchronously; `done` gets its value or error (see above).
template <class T>
void run_job(postgres_client& pg, catalog_job<T> job,
             typename detail::same<catalog_callback<T>>::type done) {
  auto slot = std::make_shared<detail::job_slot<T>>();
  pg.run(detail::wrap<T>(std::move(job), slot),
         [slot, done = std::move(done)](result<void> r) { done(detail::finish<T>(*slot, r)); });
}

/// Runs `job` and waits for it (tools, start-up and tests only, see above).
template <class T>
result<T> run_job_sync(postgres_client& pg, catalog_job<T> job) {
  auto slot = std::make_shared<detail::job_slot<T>>();
  auto r = pg.run_sync(detail::wrap<T>(std::move(job), slot));
  return detail::finish<T>(*slot, r);
}

}  // namespace parley::store
