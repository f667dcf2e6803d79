#include "actors/gateway/agent_gateway.hpp"

#include <nlohmann/json.hpp>

#include "actors/runtime/runtime.hpp"
#include "src/common/clock.hpp"
#include "src/store/catalog.hpp"
#include "src/store/postgres.hpp"

namespace parley::actors {
namespace {

using json = nlohmann::json;
using status = turn_outcome::status;
constexpr std::string_view prefix = "/agent/v1/handoffs";

http::response err(int code, std::string_view kind, const std::string& message) {
  return http::response::error(code, kind, message);
}

struct gateway : std::enable_shared_from_this<gateway> {
  agent_gateway_options o;
  explicit gateway(agent_gateway_options opts) : o(std::move(opts)) {}

  /// Authenticates, then calls `next(tenant)`.
  void authed(const http::request& req, const http::responder& reply,
              std::function<void(const std::string&)> next) {
    const auto* org = req.header("X-Org-Id");
    const auto* auth = req.header("Authorization");
    if (org == nullptr || org->empty()) return reply(err(401, "unauthorized", "X-Org-Id: missing"));
    if (auth == nullptr || auth->rfind("Bearer ", 0) != 0)
      return reply(err(401, "unauthorized", "Authorization: expected Bearer <API key>"));
    std::string tenant = *org;
    o.verify_key(tenant, auth->substr(7), [reply, tenant, next = std::move(next)](result<bool> ok) {
      if (!ok) return reply(err(503, "unavailable", ok.err().message));
      if (!*ok)
        return reply(err(401, "unauthorized", "Authorization: not an API key of " + tenant));
      next(tenant);
    });
  }

  void route(http::request&& req, http::responder reply) {
    std::string_view rest = req.path;
    rest.remove_prefix(prefix.size());
    auto self = shared_from_this();
    auto r = std::make_shared<http::request>(std::move(req));
    if (rest.empty() || rest == "/") {
      if (r->method != "GET") return reply(err(405, "method_not_allowed", "use GET"));
      return authed(*r, reply, [self, r, reply](const std::string& tenant) {
        self->list(tenant, r->query.find("all=true") != std::string::npos, reply);
      });
    }
    if (rest.front() != '/') return reply(err(404, "not_found", "no such route"));
    rest.remove_prefix(1);
    auto slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0)
      return reply(err(404, "not_found", "path: expected /agent/v1/handoffs/{session}/..."));
    std::string session(rest.substr(0, slash));
    std::string verb(rest.substr(slash + 1));
    if (verb == "transcript" && r->method == "GET")
      return authed(*r, reply, [self, session, reply](const std::string& tenant) {
        self->transcript(tenant, session, reply);
      });
    if (verb == "messages" && r->method == "POST")
      return authed(*r, reply, [self, r, session, reply](const std::string& tenant) {
        self->message(tenant, session, r->body, reply);
      });
    if (verb == "close" && r->method == "POST")
      return authed(*r, reply, [self, r, session, reply](const std::string& tenant) {
        self->close(tenant, session, r->body, reply);
      });
    reply(err(404, "not_found", "no route " + r->method + " " + r->path));
  }

  void list(const std::string& tenant, bool all, const http::responder& reply) {
    store::run_job(*o.pg, store::list_handoffs(tenant, !all),
                   [reply](result<std::vector<store::handoff_record>> r) {
                     if (!r) return reply(err(503, "unavailable", r.err().message));
                     json out = json::array();
                     for (const auto& h : *r)
                       out.push_back({{"sessionId", h.session_id},
                                      {"bot", h.bot},
                                      {"channel", h.channel},
                                      {"address", h.address},
                                      {"queue", h.queue},
                                      {"targets", h.targets},
                                      {"openedAtMs", h.opened_at_ms},
                                      {"closed", h.closed},
                                      {"outcome", h.outcome}});
                     reply(http::response::json(200, json{{"handoffs", out}}.dump()));
                   });
  }

