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

void deliver_sms(const channel_delivery_options& o, const parley::runtime::v1::OutboxEntry& e,
                 int index, const std::string& key, std::function<void(delivery_result)> done) {
  auto numbers = parse_sms_address(e.address());
  if (!numbers) return done({kind::failed, {}, "the conversation's address is not an SMS address"});
  auto bodies = twilio::render_sms(e.messages(index));
  if (bodies.empty()) return done(delivery_result::ok());
  auto callback = o.sms_status_callback ? o.sms_status_callback(e) : std::string();
  auto send_all = [o, e, key, numbers = *numbers, bodies = std::move(bodies), callback, done](
                      std::string sid, std::string token) mutable {
    auto seq = std::make_shared<sequence>();
    seq->provider = "Twilio";
    seq->send = o.send;
    seq->done = std::move(done);
    for (auto& b : bodies) {
      twilio::send_request req;
      req.from = numbers.first;
      req.to = numbers.second;
      req.body = std::move(b);
      req.status_callback = callback;
      auto form = twilio::send_form(req);
      if (!form) return seq->done({kind::failed, {}, form.err().message});
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
    seq->refused = [](const http::client_response& r) {
      auto a = twilio::parse_send_answer(r.status, r.body);
      delivery_result out{
          kind::failed, {}, "Twilio refused the message: HTTP " + std::to_string(r.status)};
      if (a && a->error_code) {
        out.reason += ", error " + std::to_string(*a->error_code) + " " + a->error_message;
        // 21610: the recipient replied STOP to this number.
        if (*a->error_code == 21610) out.k = kind::refused;
      }
      return out;
    };
    seq->go();
  };
  // The account and its token, then the opt-out state, then the calls.
  o.secret(
      e.tenant(), "twilio.account_sid",
      [o, e, done, send_all](result<std::optional<std::string>> sid) mutable {
        if (!sid.ok()) return done({kind::retry, {}, "secrets: " + sid.err().message});
        if (!*sid) return done({kind::failed, {}, "the tenant has no secret twilio.account_sid"});
        o.secret(
            e.tenant(), "twilio.auth_token",
            [o, e, done, send_all, sid = **sid](result<std::optional<std::string>> token) mutable {
              if (!token.ok()) return done({kind::retry, {}, "secrets: " + token.err().message});
              if (!*token)
                return done({kind::failed, {}, "the tenant has no secret twilio.auth_token"});
              if (!o.opted_out) return send_all(sid, **token);
              o.opted_out(e.tenant(), e.address(),
                          [done, send_all, sid, token = **token](result<bool> out) mutable {
                            if (!out.ok()) return done({kind::retry, {}, out.err().message});
                            if (*out)
                              return done({kind::refused, {}, "the recipient opted out with STOP"});
                            send_all(sid, token);
                          });
            });
      });
}

void deliver_messenger(const channel_delivery_options& o, const parley::runtime::v1::OutboxEntry& e,
                       int index, std::function<void(delivery_result)> done) {
  auto bar = e.address().find('|');
  if (bar == std::string::npos)
    return done({kind::failed, {}, "the conversation's address is not a Messenger address"});
  std::string psid = e.address().substr(bar + 1);
  // The window opens with the user's last message.
  // A human agent's message goes with the HUMAN_AGENT tag, within its 7-day window.
  const auto role = e.from_agent() ? messenger::sender_role::agent : messenger::sender_role::bot;
  const auto last_user = e.last_user_unix_ms() > 0 ? e.last_user_unix_ms() : e.created_unix_ms();
  if (auto why = messenger::check_window(last_user, common::now_unix_ms(), role))
    return done({kind::refused, {}, *why});
  auto bodies = messenger::render_reply(psid, e.messages(index), role);
  if (bodies.empty()) return done(delivery_result::ok());
  o.secret(
      e.tenant(), "messenger.page_token",
      [o, done, bodies = std::move(bodies)](result<std::optional<std::string>> t) mutable {
        if (!t.ok()) return done({kind::retry, {}, "secrets: " + t.err().message});
        if (!*t) return done({kind::failed, {}, "the tenant has no secret messenger.page_token"});
        auto seq = std::make_shared<sequence>();
        seq->provider = "Messenger";
        seq->send = o.send;
        seq->done = std::move(done);
        for (auto& b : bodies) {
          http::client_request c;
          c.method = "POST";
          c.url = messenger::send_api_url(o.messenger_api_base, **t);
          c.headers = {{"Content-Type", "application/json"}};
          c.body = std::move(b);
          c.timeout = o.timeout;
          seq->calls.push_back(std::move(c));
        }
        seq->refused = [](const http::client_response& r) {
          auto a = messenger::parse_send_answer(r.status, r.body);
          delivery_result out{
              kind::failed, {}, "Messenger refused the message: HTTP " + std::to_string(r.status)};
          if (a && a->error_code)
            out.reason += ", error " + std::to_string(*a->error_code) + " " + a->error_message;
          return out;
        };
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
  auto opts = std::make_shared<const channel_delivery_options>(std::move(o));
  return [opts](const parley::runtime::v1::OutboxEntry& e, int index, const std::string& key,
                std::function<void(delivery_result)> done) {
    if (index == e.messages_size() && e.has_handoff()) {
      if (opts->handoff) return opts->handoff(e, std::move(done));
      return done(delivery_result::ok());
    }
    if (index < 0 || index >= e.messages_size()) return done(delivery_result::ok());
    if (e.channel() == "sms") return deliver_sms(*opts, e, index, key, std::move(done));
    if (e.channel() == "messenger") return deliver_messenger(*opts, e, index, std::move(done));
    done({kind::failed, {}, "no sender for channel " + e.channel()});
  };
}

}  // namespace parley::actors
