#include "actors/gateway/twilio_gateway.hpp"

#include "actors/delivery/channel_delivery.hpp"
#include "actors/delivery/sms_opt_outs.hpp"
#include "actors/gateway/webhook_turns.hpp"
#include "actors/limits/attachment_gate.hpp"
#include "actors/runtime/runtime.hpp"
#include "src/channels/twilio/twilio.hpp"
#include "src/common/clock.hpp"
#include "src/log/log.hpp"
#include "src/metrics/metrics.hpp"
#include "src/store/catalog.hpp"

namespace parley::actors {
namespace {

namespace twilio = channels::twilio;
namespace text = channels::text;
using status = turn_outcome::status;

constexpr std::string_view route_prefix = "/channels/twilio/";

http::response twiml_ok() {
  return http::response{
      200, std::string(twilio::twiml_content_type), {}, std::string(twilio::twiml_empty)};
}

struct target {
  std::string tenant;
  std::string bot;
  bool status = false;
};

/// /channels/twilio/{tenant}/{bot}[/status]
std::optional<target> parse_path(std::string_view path) {
  if (path.substr(0, route_prefix.size()) != route_prefix) return std::nullopt;
  path.remove_prefix(route_prefix.size());
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    auto slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  if (parts.size() < 2 || parts.size() > 3) return std::nullopt;
  for (auto p : parts)
    if (p.empty()) return std::nullopt;
  if (parts.size() == 3 && parts[2] != "status") return std::nullopt;
  return target{std::string(parts[0]), std::string(parts[1]), parts.size() == 3};
}

struct gateway : std::enable_shared_from_this<gateway> {
  twilio_gateway_options o;
  prometheus::Counter* accepted = nullptr;
  attachment_probe gate{nullptr};
  prometheus::Counter* refused = nullptr;
  prometheus::Counter* receipts = nullptr;

  explicit gateway(twilio_gateway_options opts) : o(std::move(opts)) {
    gate = attachment_probe(o.metrics);
    if (o.metrics != nullptr) {
      const char* help = "Twilio webhooks received, by outcome.";
      accepted = &metrics::counter(*o.metrics, "parley_sms_webhooks_total", help,
                                   {{"outcome", "accepted"}});
      refused = &metrics::counter(*o.metrics, "parley_sms_webhooks_total", help,
                                  {{"outcome", "refused"}});
      receipts =
          &metrics::counter(*o.metrics, "parley_sms_webhooks_total", help, {{"outcome", "status"}});
    }
  }

  void refuse(const http::responder& reply, http::response r) {
    if (refused) refused->Increment();
    reply(std::move(r));
  }

  void handle(http::request&& req, http::responder reply) {
    auto t = parse_path(req.path);
    if (!t)
      return refuse(
          reply, http::response::error(404, "not_found",
                                       "path: expected /channels/twilio/{tenant}/{bot}[/status]"));
    auto params = text::parse_form(req.body);
    if (!params) return refuse(reply, webhook_refusal(params.err()));
    auto self = shared_from_this();
    auto url = o.public_url() + req.target;
    auto signature = req.header("X-Twilio-Signature") ? *req.header("X-Twilio-Signature") : "";
    o.secret(
        t->tenant, "twilio.auth_token",
        [self, t = *t, url = std::move(url), signature = std::move(signature),
         params = std::move(*params), reply](result<std::optional<std::string>> token) mutable {
          if (!token.ok())
            return self->refuse(reply, webhook_retry_later("tenant secrets are unavailable: " +
                                                           token.err().message));
          // A tenant without the secret is refused like a wrong signature: the
          // caller learns nothing about which tenants exist.
          auto ok = twilio::verify_signature(token->value_or(""), url, params, signature);
          if (!ok) return self->refuse(reply, webhook_refusal(ok.err()));
          auto in = twilio::parse_inbound(params);
          if (!in) return self->refuse(reply, webhook_refusal(in.err()));
          if (t.status) return self->status_callback(t, *in, reply);
          if (in->kind != twilio::inbound_kind::message)
            return self->refuse(
                reply, http::response::error(400, "bad_request",
                                             "MessageStatus: a status callback was sent to the "
                                             "messages URL; use .../status"));
          self->message(t, std::move(*in), reply);
        });
  }

