// Replies: opt-out keywords, TwiML, and the bodies of outbound messages.

#include <array>

#include "src/channels/text/menu.hpp"
#include "src/channels/text/split.hpp"
#include "src/channels/twilio/twilio.hpp"
#include "src/common/strings.hpp"
#include "src/common/utf8.hpp"

namespace parley::channels::twilio {

namespace {

constexpr std::array<std::string_view, 6> stop_words = {"STOP",   "STOPALL", "UNSUBSCRIBE",
                                                        "CANCEL", "END",     "QUIT"};
constexpr std::array<std::string_view, 3> start_words = {"START", "YES", "UNSTOP"};
constexpr std::array<std::string_view, 2> help_words = {"HELP", "INFO"};

template <std::size_t N>
bool any_of(std::string_view s, const std::array<std::string_view, N>& words) {
  for (auto w : words)
    if (common::iequals(s, w)) return true;
  return false;
}

bool blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

keyword classify_keyword(std::string_view body) {
  while (!body.empty() && blank(body.front())) body.remove_prefix(1);
  while (!body.empty() && blank(body.back())) body.remove_suffix(1);
  if (!body.empty() && (body.back() == '.' || body.back() == '!')) body.remove_suffix(1);
  if (any_of(body, stop_words)) return keyword::stop;
  if (any_of(body, start_words)) return keyword::start;
  if (any_of(body, help_words)) return keyword::help;
  return keyword::none;
}

std::string twiml_message(std::string_view text) {
  std::string clean;
  if (!common::utf8::valid(text)) {
    common::utf8::append_clean(clean, text);
    text = clean;
  }
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>";
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 allows no control character but tab, LF and CR.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n' || c == '\r') out += c;
    }
  }
  out += "</Message></Response>";
  return out;
}

std::vector<std::string> render_sms(const ::parley::bot::v1::Outbound& message) {
  return text::split_text(text::with_numbered_menu(message), max_body_units);
}

}  // namespace parley::channels::twilio
