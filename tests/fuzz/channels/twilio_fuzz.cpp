// libFuzzer entry for the Twilio codec's inbound side: the input is a webhook's form
// body. Any crash, sanitizer report or escaping exception is a bug; so is a
// refusal that does not name its parameter, text that is not well-formed UTF-8, a
// form that does not survive encoding, or a signature that does not verify.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "src/channels/text/form.hpp"
#include "src/channels/text/menu.hpp"
#include "src/channels/text/split.hpp"
#include "src/channels/twilio/twilio.hpp"
#include "src/common/utf8.hpp"

namespace twilio = parley::channels::twilio;
namespace text = parley::channels::text;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  auto form = text::parse_form(body);
  if (!form) {
    if (form.err().message.find(": ") == std::string::npos) std::abort();
    return 0;
  }
  auto again = text::parse_form(text::encode_form(*form));
  if (!again || *again != *form) std::abort();
  const std::string url = "https://bot.example.com/twilio/sms";
  const std::string sig = twilio::compute_signature("12345", url, *form);
  if (!twilio::verify_signature("12345", url, *form, sig)) std::abort();
  if (twilio::verify_signature("54321", url, *form, sig)) std::abort();
  auto in = twilio::parse_inbound(*form);
  if (!in) {
    if (in.err().message.find(": ") == std::string::npos) std::abort();
    return 0;
  }
  using parley::common::utf8::valid;
  if (in->message_sid.empty() || !valid(in->body) || !valid(in->from) || !valid(in->to))
    std::abort();
  for (const auto& m : in->media)
    if (m.url.empty() || !valid(m.url) || !valid(m.content_type)) std::abort();
  (void)twilio::classify_keyword(in->body);
  // The body as a reply and as a menu answer.
  parley::bot::v1::Outbound out;
  out.set_text(in->body);
  out.add_choices()->set_label(in->body.substr(0, 40));
  for (const auto& part : twilio::render_sms(out))
    if (!valid(part) || text::utf16_length(part) > twilio::max_body_units) std::abort();
  (void)text::match_choice(in->body, out);
  (void)twilio::twiml_message(in->body);
  return 0;
}
