#include "actors/gateway/botapi_gateway.hpp"

#include <openssl/rand.h>

#include <optional>

#include "actors/gateway/auth_cache.hpp"
#include "actors/gateway/session_keys.hpp"
#include "actors/runtime/runtime.hpp"
#include "src/channels/botapi/botapi.hpp"
#include "src/common/clock.hpp"

namespace parley::actors {
namespace {

namespace botapi = channels::botapi;
using status = turn_outcome::status;

/// Shared with the callbacks of its own Redis calls, which may complete after the
/// routes are gone (a node shutting down).
struct gateway : std::enable_shared_from_this<gateway> {
  botapi_gateway_options opts;
  std::shared_ptr<auth_cache> cache;
  explicit gateway(botapi_gateway_options o)
      : opts(std::move(o)),
        cache(opts.auth ? opts.auth : std::make_shared<auth_cache>(opts.auth_cache_ttl)) {}

  /// Authenticates, then calls `next` (on whatever thread answered).
  void authenticate(const botapi::request_context& ctx, const std::string& path,
                    const std::string& request_id, http::responder reply,
                    std::function<void()> next) {
    if (cache->accepted(ctx.org_id, ctx.bearer_token)) return next();
    auto ticket = cache->take_ticket();
    opts.verify_key(ctx.org_id, ctx.bearer_token,
                    [this, tenant = ctx.org_id, token = ctx.bearer_token, ticket, path, request_id,
                     reply, next = std::move(next)](result<bool> ok) {
                      if (!ok)
                        return reply(botapi::render_error(
                            503, "authentication is unavailable: " + ok.err().message, path,
                            request_id, common::now_unix_ms(), 1));
                      if (!*ok)
                        return reply(botapi::render_error(
                            401, "Authorization: the bearer token is not an API key of this org",
                            path, request_id, common::now_unix_ms()));
                      cache->remember(tenant, token, ticket);
                      next();
                    });
  }

  /// The error response for an outcome that is not a success; nullopt for ok/replayed.
  static std::optional<http::response> outcome_error(const turn_outcome& out,
                                                     const std::string& path,
                                                     const std::string& request_id) {
    switch (out.st) {
      case status::ok:
      case status::replayed:
        return std::nullopt;
      case status::session_not_found:
      case status::session_ended:
      case status::bot_not_found:
        return botapi::render_error(404, out.message, path, request_id, common::now_unix_ms());
      case status::stale_sequence:
      case status::bad_input:
        return botapi::render_error(400, out.message, path, request_id, common::now_unix_ms());
      case status::unavailable:
        return botapi::render_error(503, out.message, path, request_id, common::now_unix_ms(), 1);
      case status::busy:
        return botapi::render_error(429, out.message, path, request_id, common::now_unix_ms(), 1);
      case status::awaiting_transfer:
        return botapi::render_error(422, out.message, path, request_id, common::now_unix_ms());
      case status::internal:
        break;
    }
    return botapi::render_error(500, out.message.empty() ? "internal error" : out.message, path,
                                request_id, common::now_unix_ms());
  }

  /// Names the node that ran the turn (`X-Parley-Node`), for operators and tests.
  static http::response served(http::response res, const turn_outcome& out) {
    if (!out.served_by.empty()) res.headers.emplace_back("X-Parley-Node", out.served_by);
    return res;
  }

  static botapi::reply make_reply(const turn_outcome& out, int64_t sequence_id,
                                  const std::string& request_id,
                                  const botapi::response_options& options) {
    botapi::reply r;
    r.session_id = out.session_id;
    r.sequence_id = sequence_id;
    r.bot_version = out.program_id;
    if (sequence_id > 0) r.processed_sequence_ids.push_back(sequence_id);
    r.request_id = request_id;
    r.options = options;
    if (options.variables && out.program && out.result &&
        (out.st == status::ok || out.st == status::replayed))
      r.variables = botapi::response_variables(out.program->proto(), out.result->state(), options);
    return r;
  }

