/// The entity extractors (system entities: number, email, phone, date, datetime,
/// yes_no, money; custom value lists and RE2 regexes), declared in nlu.hpp.
#include "src/bot/nlu.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>

#include <re2/re2.h>

#include "src/bot/text.hpp"

namespace parley::bot::detail {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

constexpr std::string_view small_numbers[] = {
    "zero",     "one",     "two",     "three",     "four",     "five",     "six",
    "seven",    "eight",   "nine",    "ten",       "eleven",   "twelve",   "thirteen",
    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"};

constexpr std::string_view month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                            "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::string_view weekday_names[] = {"monday", "tuesday",  "wednesday", "thursday",
                                              "friday", "saturday", "sunday"};

int month_of(std::string_view w) {
  if (w.size() < 3) return 0;
  for (int i = 0; i < 12; ++i)
    if (w.substr(0, 3) == month_names[i]) {
      // Accept "nov", "november", "sept"; reject words like "mayor".
      static constexpr std::string_view full[] = {"january",   "february", "march",    "april",
                                                  "may",       "june",     "july",     "august",
                                                  "september", "october",  "november", "december"};
      std::string_view f = full[i];
      if (w == f || w.size() == 3 || (i == 8 && w == "sept")) return i + 1;
    }
  return 0;
}

int day_number(std::string_view w) {
  // "26", "26th", "1st", "2nd", "3rd"
  std::size_t i = 0;
  int d = 0;
  while (i < w.size() && is_digit(w[i]) && i < 2) d = d * 10 + (w[i++] - '0');
  if (i == 0) return 0;
  auto rest = w.substr(i);
  if (!rest.empty() && rest != "st" && rest != "nd" && rest != "rd" && rest != "th") return 0;
  return d >= 1 && d <= 31 ? d : 0;
}

}  // namespace

bool extract_number(std::string_view raw, entity_hit& out) {
  for (std::size_t i = 0; i < raw.size(); ++i) {
    bool neg = raw[i] == '-' && i + 1 < raw.size() && is_digit(raw[i + 1]) &&
               (i == 0 || raw[i - 1] == ' ');
    if (!is_digit(raw[i]) && !neg) continue;
    if (i > 0 && (std::isalpha(static_cast<unsigned char>(raw[i - 1])))) {
      while (i < raw.size() && std::isalnum(static_cast<unsigned char>(raw[i]))) ++i;
      continue;
    }
    std::size_t b = i;
    if (neg) ++i;
    std::string digits = neg ? "-" : "";
    while (i < raw.size() && (is_digit(raw[i]) || raw[i] == ',' || raw[i] == '.')) {
      if (raw[i] == '.' && (i + 1 >= raw.size() || !is_digit(raw[i + 1]))) break;
      if (raw[i] == ',' && !(i + 3 < raw.size() + 0 && is_digit(raw[i + 1]))) break;
      if (raw[i] != ',') digits.push_back(raw[i]);
      ++i;
    }
    out.text = std::string(raw.substr(b, i - b));
    char* endp = nullptr;
    double d = std::strtod(digits.c_str(), &endp);
    out.value = format_number(d);
    return true;
  }
  auto norm = normalize(raw);
  for (auto w : words(norm))
    for (int k = 0; k <= 20; ++k)
      if (w == small_numbers[k]) {
        out.text = std::string(w);
        out.value = std::to_string(k);
        return true;
      }
  return false;
}

bool extract_email(std::string_view raw, entity_hit& out) {
  auto ok_local = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '%' ||
           c == '+' || c == '-';
  };
  auto ok_domain = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
  };
  for (auto at = raw.find('@'); at != std::string_view::npos; at = raw.find('@', at + 1)) {
    std::size_t b = at, e = at + 1;
    while (b > 0 && ok_local(raw[b - 1])) --b;
    while (e < raw.size() && ok_domain(raw[e])) ++e;
    while (e > at + 1 && raw[e - 1] == '.') --e;  // sentence-final period
    auto domain = raw.substr(at + 1, e - at - 1);
    auto dot = domain.rfind('.');
    if (b == at || dot == std::string_view::npos || dot == 0 || dot + 2 > domain.size()) continue;
    out.text = std::string(raw.substr(b, e - b));
    out.value = to_lower(out.text);
    return true;
  }
  return false;
}

