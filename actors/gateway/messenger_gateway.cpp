#include "actors/gateway/messenger_gateway.hpp"

#include "actors/delivery/channel_delivery.hpp"
#include "actors/gateway/webhook_turns.hpp"
#include "actors/limits/attachment_gate.hpp"
#include "actors/runtime/runtime.hpp"
#include "src/channels/messenger/messenger.hpp"
#include "src/common/clock.hpp"
#include "src/log/log.hpp"
#include "src/metrics/metrics.hpp"
#include "src/store/catalog.hpp"

namespace parley::actors {
namespace {

namespace messenger = channels::messenger;
using status = turn_outcome::status;

constexpr std::string_view route_prefix = "/channels/messenger/";

struct target {
  std::string tenant;
  std::string bot;
};

std::optional<target> parse_path(std::string_view path) {
  if (path.substr(0, route_prefix.size()) != route_prefix) return std::nullopt;
  path.remove_prefix(route_prefix.size());
  auto slash = path.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 >= path.size())
    return std::nullopt;
  auto bot = path.substr(slash + 1);
  if (bot.find('/') != std::string_view::npos) return std::nullopt;
  return target{std::string(path.substr(0, slash)), std::string(bot)};
}

/// The events of one webhook, run one after another; the answer goes out after the last.
struct batch {
  target t;
  std::vector<messenger::event> events;
  std::size_t next = 0;
  std::string page_token;  // for typing_on; may be empty
  http::responder reply;
};

struct gateway : std::enable_shared_from_this<gateway> {
  messenger_gateway_options o;
  prometheus::Counter* events_run = nullptr;
  prometheus::Counter* events_ignored = nullptr;
  prometheus::Counter* refused = nullptr;
  attachment_probe gate{nullptr};

  explicit gateway(messenger_gateway_options opts) : o(std::move(opts)) {
    gate = attachment_probe(o.metrics);
    if (o.metrics != nullptr) {
      const char* help = "Messenger webhook events received, by outcome.";
      events_run = &metrics::counter(*o.metrics, "parley_messenger_events_total", help,
                                     {{"outcome", "run"}});
      events_ignored = &metrics::counter(*o.metrics, "parley_messenger_events_total", help,
                                         {{"outcome", "ignored"}});
      refused = &metrics::counter(*o.metrics, "parley_messenger_events_total", help,
                                  {{"outcome", "refused_webhook"}});
    }
  }

  void refuse(const http::responder& reply, http::response r) {
    if (refused) refused->Increment();
    reply(std::move(r));
  }

  void verify(http::request&& req, http::responder reply) {
    auto t = parse_path(req.path);
    if (!t)
      return reply(http::response::error(404, "not_found",
                                         "path: expected /channels/messenger/{tenant}/{bot}"));
    o.secret(t->tenant, "messenger.verify_token",
             [query = req.query, reply](result<std::optional<std::string>> token) {
               if (!token.ok())
                 return reply(
                     webhook_retry_later("tenant secrets are unavailable: " + token.err().message));
               auto c = messenger::verify_subscription(query, token->value_or(""));
               if (!c) return reply(webhook_refusal(c.err()));
               reply(http::response::text(200, *c));
             });
  }

  void post(http::request&& req, http::responder reply) {
    auto t = parse_path(req.path);
    if (!t)
      return refuse(reply,
                    http::response::error(404, "not_found",
                                          "path: expected /channels/messenger/{tenant}/{bot}"));
    auto self = shared_from_this();
    auto signature =
        req.header("X-Hub-Signature-256") ? *req.header("X-Hub-Signature-256") : std::string();
    o.secret(t->tenant, "messenger.app_secret",
             [self, t = *t, body = std::move(req.body), signature = std::move(signature),
              reply](result<std::optional<std::string>> secret) mutable {
               if (!secret.ok())
                 return self->refuse(reply, webhook_retry_later("tenant secrets are unavailable: " +
                                                                secret.err().message));
               auto ok = messenger::verify_signature(secret->value_or(""), body, signature);
               if (!ok) return self->refuse(reply, webhook_refusal(ok.err()));
               auto hook = messenger::parse_webhook(body);
               if (!hook) return self->refuse(reply, webhook_refusal(hook.err()));
               auto b = std::make_shared<batch>();
               b->t = t;
               b->events = std::move(hook->events);
               b->reply = reply;
               if (!self->o.send) return self->step(b);
               self->o.secret(t.tenant, "messenger.page_token",
                              [self, b](result<std::optional<std::string>> token) {
                                if (token.ok() && *token) b->page_token = **token;
                                self->step(b);
                              });
             });
  }

  void typing(const batch& b, const std::string& psid) {
    if (!o.send || b.page_token.empty()) return;
    http::client_request c;
    c.method = "POST";
    c.url = messenger::send_api_url(o.api_base, b.page_token);
    c.headers = {{"Content-Type", "application/json"}};
    c.body = messenger::typing_on(psid);
    c.timeout = std::chrono::seconds(5);
    o.send(std::move(c), [](result<http::client_response>) {});
  }