  void transcript(const std::string& tenant, const std::string& session,
                  const http::responder& reply) {
    store::run_job(
        *o.pg, store::transcript(tenant, session),
        [reply, session](result<std::vector<store::transcript_row>> r) {
          if (!r) return reply(err(503, "unavailable", r.err().message));
          if (r->empty())
            return reply(err(404, "not_found", "no transcript for session " + session));
          json out = json::array();
          for (const auto& t : *r)
            out.push_back({{"sequence", t.sequence},
                           {"direction", t.direction},
                           {"text", t.text},
                           {"atMs", t.at_ms}});
          reply(http::response::json(200, json{{"sessionId", session}, {"turns", out}}.dump()));
        });
  }

  static std::optional<json> body_object(const std::string& body, const http::responder& reply) {
    auto j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      reply(err(400, "bad_request", "body: expected a JSON object"));
      return std::nullopt;
    }
    return j;
  }

  void message(const std::string& tenant, const std::string& session, const std::string& body,
               const http::responder& reply) {
    auto j = body_object(body, reply);
    if (!j) return;
    if (!j->contains("text") || !(*j)["text"].is_string() ||
        (*j)["text"].get<std::string>().empty())
      return reply(err(400, "bad_request", "text: required, a non-empty string"));
    if (j->contains("id") && !(*j)["id"].is_string())
      return reply(err(400, "bad_request", "id: must be a string"));
    inbound in;
    in.what = inbound::kind::agent_message;
    in.tenant = tenant;
    in.channel = "agent";
    in.session_id = session;
    in.text = (*j)["text"].get<std::string>();
    in.message_id = "agent:" + j->value("id", std::string());
    if (in.message_id == "agent:") in.message_id.clear();
    in.now_unix = common::now_unix_ms() / 1000;
    o.rt->submit(std::move(in), [reply](turn_outcome out) {
      switch (out.st) {
        case status::ok:
        case status::replayed:
          return reply(http::response::json(200, json{{"sent", true}}.dump()));
        case status::session_not_found:
        case status::session_ended:
          return reply(err(404, "not_found", out.message));
        case status::bad_input:
        case status::awaiting_transfer:
          return reply(err(422, "unprocessable", out.message));
        case status::unavailable:
        case status::busy:
          return reply(err(503, "unavailable", out.message));
        default:
          return reply(err(500, "internal", out.message));
      }
    });
  }

  void close(const std::string& tenant, const std::string& session, const std::string& body,
             const http::responder& reply) {
    auto j = body_object(body, reply);
    if (!j) return;
    auto outcome = j->value("outcome", std::string());
    if (outcome != "resolved" && outcome != "returned_to_bot")
      return reply(
          err(400, "bad_request", "outcome: expected \"resolved\" or \"returned_to_bot\""));
    inbound in;
    in.what =
        outcome == "resolved" ? inbound::kind::transfer_succeeded : inbound::kind::transfer_failed;
    in.tenant = tenant;
    in.channel = "agent";
    in.session_id = session;
    in.text = outcome == "resolved" ? "" : "returned to the bot by the agent";
    in.now_unix = common::now_unix_ms() / 1000;
    auto self = shared_from_this();
    o.rt->submit(std::move(in), [self, tenant, session, outcome, reply](turn_outcome out) {
      if (out.st == status::session_not_found || out.st == status::session_ended)
        return reply(err(404, "not_found", out.message));
      if (out.st == status::bad_input) return reply(err(422, "unprocessable", out.message));
      if (out.st == status::unavailable || out.st == status::busy)
        return reply(err(503, "unavailable", out.message));
      if (out.st != status::ok && out.st != status::replayed)
        return reply(err(500, "internal", out.message));
      store::run_job(
          *self->o.pg, store::close_handoff(tenant, session, outcome),
          [reply, outcome](result<bool> r) {
            if (!r) return reply(err(503, "unavailable", r.err().message));
            reply(http::response::json(200, json{{"closed", true}, {"outcome", outcome}}.dump()));
          });
    });
  }
};

}  // namespace

std::shared_ptr<void> add_agent_routes(http::router& routes, agent_gateway_options options) {
  auto g = std::make_shared<gateway>(std::move(options));
  auto h = [g](http::request&& req, http::responder reply) {
    g->route(std::move(req), std::move(reply));
  };
  for (const char* m : {"GET", "POST"}) {
    routes.add(m, std::string(prefix), h);
    routes.add_prefix(m, std::string(prefix) + "/", "/agent/v1/handoffs/{session}", h);
  }
  return g;
}

}  // namespace parley::actors
