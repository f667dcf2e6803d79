#include "actors/delivery/channel_delivery.hpp"

#include <memory>
#include <vector>

#include "src/channels/messenger/messenger.hpp"
#include "src/channels/twilio/twilio.hpp"
#include "src/common/clock.hpp"

namespace parley::actors {
namespace {

namespace twilio = channels::twilio;
namespace messenger = channels::messenger;
using kind = delivery_result::kind;

/// Retry-After in seconds (the HTTP-date form is not used by these providers).
std::chrono::milliseconds retry_after(const http::client_response& r) {
  const auto* h = r.header("Retry-After");
  if (h == nullptr) return std::chrono::milliseconds(0);
  char* end = nullptr;
  long v = std::strtol(h->c_str(), &end, 10);
  if (end == h->c_str() || v < 0) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(std::min<long>(v, 3600) * 1000);
}

/// How a provider's HTTP answer classifies: nullopt for a 2xx.
std::optional<delivery_result> classify(const result<http::client_response>& r,
                                        const std::string& provider) {
  if (!r.ok()) return delivery_result{kind::retry, {}, provider + ": " + r.err().message};
  if (r->status >= 200 && r->status < 300) return std::nullopt;
  if (r->status == 429 || r->status >= 500)
    return delivery_result{kind::retry, retry_after(*r),
                           provider + " answered HTTP " + std::to_string(r->status)};
  return delivery_result{kind::failed, {}, {}};
}

/// Sends `calls` one after another; `done` gets the first failure or delivered.
struct sequence : std::enable_shared_from_this<sequence> {
  std::vector<http::client_request> calls;
  std::size_t next = 0;
  std::string provider;
  std::function<void(http::client_request, std::function<void(result<http::client_response>)>)>
      send;
  std::function<delivery_result(const http::client_response&)> refused;  // a 4xx's reason
  std::function<void(delivery_result)> done;