  void start(http::request&& req, http::responder reply) {
    auto parsed = botapi::parse_start(req);
    if (!parsed) return reply(botapi::render_failure(parsed.err(), req, common::now_unix_ms()));
    auto start = std::make_shared<botapi::start_request>(std::move(*parsed));
    std::string path = req.path;
    authenticate(start->ctx, path, start->ctx.request_id, reply, [this, start, path, reply] {
      if (opts.sessions == nullptr) return run_start(start, path, reply, new_session_id(), 0);
      opts.sessions->claim(
          start->ctx.org_id, start->bot_id, start->external_session_key, new_session_id(),
          [self = shared_from_this(), start, path, reply](result<std::string> id) {
            if (!id) return reply(session_keys_unavailable(id.err(), path, start->ctx.request_id));
            self->run_start(start, path, reply, std::move(*id), 0);
          });
    });
  }

  static http::response session_keys_unavailable(const error& e, const std::string& path,
                                                 const std::string& request_id) {
    return botapi::render_error(503, "the session store is unavailable: " + e.message, path,
                                request_id, common::now_unix_ms(), 1);
  }

  /// Starts (or, for a retried start, replays) session `session_id`. A start that finds
  /// its key's session ended maps the key to a fresh session and starts that
  /// (`renewals` counts how often, bounded against a pathological loop).
  void run_start(std::shared_ptr<botapi::start_request> start, std::string path,
                 http::responder reply, std::string session_id, int renewals) {
    inbound in;
    in.what = inbound::kind::start;
    in.tenant = start->ctx.org_id;
    in.bot = start->bot_id;
    in.channel = "botapi";
    in.session_id = session_id;
    in.external_key = start->external_session_key;
    in.message_id = "start";
    in.text = start->text.value_or("");
    in.variables = start->bot_variables();
    in.now_unix = common::now_unix_ms() / 1000;
    opts.rt->submit(std::move(in), [self = shared_from_this(), start, path, reply, session_id,
                                    renewals](turn_outcome out) {
      auto* keys = self->opts.sessions;
      const auto& ctx = start->ctx;
      if (keys != nullptr && out.st == status::session_ended && renewals < 2)
        return keys->replace(
            ctx.org_id, start->bot_id, start->external_session_key, session_id, new_session_id(),
            [self, start, path, reply, renewals](result<std::string> id) {
              if (!id)
                return reply(session_keys_unavailable(id.err(), path, start->ctx.request_id));
              self->run_start(start, path, reply, std::move(*id), renewals + 1);
            });
      if (keys != nullptr && out.st == status::ok && out.program) {
        // Committed: the key maps to this session as long as its snapshot can live.
        auto ttl = out.program->idle_timeout() - std::chrono::seconds(1);
        if (ttl.count() > 0)
          keys->keep(ctx.org_id, start->bot_id, start->external_session_key, session_id, ttl);
      }
      if (auto err = outcome_error(out, path, ctx.request_id)) return reply(std::move(*err));
      reply(served(
          botapi::render_start(make_reply(out, 0, ctx.request_id, start->options), *out.result),
          out));
    });
  }