bool extract_phone(std::string_view raw, entity_hit& out) {
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (!(is_digit(raw[i]) || raw[i] == '+' || raw[i] == '(')) continue;
    std::size_t j = i;
    std::string digits;
    if (raw[j] == '+') {
      digits.push_back('+');
      ++j;
    }
    std::size_t last = j;
    while (j < raw.size() && (is_digit(raw[j]) || raw[j] == ' ' || raw[j] == '-' || raw[j] == '(' ||
                              raw[j] == ')' || raw[j] == '.')) {
      if (is_digit(raw[j])) {
        digits.push_back(raw[j]);
        last = j + 1;
      }
      ++j;
    }
    auto count = digits.size() - (digits[0] == '+' ? 1 : 0);
    if (count >= 7 && count <= 15) {
      out.text = std::string(raw.substr(i, last - i));
      out.value = digits;
      return true;
    }
    i = j;
  }
  return false;
}

bool extract_date(std::string_view raw, std::string_view norm, std::int64_t now_unix,
                  entity_hit& out, const zone* z) {
  // ISO 2026-11-26 or US 11/26/2026.
  for (std::size_t i = 0; i + 8 <= raw.size(); ++i) {
    if (!is_digit(raw[i]) || (i > 0 && is_digit(raw[i - 1]))) continue;
    int a = 0, b = 0, c = 0;
    char s1 = 0, s2 = 0;
    int n = 0;
    if (std::sscanf(std::string(raw.substr(i, 10)).c_str(), "%d%c%d%c%d%n", &a, &s1, &b, &s2, &c,
                    &n) == 5 &&
        s1 == s2 && (s1 == '-' || s1 == '/')) {
      civil_date d{};
      if (a > 31)
        d = {a, static_cast<unsigned>(b), static_cast<unsigned>(c)};
      else
        d = {c < 100 ? 2000 + c : c, static_cast<unsigned>(a), static_cast<unsigned>(b)};
      if (valid_date(d)) {
        out.text = std::string(raw.substr(i, static_cast<std::size_t>(n)));
        out.value = format_date(d);
        return true;
      }
    }
  }
  auto today = date_from_unix(now_unix + (z ? z->offset_at(now_unix) : 0));
  auto today_days = days_from_civil(today);
  auto ws = words(norm);
  for (std::size_t i = 0; i < ws.size(); ++i) {
    auto w = ws[i];
    std::int64_t offset = -1;
    if (w == "today" || w == "tonight")
      offset = 0;
    else if (w == "tomorrow" || w == "tmrw" || w == "tommorow")
      offset = 1;
    else if (w == "yesterday")
      offset = -1000000;
    if (offset == 0 || offset == 1) {
      if (offset == 1 && i >= 2 && ws[i - 1] == "after" && ws[i - 2] == "day") offset = 2;
      out.text = std::string(w);
      out.value = format_date(civil_from_days(today_days + offset));
      return true;
    }
    if (offset == -1000000) {
      out.text = std::string(w);
      out.value = format_date(civil_from_days(today_days - 1));
      return true;
    }
    for (int k = 0; k < 7; ++k) {
      if (w != weekday_names[k] && w != weekday_names[k].substr(0, 3)) continue;
      // 1970-01-01 was a Thursday (index 3 with Monday = 0).
      auto wd = static_cast<int>(((today_days % 7) + 7 + 3) % 7);
      int delta = (k - wd + 7) % 7;
      if (delta == 0) delta = 7;  // "monday" said on a Monday means next week
      out.text = std::string(w);
      out.value = format_date(civil_from_days(today_days + delta));
      return true;
    }
    int m = month_of(w);
    if (m) {
      int d = 0;
      if (i + 1 < ws.size()) d = day_number(ws[i + 1]);
      // The word after holds the year when the day came before ("3 December 2027").
      std::size_t year_at = i + 2;
      if (!d && i > 0 && (d = day_number(ws[i - 1]))) year_at = i + 1;
      if (!d && i >= 2 && ws[i - 1] == "of" && (d = day_number(ws[i - 2]))) year_at = i + 1;
      if (!d) continue;
      civil_date cd{today.year, static_cast<unsigned>(m), static_cast<unsigned>(d)};
      // A year after the day and month, or the next occurrence of that date.
      if (year_at < ws.size() && ws[year_at].size() == 4 && is_digit(ws[year_at][0]))
        cd.year = std::atoi(std::string(ws[year_at]).c_str());
      else if (valid_date(cd) && days_from_civil(cd) < today_days)
        ++cd.year;
      if (!valid_date(cd)) continue;
      out.text = std::string(w);
      out.value = format_date(cd);
      return true;
    }
  }
  return false;
}