  void status_callback(const target& t, const twilio::inbound& in, const http::responder& reply) {
    if (receipts) receipts->Increment();
    store::message_receipt r;
    r.tenant = t.tenant;
    r.bot = t.bot;
    r.channel = "sms";
    r.address = sms_address(in.from, in.to);  // from us, to the user
    r.provider_message_id = in.message_sid;
    r.status = in.message_status;
    r.error_code = in.error_code;
    keep_receipt(o.receipts, std::move(r));
    reply(twiml_ok());
  }

  void message(const target& t, twilio::inbound in, const http::responder& reply) {
    // The conversation is between our number (To) and the user's (From).
    const std::string address = sms_address(in.to, in.from);
    auto kw = twilio::classify_keyword(in.body);
    if ((kw == twilio::keyword::stop || kw == twilio::keyword::start) && o.opt_outs != nullptr) {
      const bool stop = kw == twilio::keyword::stop;
      return o.opt_outs->set(
          t.tenant, address, stop,
          [self = shared_from_this(), reply, stop, address](result<void> r) {
            if (!r.ok()) return self->refuse(reply, webhook_retry_later(r.err().message));
            log::info(stop ? "sms_opted_out" : "sms_opted_in", {{"address", address}});
            if (self->accepted) self->accepted->Increment();
            reply(twiml_ok());
          });
    }
    auto msg = std::make_shared<twilio::inbound>(std::move(in));
    auto self = shared_from_this();
    if (!o.limits) return self->with_limits(t, msg, address, reply, {});
    o.limits(t.tenant, [self, t, msg, address, reply](channels::text::attachment_limits l) {
      self->with_limits(t, msg, address, reply, l);
    });
  }

  void with_limits(const target& t, const std::shared_ptr<twilio::inbound>& msg,
                   const std::string& address, const http::responder& reply,
                   const channels::text::attachment_limits& limits) {
    std::vector<channels::text::attachment_ref> refs;
    for (const auto& m : msg->media) refs.push_back({m.url, m.content_type});
    auto verdicts = std::make_shared<const std::vector<channels::text::attachment_verdict>>(
        channels::text::check_attachments(limits, refs));
    for (const auto& v : *verdicts)
      if (v.refused) gate.refused("sms", *v.refused);
    auto make = [msg, verdicts](bool) {
      inbound in;
      in.what = inbound::kind::text;
      in.channel = "sms";
      in.message_id = msg->message_sid;
      in.text = msg->body;
      for (const auto& v : *verdicts) {
        // Media reach the bot as their URLs, after the text (the VM takes text only);
        // refused ones only the transcript.
        if (v.refused) continue;
        if (!in.text.empty()) in.text += '\n';
        in.text += msg->media[v.index].url;
      }
      in.transcript_note = refusal_note(*verdicts);
      in.now_unix = common::now_unix_ms() / 1000;
      return in;
    };
    run_addressed_turn(
        *o.rt, *o.sessions, t.tenant, t.bot, address, std::move(make),
        [self = shared_from_this(), reply](result<turn_outcome> r) {
          if (!r)
            return self->refuse(
                reply, webhook_retry_later("the session store is unavailable: " + r.err().message));
          self->answer(*r, reply);
        });
  }

  void answer(const turn_outcome& out, const http::responder& reply) {
    switch (out.st) {
      case status::ok:
      case status::replayed:
        if (accepted) accepted->Increment();
        return reply(twiml_ok());
      case status::bot_not_found:
        return refuse(reply, http::response::error(404, "not_found", out.message));
      case status::unavailable:
      case status::busy:
        return refuse(reply, webhook_retry_later(out.message));
      case status::bad_input:
      case status::awaiting_transfer:
      case status::stale_sequence:
      case status::session_ended:
        // Accepted and answered as far as Twilio goes: retrying would change nothing.
        log::info("sms_message_not_run", {{"session", out.session_id}, {"reason", out.message}});
        if (accepted) accepted->Increment();
        return reply(twiml_ok());
      default:
        log::error("sms_turn_failed", {{"session", out.session_id}, {"error", out.message}});
        return refuse(reply, http::response::error(500, "internal", out.message));
    }
  }
};

}  // namespace

std::shared_ptr<void> add_twilio_routes(http::router& routes, twilio_gateway_options options) {
  auto g = std::make_shared<gateway>(std::move(options));
  routes.add_prefix("POST", std::string(route_prefix), "/channels/twilio/{tenant}/{bot}",
                    [g](http::request&& req, http::responder reply) {
                      g->handle(std::move(req), std::move(reply));
                    });
  return g;
}

}  // namespace parley::actors
