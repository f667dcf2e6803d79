#include "src/channels/text/form.hpp"

#include "src/channels/errors.hpp"

namespace parley::channels::text {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      const int hi = i + 2 < in.size() ? hex_value(in[i + 1]) : -1;
      const int lo = hi >= 0 ? hex_value(in[i + 2]) : -1;
      if (lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return true;
}

const char upper_hex[] = "0123456789ABCDEF";

bool alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

result<form> parse_form(std::string_view body) {
  form f;
  std::size_t index = 0;
  while (!body.empty()) {
    const std::size_t amp = body.find('&');
    const std::string_view piece = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
    if (piece.empty()) continue;
    ++index;
    const std::size_t eq = piece.find('=');
    std::pair<std::string, std::string> p;
    if (!decode(piece.substr(0, eq), p.first) ||
        (eq != std::string_view::npos && !decode(piece.substr(eq + 1), p.second)))
      return bad("parameter " + std::to_string(index), "malformed percent-encoding");
    f.push_back(std::move(p));
  }
  return f;
}

const std::string* find(const form& f, std::string_view name) {
  for (const auto& [n, v] : f)
    if (n == name) return &v;
  return nullptr;
}

std::size_t count(const form& f, std::string_view name) {
  std::size_t n = 0;
  for (const auto& p : f) n += p.first == name;
  return n;
}

void append_encoded(std::string& out, std::string_view s) {
  for (char c : s) {
    if (alnum(c) || c == '*' || c == '-' || c == '.' || c == '_') {
      out += c;
    } else if (c == ' ') {
      out += '+';
    } else {
      const auto b = static_cast<unsigned char>(c);
      out += '%';
      out += upper_hex[b >> 4];
      out += upper_hex[b & 15];
    }
  }
}

void append_percent_encoded(std::string& out, std::string_view s) {
  for (char c : s) {
    if (alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      const auto b = static_cast<unsigned char>(c);
      out += '%';
      out += upper_hex[b >> 4];
      out += upper_hex[b & 15];
    }
  }
}

std::string encode_form(const form& f) {
  std::string out;
  for (const auto& [name, value] : f) {
    if (!out.empty()) out += '&';
    append_encoded(out, name);
    out += '=';
    append_encoded(out, value);
  }
  return out;
}

}  // namespace parley::channels::text
