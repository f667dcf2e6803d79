#pragma once
/// Egress policy of the outbound HTTP client (outbound.hpp): which destinations bot
/// actions and channel deliveries may reach.
///
/// By default a destination is refused when its address is loopback (127.0.0.0/8,
/// ::1), link-local (169.254.0.0/16, which holds cloud metadata, fe80::/10), private
/// (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7), unspecified or "this network"
/// (0.0.0.0/8, ::), multicast or broadcast, including the IPv4-mapped (::ffff:a.b.c.d)
/// and IPv4-compatible (::a.b.c.d) forms of those; and when its port is one of the
/// node's own listening ports on an address of this host. The client checks every
/// address a name resolves to, before connecting, and connects only to the checked
/// addresses, so a name that resolves to 127.0.0.1 is refused like the literal.
///
/// An allow list opens what an installation needs. Entries:
///   - `10.1.2.0/24`, `fd00::/8`: a network (any port);
///   - `10.1.2.3`, `::1`: one address (any port);
///   - `127.0.0.1:8081`, `[::1]:8081`: one address and port;
///   - `orders.internal`, `orders.internal:8443`: a host name as the URL writes it
///     (any port, or that one), whatever it resolves to.
/// The node's own ports stay refused under a network or address entry; only an entry
/// naming the exact address and port (or host name and port) opens one.
///
/// Pure and immutable after construction except `add_own_port`; `check` may be called
/// from any thread.

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/common/result.hpp"

namespace parley::http {

/// An IPv4 or IPv6 address; IPv4 uses the first 4 bytes.
struct ip_address {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};
  bool operator==(const ip_address& o) const { return v6 == o.v6 && bytes == o.bytes; }
};

/// Parses a numeric address ("10.0.0.1", "::1", "fe80::1"; no brackets, no zone).
std::optional<ip_address> parse_ip(std::string_view text);
/// "10.0.0.1", "::1".
std::string to_string(const ip_address& a);

/// Why an address is refused by default: "loopback", "link-local", "private",
/// "unspecified", "multicast", "broadcast"; nullopt for a public address.
std::optional<std::string> restricted_class(const ip_address& a);

/// True for an address of this host: loopback, unspecified, or one of `local`.
bool is_own_host(const ip_address& a, const std::vector<ip_address>& local);

class egress_policy {
 public:
  /// The default policy: nothing restricted allowed. `setting` names the allow list in
  /// refusal messages.
  egress_policy() : egress_policy("actions.egress_allow") {}
  explicit egress_policy(std::string setting);

  /// Parses `allow` (entries as above; spaces around them ignored, empty ones skipped).
  /// Fails with `bad_config` naming the first bad entry.
  static result<egress_policy> make(const std::vector<std::string>& allow,
                                    std::string setting = "actions.egress_allow");

  /// Refuses `port` on this host's addresses (its interfaces, read once at the first
  /// call, loopback and unspecified). Any thread; calls in flight see it or not.
  void add_own_port(uint16_t port);

  /// Nullopt when a connection to `addr`:`port`, reached through the URL's `host`
  /// (a name or a literal), is allowed; else the reason, one sentence, e.g.
  /// "127.0.0.1:8080 is a loopback address; allow it in actions.egress_allow".
  std::optional<std::string> check(std::string_view host, const ip_address& addr,
                                   uint16_t port) const;

 private:
  struct network {
    ip_address base;
    int prefix = 0;
    std::optional<uint16_t> port;  ///< set: this port only (and then prefix is full)
  };
  struct host_entry {
    std::string name;  ///< lower case
    std::optional<uint16_t> port;
  };
  struct own_ports {
    std::mutex m;
    std::vector<uint16_t> ports;
    std::vector<ip_address> local;
    bool local_read = false;
  };
  std::string setting_;
  std::vector<network> networks_;
  std::vector<host_entry> hosts_;
  std::shared_ptr<own_ports> own_;
};

/// Whether `a` lies in `base`/`prefix` (same family; IPv4-mapped IPv6 compares as IPv4).
bool in_network(const ip_address& a, const ip_address& base, int prefix);

}  // namespace parley::http
