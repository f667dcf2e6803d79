#include "src/http/egress.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace parley::http {

std::optional<ip_address> parse_ip(std::string_view text) {
  std::string s(text);
  ip_address a;
  if (s.find(':') == std::string::npos) {
    in_addr v4{};
    if (inet_pton(AF_INET, s.c_str(), &v4) != 1) return std::nullopt;
    std::memcpy(a.bytes.data(), &v4, 4);
    return a;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) != 1) return std::nullopt;
  a.v6 = true;
  std::memcpy(a.bytes.data(), &v6, 16);
  return a;
}

std::string to_string(const ip_address& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(a.v6 ? AF_INET6 : AF_INET, a.bytes.data(), buf, sizeof buf);
  return buf;
}

namespace {

/// The IPv4 address an IPv4-mapped (::ffff:a.b.c.d) or IPv4-compatible (::a.b.c.d,
/// not :: or ::1) IPv6 address carries; other addresses unchanged. The kernel sends
/// a connection to ::ffff:127.0.0.1 to 127.0.0.1, so the policy must see it as that.
ip_address unmapped(const ip_address& a) {
  if (!a.v6) return a;
  const auto& b = a.bytes;
  bool zeros10 = std::all_of(b.begin(), b.begin() + 10, [](uint8_t x) { return x == 0; });
  if (!zeros10) return a;
  bool mapped = b[10] == 0xff && b[11] == 0xff;
  bool compat = b[10] == 0 && b[11] == 0 &&
                (b[12] | b[13] | b[14]) != 0;  // ::a.b.c.d with a.b.c ≠ 0: not :: or ::1
  if (!mapped && !compat) return a;
  ip_address v4;
  std::copy(b.begin() + 12, b.end(), v4.bytes.begin());
  return v4;
}

bool prefix_match(const uint8_t* a, const uint8_t* base, int prefix) {
  int full = prefix / 8;
  if (std::memcmp(a, base, static_cast<std::size_t>(full)) != 0) return false;
  int rest = prefix % 8;
  if (rest == 0) return true;
  auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == (base[full] & mask);
}

struct v4_range {
  uint8_t b[4];
  int prefix;
  const char* what;
};
constexpr v4_range v4_restricted[] = {
    {{0, 0, 0, 0}, 8, "unspecified"},  // "this network": 0.0.0.0 reaches the host itself
    {{127, 0, 0, 0}, 8, "loopback"},
    {{169, 254, 0, 0}, 16, "link-local"},
    {{10, 0, 0, 0}, 8, "private"},
    {{172, 16, 0, 0}, 12, "private"},
    {{192, 168, 0, 0}, 16, "private"},
    {{100, 64, 0, 0}, 10, "private"},  // carrier-grade NAT, shared address space
    {{255, 255, 255, 255}, 32, "broadcast"},
    {{224, 0, 0, 0}, 4, "multicast"},
    {{240, 0, 0, 0}, 4, "reserved"},
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.remove_prefix(1);
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.remove_suffix(1);
  return v;
}

std::optional<uint16_t> parse_port(std::string_view p) {
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  int n = std::stoi(std::string(p));
  if (n < 1 || n > 65535) return std::nullopt;
  return static_cast<uint16_t>(n);
}

bool valid_host_name(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  for (char c : h)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_')
      return false;
  return true;
}

std::vector<ip_address> read_interface_addresses() {
  std::vector<ip_address> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (auto* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    ip_address a;
    if (i->ifa_addr->sa_family == AF_INET) {
      std::memcpy(a.bytes.data(), &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      a.v6 = true;
      std::memcpy(a.bytes.data(), &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
    } else {
      continue;
    }
    out.push_back(a);
  }
  freeifaddrs(list);
  return out;
}

}  // namespace

bool in_network(const ip_address& addr, const ip_address& base_addr, int prefix) {
  ip_address a = unmapped(addr);
  ip_address base = unmapped(base_addr);
  if (a.v6 != base.v6) return false;
  return prefix_match(a.bytes.data(), base.bytes.data(), prefix);
}

std::optional<std::string> restricted_class(const ip_address& addr) {
  ip_address a = unmapped(addr);
  const auto& b = a.bytes;
  if (!a.v6) {
    for (const auto& r : v4_restricted)
      if (prefix_match(b.data(), r.b, r.prefix)) return std::string(r.what);
    return std::nullopt;
  }
  bool all_zero = std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
  if (all_zero) return std::string("unspecified");
  bool loop =
      std::all_of(b.begin(), b.begin() + 15, [](uint8_t x) { return x == 0; }) && b[15] == 1;
  if (loop) return std::string("loopback");
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return std::string("link-local");  // fe80::/10
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
    return std::string("private");                           // fec0::/10, site-local
  if ((b[0] & 0xfe) == 0xfc) return std::string("private");  // fc00::/7
  if (b[0] == 0xff) return std::string("multicast");
  return std::nullopt;
}

bool is_own_host(const ip_address& addr, const std::vector<ip_address>& local) {
  ip_address a = unmapped(addr);
  auto cls = restricted_class(a);
  if (cls && (*cls == "loopback" || *cls == "unspecified")) return true;
  return std::any_of(local.begin(), local.end(),
                     [&](const ip_address& l) { return unmapped(l) == a; });
}

egress_policy::egress_policy(std::string setting)
    : setting_(std::move(setting)), own_(std::make_shared<own_ports>()) {}

result<egress_policy> egress_policy::make(const std::vector<std::string>& allow,
                                          std::string setting) {
  egress_policy p(setting);
  for (const auto& raw : allow) {
    auto e = trim(raw);
    if (e.empty()) continue;
    auto bad = [&](const std::string& why) {
      return make_error("bad_config", setting + ": '" + std::string(e) + "' " + why);
    };
    // [v6]:port or [v6]
    if (e.front() == '[') {
      auto close = e.find(']');
      if (close == std::string_view::npos) return bad("has an unclosed '['");
      auto ip = parse_ip(e.substr(1, close - 1));
      if (!ip) return bad("is not an IPv6 address in brackets");
      network n{*ip, 128, std::nullopt};
      auto rest = e.substr(close + 1);
      if (!rest.empty()) {
        if (rest.front() != ':') return bad("must be [address]:port");
        n.port = parse_port(rest.substr(1));
        if (!n.port) return bad("has a port outside 1-65535");
      }
      p.networks_.push_back(n);
      continue;
    }
    // network/prefix
    if (auto slash = e.find('/'); slash != std::string_view::npos) {
      auto ip = parse_ip(e.substr(0, slash));
      if (!ip) return bad("is not address/prefix (e.g. 10.0.0.0/8)");
      auto len = e.substr(slash + 1);
      int max = ip->v6 ? 128 : 32;
      if (len.empty() || len.size() > 3 ||
          len.find_first_not_of("0123456789") != std::string_view::npos ||
          std::stoi(std::string(len)) > max)
        return bad("has a prefix length outside 0-" + std::to_string(max));
      p.networks_.push_back({*ip, std::stoi(std::string(len)), std::nullopt});
      continue;
    }
    // a bare address (IPv6 has several colons)
    if (auto ip = parse_ip(e)) {
      p.networks_.push_back({*ip, ip->v6 ? 128 : 32, std::nullopt});
      continue;
    }
    // address:port or host[:port]
    std::string_view host = e;
    std::optional<uint16_t> port;
    if (auto colon = e.rfind(':'); colon != std::string_view::npos) {
      host = e.substr(0, colon);
      port = parse_port(e.substr(colon + 1));
      if (!port) return bad("has a port outside 1-65535");
    }
    if (auto ip = parse_ip(host)) {
      if (ip->v6) return bad("must write an IPv6 address with a port as [address]:port");
      p.networks_.push_back({*ip, 32, port});
      continue;
    }
    if (!valid_host_name(host))
      return bad("is neither a network, an address, address:port nor host[:port]");
    p.hosts_.push_back({lower(host), port});
  }
  return p;
}

void egress_policy::add_own_port(uint16_t port) {
  std::lock_guard<std::mutex> lock(own_->m);
  if (!own_->local_read) {
    own_->local = read_interface_addresses();
    own_->local_read = true;
  }
  if (std::find(own_->ports.begin(), own_->ports.end(), port) == own_->ports.end())
    own_->ports.push_back(port);
}

std::optional<std::string> egress_policy::check(std::string_view host, const ip_address& addr,
                                                uint16_t port) const {
  const std::string name = lower(host);
  const std::string where = addr.v6 ? "[" + to_string(addr) + "]:" + std::to_string(port)
                                    : to_string(addr) + ":" + std::to_string(port);
  // An entry naming this exact destination opens it, own ports included.
  for (const auto& h : hosts_)
    if (h.name == name && h.port && *h.port == port) return std::nullopt;
  for (const auto& n : networks_)
    if (n.port && *n.port == port && in_network(addr, n.base, n.prefix)) return std::nullopt;
  {
    std::lock_guard<std::mutex> lock(own_->m);
    if (std::find(own_->ports.begin(), own_->ports.end(), port) != own_->ports.end() &&
        is_own_host(addr, own_->local))
      return where + " is this node's own port; allow that address and port in " + setting_;
  }
  auto cls = restricted_class(addr);
  if (!cls) return std::nullopt;
  for (const auto& h : hosts_)
    if (h.name == name && !h.port) return std::nullopt;
  for (const auto& n : networks_)
    if (!n.port && in_network(addr, n.base, n.prefix)) return std::nullopt;
  // A name is shown with what it resolved to: the address is what was refused.
  std::string what =
      (*cls == "unspecified" ? "an " : "a ") + *cls + " address; allow it in " + setting_;
  if (parse_ip(name)) return where + " is " + what;
  return name + " resolves to " + where + ", " + what;
}

}  // namespace parley::http