  void go() {
    if (next >= calls.size()) return done(delivery_result::ok());
    auto self = shared_from_this();
    send(calls[next], [self](result<http::client_response> r) {
      auto bad = classify(r, self->provider);
      if (bad) {
        if (bad->k == kind::failed) return self->done(self->refused(*r));
        return self->done(std::move(*bad));
      }
      ++self->next;
      self->go();
    });
  }
};

/// Looks the tenant's secret `name` up; a missing or unreadable one settles the delivery
/// (`done`), else `then(value, done)` goes on.
template <class Then>
void with_secret(const channel_delivery_options& o, const std::string& tenant,
                 const std::string& name, std::function<void(delivery_result)> done, Then then) {
  o.secret(tenant, name,
           [name, done = std::move(done),
            then = std::move(then)](result<std::optional<std::string>> v) mutable {
             if (!v) return done({kind::retry, {}, "secrets: " + v.err().message});
             if (!*v) return done({kind::failed, {}, "the tenant has no secret " + name});
             then(std::move(**v), std::move(done));
           });
}

/// A provider's refusal (a 4xx but 429), with its error code and message when it gave them.
delivery_result refused_by(const std::string& provider, int http_status,
                           std::optional<std::int64_t> code, const std::string& message) {
  delivery_result out{
      kind::failed, {}, provider + " refused the message: HTTP " + std::to_string(http_status)};
  if (code) out.reason += ", error " + std::to_string(*code) + " " + message;
  return out;
}

/// The options are shared by the deliveries in flight, so a call that completes late
/// finds them (the callbacks hold `op`, not a copy of every option).
using options_ptr = std::shared_ptr<const channel_delivery_options>;

void deliver_sms(const options_ptr& op, const parley::runtime::v1::OutboxEntry& e, int index,
                 const std::string& key, std::function<void(delivery_result)> done) {
  const auto& o = *op;
  auto numbers = parse_sms_address(e.address());
  if (!numbers) return done({kind::failed, {}, "the conversation's address is not an SMS address"});
  auto seq = std::make_shared<sequence>();
  seq->provider = "Twilio";
  seq->send = o.send;
  seq->refused = [](const http::client_response& r) {
    auto a = twilio::parse_send_answer(r.status, r.body);
    auto out = refused_by("Twilio", r.status, a ? a->error_code : std::nullopt,
                          a ? a->error_message : std::string());
    // 21610: the recipient replied STOP to this number.
    if (a && a->error_code == 21610) out.k = kind::refused;
    return out;
  };
  auto bodies = twilio::render_sms(e.messages(index));
  if (bodies.empty()) return done(delivery_result::ok());
  const auto callback = o.sms_status_callback ? o.sms_status_callback(e) : std::string();
  // The account and its token, then the opt-out state, then one call per body.
  with_secret(
      o, e.tenant(), "twilio.account_sid", std::move(done),
      [op, e, key, numbers = *numbers, bodies = std::move(bodies), callback, seq](
          std::string sid, std::function<void(delivery_result)> done) mutable {
        with_secret(
            *op, e.tenant(), "twilio.auth_token", std::move(done),
            [op, e, key, numbers, bodies = std::move(bodies), callback, seq, sid](
                std::string token, std::function<void(delivery_result)> done) {
              const auto& o = *op;
              for (const auto& b : bodies) {
                twilio::send_request req;
                req.from = numbers.first;
                req.to = numbers.second;
                req.body = b;
                req.status_callback = callback;
                auto form = twilio::send_form(req);
                if (!form) return done({kind::failed, {}, form.err().message});
                http::client_request c;
                c.method = "POST";
                c.url = twilio::messages_url(o.twilio_api_base, sid);
                c.headers = {{"Authorization", twilio::basic_auth(sid, token)},
                             {"Content-Type", "application/x-www-form-urlencoded"},
                             {"I-Twilio-Idempotency-Token", key}};
                c.body = std::move(*form);
                c.timeout = o.timeout;
                seq->calls.push_back(std::move(c));
              }
              seq->done = std::move(done);
              if (o.opt_outs == nullptr) return seq->go();
              o.opt_outs->opted_out(e.tenant(), e.address(), [seq](result<bool> out) {
                if (!out) return seq->done({kind::retry, {}, out.err().message});
                if (*out)
                  return seq->done({kind::refused, {}, "the recipient opted out with STOP"});
                seq->go();
              });
            });
      });
}

void deliver_messenger(const options_ptr& op, const parley::runtime::v1::OutboxEntry& e, int index,
                       std::function<void(delivery_result)> done) {
  const auto& o = *op;
  auto bar = e.address().find('|');
  if (bar == std::string::npos)
    return done({kind::failed, {}, "the conversation's address is not a Messenger address"});
  std::string psid = e.address().substr(bar + 1);
  // The window opens with the user's last message. A human agent's message goes with
  // the HUMAN_AGENT tag, within its 7-day window.
  const auto role = e.from_agent() ? messenger::sender_role::agent : messenger::sender_role::bot;
  const auto last_user =
      e.last_user_unix_ms() > 0 ? std::optional<std::int64_t>(e.last_user_unix_ms()) : std::nullopt;
  if (auto why = messenger::check_window(last_user, common::now_unix_ms(), role))
    return done({kind::refused, {}, *why});
  auto bodies = messenger::render_reply(psid, e.messages(index), role);
  if (bodies.empty()) return done(delivery_result::ok());
  with_secret(o, e.tenant(), "messenger.page_token", std::move(done),
              [op, bodies = std::move(bodies)](std::string token,
                                               std::function<void(delivery_result)> done) mutable {
                const auto& o = *op;
                auto seq = std::make_shared<sequence>();
                seq->provider = "Messenger";
                seq->send = o.send;
                seq->done = std::move(done);
                seq->refused = [](const http::client_response& r) {
                  auto a = messenger::parse_send_answer(r.status, r.body);
                  return refused_by("Messenger", r.status, a ? a->error_code : std::nullopt,
                                    a ? a->error_message : std::string());
                };
                for (auto& b : bodies) {
                  http::client_request c;
                  c.method = "POST";
                  c.url = messenger::send_api_url(o.messenger_api_base, token);
                  c.headers = {{"Content-Type", "application/json"}};
                  c.body = std::move(b);
                  c.timeout = o.timeout;
                  seq->calls.push_back(std::move(c));
                }
                seq->go();
              });
}

}  // namespace

std::string sms_address(std::string_view ours, std::string_view user) {
  std::string out(ours);
  out += '|';
  out += user;
  return out;
}

std::optional<std::pair<std::string, std::string>> parse_sms_address(std::string_view a) {
  auto bar = a.find('|');
  if (bar == std::string_view::npos || bar == 0 || bar + 1 >= a.size()) return std::nullopt;
  return std::make_pair(std::string(a.substr(0, bar)), std::string(a.substr(bar + 1)));
}

std::string messenger_address(std::string_view page, std::string_view psid) {
  std::string out(page);
  out += '|';
  out += psid;
  return out;
}

deliver_fn make_channel_delivery(channel_delivery_options o) {
  options_ptr opts = std::make_shared<const channel_delivery_options>(std::move(o));
  return [opts](const parley::runtime::v1::OutboxEntry& e, int index, const std::string& key,
                std::function<void(delivery_result)> done) {
    if (index == e.messages_size() && e.has_handoff()) {
      if (opts->handoff) return opts->handoff(e, std::move(done));
      return done(delivery_result::ok());
    }
    if (index < 0 || index >= e.messages_size()) return done(delivery_result::ok());
    if (e.channel() == "sms") return deliver_sms(opts, e, index, key, std::move(done));
    if (e.channel() == "messenger") return deliver_messenger(opts, e, index, std::move(done));
    if (e.channel() == "directline" && opts->directline)
      return opts->directline(e, index, key, std::move(done));
    done({kind::failed, {}, "no sender for channel " + e.channel()});
  };
}

}  // namespace parley::actors
