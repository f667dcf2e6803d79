#pragma once
/// A fake of the third parties behind the asynchronous channels, on loopback: Twilio's
/// Messages API (POST /2010-04-01/Accounts/{sid}/Messages.json) and Messenger's Send API
/// (POST /v19.0/me/messages). A real HTTP server speaking their documented protocols
/// (docs: ../shared/protocols.md): it records every send, answers as they do (201 with a
/// message sid; 200 with recipient and message ids), or answers what fail_next() queued.

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "src/channels/text/form.hpp"
#include "src/channels/twilio/twilio.hpp"
#include "src/http/client.hpp"
#include "src/http/http.hpp"

namespace parley::test {

/// Posts `params` to `url` as Twilio posts a webhook: form-encoded, signed with
/// `auth_token` (X-Twilio-Signature). A failed request gives a failure and status 0.
inline http::client_response post_twilio_webhook(const std::string& url,
                                                 const channels::text::form& params,
                                                 const std::string& auth_token) {
  namespace text = channels::text;
  std::string form;
  for (const auto& [k, v] : params) {
    if (!form.empty()) form += '&';
    text::append_encoded(form, k);
    form += '=';
    text::append_encoded(form, v);
  }
  http::client_request r;
  r.method = "POST";
  r.url = url;
  r.headers = {
      {"Content-Type", "application/x-www-form-urlencoded"},
      {"X-Twilio-Signature", channels::twilio::compute_signature(auth_token, url, params)}};
  r.body = form;
  r.timeout = std::chrono::seconds(20);
  auto res = http::fetch(r);
  EXPECT_TRUE(res.ok()) << "POST " << url;
  return res.ok() ? *res : http::client_response{};
}

/// One message Parley asked Twilio to send, and when it arrived.
struct twilio_send {
  std::string to, from, body, status_callback, authorization, idempotency;
  std::chrono::steady_clock::time_point at;
};

class fake_twilio {
 public:
  using json = nlohmann::json;

  /// Answers Twilio calls for account `account_sid` (404 for another) and Messenger
  /// calls with `page_token`.
  fake_twilio(std::string account_sid, std::string page_token)
      : account_sid_(std::move(account_sid)), page_token_(std::move(page_token)) {
    http::router r;
    r.add_prefix("POST", "/2010-04-01/Accounts/", "/2010-04-01/Accounts",
                 [this](http::request&& req, http::responder reply) { reply(handle(req)); });
    // Messenger's Send API, under the API version of channels.messenger_api_base.
    r.add("POST", "/v19.0/me/messages", [this](http::request&& req, http::responder reply) {
      std::lock_guard<std::mutex> lock(m_);
      auto j = json::parse(req.body, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << req.body;
      EXPECT_EQ(req.query, "access_token=" + page_token_) << "the page token, in the query";
      messenger_.push_back(j);
      cv_.notify_all();
      reply(http::response::json(200, json{{"recipient_id", j["recipient"].value("id", "")},
                                           {"message_id", "m_" + std::to_string(messenger_.size())}}
                                          .dump()));
    });
    server_ = std::make_unique<http::server>(http::server_options{}, std::move(r),
                                             std::make_shared<prometheus::Registry>());
    EXPECT_TRUE(server_->start().ok());
  }
  ~fake_twilio() { server_->stop(std::chrono::seconds(1)); }
  fake_twilio(const fake_twilio&) = delete;
  fake_twilio& operator=(const fake_twilio&) = delete;

  std::string base() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  /// The next `n` sends are answered `res` (and not recorded as sent).
  void fail_next(int n, http::response res) {
    std::lock_guard<std::mutex> lock(m_);
    for (int i = 0; i < n; ++i) forced_.push_back(res);
  }
  /// Waits until `n` messages were sent in all; a copy of them.
  std::vector<twilio_send> wait_sent(
      std::size_t n, std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait_for(lock, deadline, [&] { return sent_.size() >= n; });
    return sent_;
  }
  /// Waits until `to` got a body holding `needle`; that message (empty body: none
  /// within `deadline`).
  twilio_send wait_for(const std::string& to, const std::string& needle,
                       std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> lock(m_);
    twilio_send out;
    cv_.wait_for(lock, deadline, [&] {
      for (const auto& s : sent_)
        if (s.to == to && s.body.find(needle) != std::string::npos) {
          out = s;
          return true;
        }
      return false;
    });
    return out;
  }
  std::vector<twilio_send> all() {
    std::lock_guard<std::mutex> lock(m_);
    return sent_;
  }
  /// The bodies sent to `to`, in order.
  std::vector<std::string> bodies_to(const std::string& to) {
    std::lock_guard<std::mutex> lock(m_);
    std::vector<std::string> out;
    for (const auto& s : sent_)
      if (s.to == to) out.push_back(s.body);
    return out;
  }
  /// Waits until Messenger's Send API got `n` calls; a copy of them.
  std::vector<json> wait_messenger(std::size_t n,
                                   std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait_for(lock, deadline, [&] { return messenger_.size() >= n; });
    return messenger_;
  }
  int refused() {
    std::lock_guard<std::mutex> lock(m_);
    return refused_;
  }

 private:
  http::response handle(const http::request& req) {
    std::lock_guard<std::mutex> lock(m_);
    const std::string want = "/2010-04-01/Accounts/" + account_sid_ + "/Messages.json";
    if (req.path != want)
      return http::response::json(404, R"({"code":20404,"message":"not found"})");
    if (!forced_.empty()) {
      auto res = forced_.front();
      forced_.pop_front();
      ++refused_;
      cv_.notify_all();
      return res;
    }
    namespace text = channels::text;
    auto form = text::parse_form(req.body);
    EXPECT_TRUE(form.ok());
    auto get = [&](const char* name) {
      const auto* v = form.ok() ? text::find(*form, name) : nullptr;
      return v ? *v : std::string();
    };
    twilio_send s;
    s.to = get("To");
    s.from = get("From");
    s.body = get("Body");
    s.status_callback = get("StatusCallback");
    s.authorization = req.header("Authorization") ? *req.header("Authorization") : "";
    s.idempotency =
        req.header("I-Twilio-Idempotency-Token") ? *req.header("I-Twilio-Idempotency-Token") : "";
    s.at = std::chrono::steady_clock::now();
    sent_.push_back(s);
    cv_.notify_all();
    return http::response::json(
        201, json{{"sid", "SM" + std::to_string(sent_.size())}, {"status", "queued"}}.dump());
  }

  const std::string account_sid_, page_token_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<http::response> forced_;
  std::vector<twilio_send> sent_;
  std::vector<json> messenger_;
  int refused_ = 0;
  std::unique_ptr<http::server> server_;
};

}  // namespace parley::test
