#include "src/channels/text/menu.hpp"

#include "src/common/strings.hpp"

namespace parley::channels::text {

namespace {

bool blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// `s` trimmed, each run of blanks inside it one space.
std::string collapsed(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool gap = false;
  for (char c : s) {
    if (blank(c)) {
      gap = !out.empty();
      continue;
    }
    if (gap) out += ' ';
    gap = false;
    out += c;
  }
  return out;
}

const std::string& label_or_payload(const ::parley::bot::v1::Choice& c) {
  return c.label().empty() ? c.payload() : c.label();
}

}  // namespace

std::string numbered_menu(
    const google::protobuf::RepeatedPtrField<::parley::bot::v1::Choice>& choices) {
  std::string out;
  const int n = choices.size();
  for (int i = 0; i < n; ++i) {
    if (i == 0)
      out += "Reply ";
    else if (i == n - 1)
      out += " or ";
    else
      out += ", ";
    out += std::to_string(i + 1);
    out += " for ";
    out += collapsed(label_or_payload(choices[i]));
  }
  if (n > 0) out += '.';
  return out;
}

std::string with_numbered_menu(const ::parley::bot::v1::Outbound& message) {
  std::string out = message.text();
  if (message.choices_size() == 0) return out;
  if (!out.empty()) out += '\n';
  out += numbered_menu(message.choices());
  return out;
}

std::optional<std::size_t> match_choice(std::string_view answer,
                                        const ::parley::bot::v1::Outbound& offered) {
  const std::string a = collapsed(answer);
  std::string_view num = a;
  if (!num.empty() && num.front() == '#') num.remove_prefix(1);
  if (!num.empty() && (num.back() == '.' || num.back() == ')')) num.remove_suffix(1);
  if (!num.empty() && num.size() <= 9 &&
      num.find_first_not_of("0123456789") == std::string_view::npos) {
    std::size_t n = 0;
    for (char c : num) n = n * 10 + static_cast<std::size_t>(c - '0');
    if (n >= 1 && n <= static_cast<std::size_t>(offered.choices_size())) return n - 1;
  }
  if (a.empty()) return std::nullopt;
  for (int i = 0; i < offered.choices_size(); ++i)
    if (common::iequals(a, collapsed(label_or_payload(offered.choices(i)))))
      return static_cast<std::size_t>(i);
  return std::nullopt;
}

}  // namespace parley::channels::text
