#include "actors/gateway/webhook_turns.hpp"

#include <memory>

#include "actors/gateway/session_keys.hpp"
#include "src/channels/errors.hpp"
#include "src/log/log.hpp"
#include "src/store/catalog.hpp"
#include "src/store/postgres.hpp"

namespace parley::actors {
namespace {

using status = turn_outcome::status;

struct addressed_turn : std::enable_shared_from_this<addressed_turn> {
  turn_sink* rt = nullptr;
  session_keys* keys = nullptr;
  std::string tenant, bot, address;
  std::function<inbound(bool)> make;
  std::function<void(result<turn_outcome>)> done;

  void run(std::string session, bool start, int renewals) {
    inbound in = make(start);
    if (start) in.what = inbound::kind::start;
    in.tenant = tenant;
    in.bot = bot;
    in.session_id = session;
    in.external_key = start ? address : std::string();
    auto self = shared_from_this();
    rt->submit(std::move(in), [self, session, start, renewals](turn_outcome out) {
      if (!start && out.st == status::session_not_found) return self->run(session, true, renewals);
      if (out.st == status::session_ended && renewals < 2)
        return self->keys->replace(self->tenant, self->bot, self->address, session,
                                   new_session_id(), [self, renewals](result<std::string> id) {
                                     if (!id) return self->done(id.err());
                                     self->run(std::move(*id), true, renewals + 1);
                                   });
      if ((out.st == status::ok || out.st == status::replayed) && out.program) {
        auto ttl = out.program->idle_timeout() - std::chrono::seconds(1);
        if (ttl.count() > 0) self->keys->keep(self->tenant, self->bot, self->address, session, ttl);
      }
      self->done(std::move(out));
    });
  }
};

}  // namespace

http::response webhook_refusal(const error& e) {
  return http::response::error(channels::http_status(e), e.code, e.message);
}

http::response webhook_retry_later(std::string message) {
  auto r = http::response::error(503, "unavailable", message);
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

void keep_receipt(store::postgres_client* pg, store::message_receipt r) {
  if (pg == nullptr) return;
  store::run_job(*pg, store::insert_receipts({std::move(r)}), [](result<std::size_t> x) {
    if (!x) log::warn("receipt_write_failed", {{"error", x.err().message}});
  });
}

void run_addressed_turn(turn_sink& rt, session_keys& keys, const std::string& tenant,
                        const std::string& bot, const std::string& address,
                        std::function<inbound(bool start)> make,
                        std::function<void(result<turn_outcome>)> done) {
  auto t = std::make_shared<addressed_turn>();
  t->rt = &rt;
  t->keys = &keys;
  t->tenant = tenant;
  t->bot = bot;
  t->address = address;
  t->make = std::move(make);
  t->done = std::move(done);
  auto candidate = new_session_id();
  keys.claim(tenant, bot, address, candidate, [t, candidate](result<std::string> id) {
    if (!id) return t->done(id.err());
    // The address got our candidate: a new conversation, started at once (no load of a
    // snapshot that cannot exist).
    const bool fresh = *id == candidate;
    t->run(std::move(*id), fresh, 0);
  });
}

}  // namespace parley::actors
