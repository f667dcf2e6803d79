// libFuzzer entry for the Messenger codec's inbound side: the input is a webhook's
// raw body. Any crash, sanitizer report or escaping exception is a bug; so is a
// refusal or an invalid event that does not name its field, an event without its
// ids, a signature that does not verify, or a reply body that is not JSON.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "src/channels/json/reader.hpp"
#include "src/channels/messenger/messenger.hpp"
#include "src/channels/text/split.hpp"

namespace messenger = parley::channels::messenger;
namespace json = parley::channels::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  const std::string sig = messenger::compute_signature("appsecret", body);
  if (!messenger::verify_signature("appsecret", body, sig)) std::abort();
  if (messenger::verify_signature("appsecreT", body, sig)) std::abort();
  (void)messenger::verify_subscription(body, "token");
  auto w = messenger::parse_webhook(body);
  if (!w) {
    if (w.err().message.find(": ") == std::string::npos) std::abort();
    return 0;
  }
  for (const auto& e : w->events) {
    using k = messenger::event_kind;
    if (e.kind == k::invalid && e.problem.find(": ") == std::string::npos) std::abort();
    if (e.kind != k::invalid && (e.sender_id.empty() || e.recipient_id.empty())) std::abort();
    if (e.kind != k::message) continue;
    // The user's text and quick reply as a reply: every body is JSON.
    parley::bot::v1::Outbound out;
    out.set_text(e.text);
    if (e.quick_reply_payload) {
      auto* c = out.add_choices();
      c->set_label(e.quick_reply_payload->substr(0, 30));
      c->set_payload(*e.quick_reply_payload);
    }
    for (const auto& reply : messenger::render_reply(e.sender_id, out)) {
      json::document doc;
      if (!json::read(reply, doc)) std::abort();
    }
    json::document doc;
    if (!json::read(messenger::typing_on(e.sender_id), doc)) std::abort();
  }
  return 0;
}