namespace {

/// Words of a lower-cased text for times: runs of letters, digits and ':', so
/// that "15:30" and "3:30pm" stay whole. A 'T' between two digits (ISO
/// 2026-12-03T14:00) separates, like a space.
std::vector<std::string> time_tokens(std::string_view raw) {
  std::string t = to_lower(raw);
  for (std::size_t i = 1; i + 1 < t.size(); ++i)
    if (t[i] == 't' && is_digit(t[i - 1]) && is_digit(t[i + 1])) t[i] = ' ';
  std::vector<std::string> out;
  std::string cur;
  for (char c : t) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == ':' ||
        static_cast<unsigned char>(c) >= 0x80) {
      cur.push_back(c);
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

enum class time_scan { none, found, invalid };

/// The first time of day in the tokens: "15:30", "3:30 pm", "3pm", "at 9",
/// "noon", "midnight". `invalid` for one that cannot be (25:00, 13pm, 10:75).
time_scan scan_time(const std::vector<std::string>& ts, bool tonight, int& seconds,
                    std::string& text) {
  for (std::size_t i = 0; i < ts.size(); ++i) {
    const std::string& t = ts[i];
    if (t == "noon" || t == "midday" || t == "midnight") {
      seconds = t == "midnight" ? 0 : 12 * 3600;
      text = t;
      return time_scan::found;
    }
    if (!is_digit(t[0])) continue;
    std::size_t j = 0;
    int h = 0, m = 0, sec = 0;
    while (j < t.size() && is_digit(t[j]) && j < 3) h = h * 10 + (t[j++] - '0');
    if (j > 2) continue;  // a year or a longer number
    bool colon = false;
    if (j < t.size() && t[j] == ':') {
      if (j + 3 > t.size() || !is_digit(t[j + 1]) || !is_digit(t[j + 2])) continue;
      colon = true;
      m = (t[j + 1] - '0') * 10 + (t[j + 2] - '0');
      j += 3;
      if (j < t.size() && t[j] == ':') {
        if (j + 3 > t.size() || !is_digit(t[j + 1]) || !is_digit(t[j + 2])) continue;
        sec = (t[j + 1] - '0') * 10 + (t[j + 2] - '0');
        j += 3;
      }
    }
    std::string_view suffix = std::string_view(t).substr(j);
    std::size_t used = i;
    if (suffix.empty() && i + 1 < ts.size() && (ts[i + 1] == "am" || ts[i + 1] == "pm")) {
      suffix = ts[i + 1];
      used = i + 1;
    }
    bool ampm = suffix == "am" || suffix == "pm";
    if (!suffix.empty() && !ampm && suffix != "h") continue;
    bool after_at = i > 0 && (ts[i - 1] == "at" || ts[i - 1] == "by");
    if (!colon && !ampm && !after_at) continue;  // "Dec 3", "2 people"
    if (ampm) {
      if (h < 1 || h > 12) return time_scan::invalid;
      h = h % 12 + (suffix == "pm" ? 12 : 0);
    } else if (h > 23) {
      return time_scan::invalid;
    } else if (tonight && h < 12) {
      h += 12;  // "tonight at 8"
    }
    if (m > 59 || sec > 59) return time_scan::invalid;
    seconds = h * 3600 + m * 60 + sec;
    text = t;
    for (std::size_t k = i + 1; k <= used; ++k) text += " " + ts[k];
    return time_scan::found;
  }
  return time_scan::none;
}

/// "in 2 hours", "in an hour", "in half an hour", "in 3 days": the amount in
/// seconds (minutes and hours) or in days.
bool scan_offset(const std::vector<std::string>& ts, std::int64_t& seconds, std::int64_t& days,
                 std::string& text) {
  for (std::size_t i = 0; i + 2 < ts.size(); ++i) {
    if (ts[i] != "in" && ts[i] != "within") continue;
    std::size_t u = i + 2;
    double n = -1;
    const std::string& a = ts[i + 1];
    if (a == "a" || a == "an" || a == "one")
      n = 1;
    else if (a == "half" && u + 1 < ts.size() && (ts[u] == "an" || ts[u] == "a"))
      n = 0.5, ++u;
    else if (all_digits(a) && a.size() <= 4)
      n = std::atoi(a.c_str());
    else
      for (int k = 2; k <= 12; ++k)
        if (a == small_numbers[k]) n = k;
    if (n < 0 || u >= ts.size()) continue;
    std::string unit = ts[u];
    if (unit.size() > 1 && unit.back() == 's') unit.pop_back();
    seconds = days = 0;
    if (unit == "minute" || unit == "min")
      seconds = static_cast<std::int64_t>(n * 60);
    else if (unit == "hour" || unit == "hr")
      seconds = static_cast<std::int64_t>(n * 3600);
    else if (unit == "day" && n >= 1)
      days = static_cast<std::int64_t>(n);
    else if (unit == "week" && n >= 1)
      days = static_cast<std::int64_t>(n) * 7;
    else
      continue;
    text = ts[i];
    for (std::size_t k = i + 1; k <= u; ++k) text += " " + ts[k];
    return true;
  }
  return false;
}

/// A date the user wrote that extract_date refused (Feb 30, 2026-02-30): then
/// the datetime is refused too, rather than read as a bare time today.
bool date_like(const std::vector<std::string>& ts) {
  for (std::size_t i = 0; i < ts.size(); ++i) {
    if (month_of(ts[i]) &&
        ((i + 1 < ts.size() && is_digit(ts[i + 1][0])) || (i > 0 && is_digit(ts[i - 1][0]))))
      return true;
    if (ts[i].size() == 4 && all_digits(ts[i]) && i + 2 < ts.size() && all_digits(ts[i + 1]) &&
        all_digits(ts[i + 2]))
      return true;
  }
  return false;
}

std::string two(int v) {
  char b[3] = {static_cast<char>('0' + v / 10), static_cast<char>('0' + v % 10), 0};
  return b;
}

/// "YYYY-MM-DDTHH:MM:SS+HH:MM" for the local wall time `local` in `z`.
std::string format_local(std::int64_t local, const zone* z) {
  std::int64_t utc = z ? z->to_utc(local) : local;
  int off = z ? z->offset_at(utc) : 0;
  local = utc + off;  // a time in a forward shift's gap moves past it
  std::int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
  int secs = static_cast<int>(local - days * 86400);
  std::string out = format_date(civil_from_days(days));
  out += "T" + two(secs / 3600) + ":" + two(secs / 60 % 60) + ":" + two(secs % 60);
  out += off < 0 ? "-" : "+";
  int a = off < 0 ? -off : off;
  out += two(a / 3600) + ":" + two(a / 60 % 60);
  return out;
}

}  // namespace

bool extract_datetime(std::string_view raw, std::string_view norm, std::int64_t now_unix,
                      entity_hit& out, const zone* z) {
  auto ts = time_tokens(raw);
  std::int64_t now_local = now_unix + (z ? z->offset_at(now_unix) : 0);
  std::int64_t off_s = 0, off_d = 0;
  std::string text;
  if (scan_offset(ts, off_s, off_d, text)) {
    out.text = text;
    if (off_d)
      out.value = format_local(now_local + off_d * 86400, z);
    else
      out.value = format_local(now_unix + off_s + (z ? z->offset_at(now_unix + off_s) : 0), z);
    return true;
  }
  bool tonight = std::find(ts.begin(), ts.end(), "tonight") != ts.end();
  int tod = 0;
  std::string time_text;
  auto t = scan_time(ts, tonight, tod, time_text);
  if (t == time_scan::invalid) return false;
  entity_hit date_hit;
  bool has_date = extract_date(raw, norm, now_unix, date_hit, z);
  if (!has_date && date_like(ts)) return false;
  if (!has_date && t == time_scan::none) return false;
  std::int64_t today = now_local >= 0 ? now_local / 86400 : (now_local - 86399) / 86400;
  std::int64_t day = today;
  if (has_date) {
    // extract_date's value is always YYYY-MM-DD (a four-digit year).
    const std::string& v = date_hit.value;
    if (v.size() != 10) return false;  // a year past 9999
    auto num = [&v](std::size_t at, std::size_t n) {
      unsigned r = 0;
      for (std::size_t k = at; k < at + n; ++k) r = r * 10 + static_cast<unsigned>(v[k] - '0');
      return r;
    };
    day = days_from_civil({static_cast<int>(num(0, 4)), num(5, 2), num(8, 2)});
    if (t == time_scan::none && tonight) tod = 20 * 3600;
  } else if (today * 86400 + tod <= now_local) {
    ++day;  // a bare time already past today means tomorrow
  }
  out.text = has_date ? date_hit.text : std::string();
  if (t == time_scan::found) out.text += (out.text.empty() ? "" : " ") + time_text;
  out.value = format_local(day * 86400 + tod, z);
  return true;
}

bool extract_yes_no(std::string_view norm, entity_hit& out) {
  static constexpr std::string_view yes[] = {
      "yes",        "y",       "yeah",    "yep",   "yup",         "sure",
      "ok",         "okay",    "correct", "right", "affirmative", "absolutely",
      "definitely", "confirm", "please",  "yess",  "ys",          "ya"};
  static constexpr std::string_view no[] = {"no",     "n",        "nope",  "nah",  "not", "never",
                                            "cancel", "negative", "wrong", "dont", "nop"};
  for (auto w : words(norm)) {
    for (auto n : no)
      if (w == n) {
        out.text = std::string(w);
        out.value = "no";
        return true;
      }
    for (auto y : yes)
      if (w == y) {
        out.text = std::string(w);
        out.value = "yes";
        return true;
      }
  }
  return false;
}

bool extract_money(std::string_view raw, entity_hit& out) {
  static constexpr std::string_view currency_words[] = {
      "dollars", "dollar", "usd", "eur", "euros", "euro", "gbp", "pounds", "bucks"};
  for (std::size_t i = 0; i < raw.size(); ++i) {
    bool sym =
        raw[i] == '$' || raw.substr(i, 2) == "\xC2\xA3" || raw.substr(i, 3) == "\xE2\x82\xAC";
    if (sym) {
      std::size_t j = i + (raw[i] == '$' ? 1 : raw[i] == '\xC2' ? 2 : 3);
      while (j < raw.size() && raw[j] == ' ') ++j;
      entity_hit n;
      if (j < raw.size() && is_digit(raw[j]) && extract_number(raw.substr(j), n)) {
        out.text = std::string(raw.substr(i, j - i)) + n.text;
        out.value = n.value;
        return true;
      }
    }
  }
  entity_hit n;
  auto norm = normalize(raw);
  auto ws = words(norm);
  for (std::size_t i = 0; i + 1 < ws.size(); ++i) {
    if (!is_digit(ws[i][0])) continue;
    for (auto c : currency_words)
      if (ws[i + 1] == c && extract_number(raw, n)) {
        out.text = n.text;
        out.value = n.value;
        return true;
      }
  }
  return false;
}

std::shared_ptr<const re2::RE2> compile_regex(const std::string& pattern, bool case_sensitive,
                                              std::string& why) {
  RE2::Options opt;
  opt.set_log_errors(false);
  opt.set_case_sensitive(case_sensitive);
  auto re = std::make_shared<const RE2>(pattern, opt);
  if (re->ok()) return re;
  const std::string& arg = re->error_arg();
  const std::string linear = "regexes run on RE2, in time linear in the message, which rules out ";
  std::string look;  // the lookaround operator RE2 stopped at, if any
  if (re->error_code() == RE2::ErrorBadPerlOp) {
    if (arg == "(?=" || arg == "(?!")
      look = arg;
    else if (arg == "(?<" && pattern.find("(?<=") != std::string::npos)
      look = "(?<=";
    else if (arg == "(?<" && pattern.find("(?<!") != std::string::npos)
      look = "(?<!";
  }
  if (re->error_code() == RE2::ErrorBadEscape && arg.size() == 2 &&
      ((arg[1] >= '1' && arg[1] <= '9') || arg[1] == 'k')) {
    why = "regex uses a backreference ('" + arg + "'): " + linear + "backreferences";
  } else if (!look.empty()) {
    why = std::string("regex uses a ") + (look[2] == '<' ? "lookbehind" : "lookahead") + " ('" +
          look + "'): " + linear + "lookaheads and lookbehinds";
  } else if (re->error_code() == RE2::ErrorBadPerlOp && arg == "(?<") {
    why = "regex does not compile: " + re->error() + " (a named group is written (?P<name>...))";
  } else if (re->error_code() == RE2::ErrorBadEscape && arg == "\\u") {
    why = "regex does not compile: " + re->error() + " (a code point is written \\x{20AC})";
  } else {
    why = "regex does not compile: " + re->error();
  }
  return nullptr;
}

extractor::extractor(const v1::Entity& e, std::shared_ptr<const re2::RE2> re, const zone* z)
    : e_(&e), zone_(z), re_(std::move(re)) {
  for (const auto& v : e.values()) {
    synonyms_.emplace_back(" " + normalize(v.value()) + " ", v.value());
    for (const auto& s : v.synonyms()) synonyms_.emplace_back(" " + s + " ", v.value());
  }
  std::stable_sort(synonyms_.begin(), synonyms_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

bool extractor::extract(std::string_view raw, std::string_view norm, std::int64_t now_unix,
                        entity_hit& out) const {
  if (!e_) return false;
  switch (e_->system()) {
    case v1::SYS_NUMBER:
      return extract_number(raw, out);
    case v1::SYS_EMAIL:
      return extract_email(raw, out);
    case v1::SYS_PHONE:
      return extract_phone(raw, out);
    case v1::SYS_DATE:
      return extract_date(raw, norm, now_unix, out, zone_);
    case v1::SYS_DATETIME:
      return extract_datetime(raw, norm, now_unix, out, zone_);
    case v1::SYS_YES_NO:
      return extract_yes_no(norm, out);
    case v1::SYS_MONEY:
      return extract_money(raw, out);
    case v1::SYS_TEXT: {
      auto t = trim(raw);
      if (t.empty()) return false;
      out.text = t;
      out.value = t;
      return true;
    }
    default:
      break;
  }
  if (re_) {
    re2::StringPiece m;
    if (re_->Match(re2::StringPiece(raw.data(), raw.size()), 0, raw.size(), RE2::UNANCHORED, &m,
                   1)) {
      out.text.assign(m.data(), m.size());
      out.value = out.text;
      return true;
    }
  }
  if (!synonyms_.empty()) {
    std::string padded;
    padded.reserve(norm.size() + 2);
    padded.append(" ").append(norm).append(" ");
    for (const auto& [syn, value] : synonyms_)
      if (padded.find(syn) != std::string::npos) {
        out.text = syn.substr(1, syn.size() - 2);
        out.value = value;
        return true;
      }
  }
  return false;
}

}  // namespace parley::bot::detail