  /// Runs event `b->next`, then the ones after it; answers after the last.
  void step(const std::shared_ptr<batch>& b) {
    while (b->next < b->events.size()) {
      auto& e = b->events[b->next];
      if (e.kind == messenger::event_kind::message || e.kind == messenger::event_kind::postback)
        return run_event(b);
      if (e.kind == messenger::event_kind::delivery || e.kind == messenger::event_kind::read) {
        // A receipt covers every message to the address up to its watermark.
        store::message_receipt r;
        r.tenant = b->t.tenant;
        r.bot = b->t.bot;
        r.channel = "messenger";
        r.address = messenger_address(e.page_id, e.sender_id);
        r.provider_message_id = e.mids.empty() ? std::string() : e.mids.front();
        r.status = e.kind == messenger::event_kind::read ? "read" : "delivered";
        r.watermark_ms = e.watermark;
        keep_receipt(o.receipts, std::move(r));
      }
      if (e.kind == messenger::event_kind::invalid)
        log::warn("messenger_event_invalid", {{"problem", e.problem}});
      if (events_ignored) events_ignored->Increment();
      ++b->next;
    }
    b->reply(http::response::text(200, "EVENT_RECEIVED"));
  }

  void run_event(const std::shared_ptr<batch>& b) {
    auto self = shared_from_this();
    if (!o.limits) return run_event_with(b, {});
    o.limits(b->t.tenant,
             [self, b](channels::text::attachment_limits l) { self->run_event_with(b, l); });
  }

  /// Messenger names an attachment's kind, not its MIME type: image, audio and video
  /// are checked as image/*, audio/*, video/*; file and the others as
  /// application/octet-stream.
  static std::string content_type_of(const std::string& type) {
    if (type == "image" || type == "audio" || type == "video") return type + "/*";
    return "application/octet-stream";
  }

  void run_event_with(const std::shared_ptr<batch>& b,
                      const channels::text::attachment_limits& limits) {
    const auto& e = b->events[b->next];
    const std::string address = messenger_address(e.page_id, e.sender_id);
    typing(*b, e.sender_id);
    auto self = shared_from_this();
    std::vector<channels::text::attachment_ref> refs;
    for (std::size_t i = 0; i < e.attachments.size(); ++i) {
      if (e.attachments[i].url.empty()) continue;  // a location: nothing to fetch
      refs.push_back({e.attachments[i].url, content_type_of(e.attachments[i].type)});
    }
    auto verdicts = channels::text::check_attachments(limits, refs);
    for (const auto& v : verdicts)
      if (v.refused) gate.refused("messenger", *v.refused);
    std::vector<std::string> accepted_urls;
    for (const auto& v : verdicts)
      if (!v.refused) accepted_urls.push_back(refs[v.index].url);
    std::string note = refusal_note(verdicts);
    auto make = [e, accepted_urls, note](bool start) {
      inbound in;
      in.what = inbound::kind::text;
      in.channel = "messenger";
      if (e.kind == messenger::event_kind::postback) {
        if (!start) in.what = inbound::kind::payload;
        in.text = e.payload;
        in.message_id = e.mid.empty() ? "postback:" + std::to_string(e.timestamp) : e.mid;
      } else if (e.quick_reply_payload) {
        if (!start) in.what = inbound::kind::payload;
        in.text = *e.quick_reply_payload;
        in.message_id = e.mid;
      } else {
        in.text = e.text;
        for (const auto& url : accepted_urls) {
          if (!in.text.empty()) in.text += '\n';
          in.text += url;
        }
        in.transcript_note = note;
        in.message_id = e.mid;
      }
      in.now_unix = common::now_unix_ms() / 1000;
      return in;
    };
    run_addressed_turn(
        *o.rt, *o.sessions, b->t.tenant, b->t.bot, address, std::move(make),
        [self, b](result<turn_outcome> r) {
          if (!r)
            return self->refuse(b->reply, webhook_retry_later("the session store is unavailable: " +
                                                              r.err().message));
          const auto& out = *r;
          switch (out.st) {
            case status::unavailable:
            case status::busy:
              return self->refuse(b->reply, webhook_retry_later(out.message));
            case status::bot_not_found:
              return self->refuse(b->reply, http::response::error(404, "not_found", out.message));
            case status::internal:
              log::error("messenger_turn_failed",
                         {{"session", out.session_id}, {"error", out.message}});
              break;
            case status::ok:
            case status::replayed:
              break;
            default:
              log::info("messenger_event_not_run",
                        {{"session", out.session_id}, {"reason", out.message}});
          }
          if (self->events_run) self->events_run->Increment();
          ++b->next;
          self->step(b);
        });
  }
};

}  // namespace

std::shared_ptr<void> add_messenger_routes(http::router& routes,
                                           messenger_gateway_options options) {
  auto g = std::make_shared<gateway>(std::move(options));
  routes.add_prefix("GET", std::string(route_prefix), "/channels/messenger/{tenant}/{bot}",
                    [g](http::request&& req, http::responder reply) {
                      g->verify(std::move(req), std::move(reply));
                    });
  routes.add_prefix("POST", std::string(route_prefix), "/channels/messenger/{tenant}/{bot}",
                    [g](http::request&& req, http::responder reply) {
                      g->post(std::move(req), std::move(reply));
                    });
  return g;
}

}  // namespace parley::actors
