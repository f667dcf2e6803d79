// libFuzzer entry for the Direct Line codec's inbound side: the input is a POSTed
// activity's raw body, and also a bearer credential and a query. Any crash, sanitizer
// report or escaping exception is a bug; so is a refusal that does not name its field,
// an echo that is not JSON or does not carry channelData back unchanged, or a
// credential accepted that was not made by the codec.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "src/channels/directline/directline.hpp"
#include "src/channels/json/reader.hpp"

namespace dl = parley::channels::directline;
namespace json = parley::channels::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  (void)dl::parse_secret(body);
  if (dl::verify_token(body, "key", 0)) std::abort();  // no forgery without the key
  (void)dl::watermark_of(body);
  (void)dl::base64url_decode(body);
  auto a = dl::parse_activity(body);
  if (!a) {
    if (a.err().message.find(": ") == std::string::npos) std::abort();
    return 0;
  }
  std::string echo = dl::with_id(dl::render_user_echo(*a, "conv", 0), dl::activity_id("conv", 1));
  json::document doc;
  if (!json::read(echo, doc)) std::abort();
  if (!a->channel_data.empty()) {
    // channelData read back from the echo writes the same text again.
    auto again = dl::parse_activity(echo);
    if (!again || again->channel_data != a->channel_data) std::abort();
  }
  dl::bot_message m{a->text, {a->text, a->value_text}};
  std::string reply = dl::render_bot_message(m, "bot", "conv", "conv|0000001", 0);
  if (!json::read(reply, doc)) std::abort();
  return 0;
}