  void cont(http::request&& req, http::responder reply) {
    auto parsed = botapi::parse_continue(req);
    if (!parsed) return reply(botapi::render_failure(parsed.err(), req, common::now_unix_ms()));
    auto msg = std::make_shared<botapi::continue_request>(std::move(*parsed));
    std::string path = req.path;
    authenticate(msg->ctx, path, msg->ctx.request_id, reply, [this, msg, path, reply] {
      inbound in;
      in.tenant = msg->ctx.org_id;
      in.channel = "botapi";
      in.session_id = msg->session_id;
      in.sequence_id = msg->sequence_id;
      in.message_id = std::to_string(msg->sequence_id);
      in.now_unix = common::now_unix_ms() / 1000;
      switch (msg->kind) {
        case botapi::message_kind::text:
          in.what = inbound::kind::text;
          in.text = msg->text;
          break;
        case botapi::message_kind::choice:
          in.what = inbound::kind::payload;
          if (msg->choice_id)
            in.text = *msg->choice_id;
          else
            in.choice_index = msg->choice_index.value_or(0);
          break;
        case botapi::message_kind::end_session:
          in.what = inbound::kind::end;
          in.text = msg->reason;
          break;
        case botapi::message_kind::set_variables:
          in.what = inbound::kind::set_variables;
          in.variables = msg->bot_variables();
          break;
        case botapi::message_kind::transfer_succeeded:
          in.what = inbound::kind::transfer_succeeded;
          break;
        case botapi::message_kind::redirect:
          in.what = inbound::kind::redirect;
          in.text = msg->dialog_id;
          break;
        case botapi::message_kind::transfer_failed:
          in.what = inbound::kind::transfer_failed;
          in.no_agent = msg->reason == "NoAgentAvailable";
          in.text = msg->reason + (msg->description.empty() ? "" : ": " + msg->description);
          break;
        default:
          return reply(botapi::render_error(
              422, "message.type: this runtime does not support this message type yet", path,
              msg->ctx.request_id, common::now_unix_ms()));
      }
      int64_t seq = msg->sequence_id;
      opts.rt->submit(std::move(in), [msg, seq, path, reply](turn_outcome out) {
        if (auto err = outcome_error(out, path, msg->ctx.request_id)) return reply(std::move(*err));
        reply(served(botapi::render_continue(
                         make_reply(out, seq, msg->ctx.request_id, msg->options), *out.result),
                     out));
      });
    });
  }

  void end(http::request&& req, http::responder reply) {
    auto parsed = botapi::parse_end(req);
    if (!parsed) return reply(botapi::render_failure(parsed.err(), req, common::now_unix_ms()));
    auto e = std::make_shared<botapi::end_request>(std::move(*parsed));
    std::string path = req.path;
    authenticate(e->ctx, path, e->ctx.request_id, reply, [this, e, path, reply] {
      inbound in;
      in.what = inbound::kind::end;
      in.tenant = e->ctx.org_id;
      in.channel = "botapi";
      in.session_id = e->session_id;
      in.message_id = "end";
      in.text = e->reason;
      in.now_unix = common::now_unix_ms() / 1000;
      opts.rt->submit(std::move(in), [e, path, reply](turn_outcome out) {
        if (auto err = outcome_error(out, path, e->ctx.request_id)) return reply(std::move(*err));
        reply(served(botapi::render_end(make_reply(out, 0, e->ctx.request_id, {})), out));
      });
    });
  }

  void dispatch(http::request&& req, http::responder reply) {
    auto route = botapi::match_route(req.method, req.path);
    if (!route) return reply(botapi::render_failure(route.err(), req, common::now_unix_ms()));
    switch (route->kind) {
      case botapi::endpoint::status:
        return reply(botapi::render_status(!opts.ready || opts.ready()));
      case botapi::endpoint::versions:
        return reply(botapi::render_versions());
      case botapi::endpoint::start_session:
        return start(std::move(req), std::move(reply));
      case botapi::endpoint::continue_session:
        return cont(std::move(req), std::move(reply));
      case botapi::endpoint::end_session:
        return end(std::move(req), std::move(reply));
    }
  }
};

}  // namespace

std::shared_ptr<void> add_botapi_routes(http::router& routes, botapi_gateway_options options) {
  auto gw = std::make_shared<gateway>(std::move(options));
  auto h = [gw](http::request&& req, http::responder reply) {
    gw->dispatch(std::move(req), std::move(reply));
  };
  routes.add("GET", "/status", h);
  routes.add("GET", "/versions", h);
  routes.add_prefix("POST", "/v5.3.0/bots/", "/v5.3.0/bots/{bot-id}/sessions", h);
  routes.add_prefix("POST", "/v5.3.0/sessions/", "/v5.3.0/sessions/{session-id}/messages", h);
  routes.add_prefix("DELETE", "/v5.3.0/sessions/", "/v5.3.0/sessions/{session-id}", h);
  return gw;
}

}  // namespace parley::actors
