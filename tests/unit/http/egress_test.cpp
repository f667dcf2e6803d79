/// The egress policy's address classes and allow list (src/http/egress.hpp), without
/// sockets: the client feeds it the addresses a name resolved to.

#include "src/http/egress.hpp"

#include <gtest/gtest.h>

namespace parley::http {
namespace {

ip_address ip(const char* text) {
  auto a = parse_ip(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(ip_address{});
}

std::string cls(const char* text) { return restricted_class(ip(text)).value_or("public"); }

TEST(egress, classifies_ipv4) {
  EXPECT_EQ(cls("127.0.0.1"), "loopback");
  EXPECT_EQ(cls("127.255.255.254"), "loopback");
  EXPECT_EQ(cls("169.254.169.254"), "link-local");
  EXPECT_EQ(cls("10.0.0.1"), "private");
  EXPECT_EQ(cls("172.16.0.1"), "private");
  EXPECT_EQ(cls("172.31.255.255"), "private");
  EXPECT_EQ(cls("192.168.1.1"), "private");
  EXPECT_EQ(cls("100.64.0.1"), "private");
  EXPECT_EQ(cls("0.0.0.0"), "unspecified");
  EXPECT_EQ(cls("0.1.2.3"), "unspecified");
  EXPECT_EQ(cls("255.255.255.255"), "broadcast");
  EXPECT_EQ(cls("224.0.0.1"), "multicast");
  EXPECT_EQ(cls("172.32.0.1"), "public");
  EXPECT_EQ(cls("172.15.255.255"), "public");
  EXPECT_EQ(cls("8.8.8.8"), "public");
  EXPECT_EQ(cls("169.255.0.1"), "public");
  EXPECT_EQ(cls("11.0.0.1"), "public");
}

TEST(egress, classifies_ipv6_and_mapped_forms) {
  EXPECT_EQ(cls("::1"), "loopback");
  EXPECT_EQ(cls("::"), "unspecified");
  EXPECT_EQ(cls("fe80::1"), "link-local");
  EXPECT_EQ(cls("febf::1"), "link-local");
  EXPECT_EQ(cls("fc00::1"), "private");
  EXPECT_EQ(cls("fd12:3456::1"), "private");
  EXPECT_EQ(cls("ff02::1"), "multicast");
  EXPECT_EQ(cls("2001:db8::1"), "public");
  EXPECT_EQ(cls("2606:4700::1111"), "public");
  // IPv4-mapped and IPv4-compatible addresses reach the IPv4 address they carry.
  EXPECT_EQ(cls("::ffff:127.0.0.1"), "loopback");
  EXPECT_EQ(cls("::ffff:169.254.169.254"), "link-local");
  EXPECT_EQ(cls("::ffff:10.1.2.3"), "private");
  EXPECT_EQ(cls("::ffff:0.0.0.0"), "unspecified");
  EXPECT_EQ(cls("::127.0.0.1"), "loopback");
  EXPECT_EQ(cls("::ffff:8.8.8.8"), "public");
}

TEST(egress, parses_and_prints_addresses) {
  EXPECT_FALSE(parse_ip("example.com"));
  EXPECT_FALSE(parse_ip("127.1"));
  EXPECT_FALSE(parse_ip("[::1]"));
  EXPECT_EQ(to_string(ip("::ffff:127.0.0.1")), "::ffff:127.0.0.1");
  EXPECT_EQ(to_string(ip("10.0.0.1")), "10.0.0.1");
}

TEST(egress, default_policy_refuses_with_the_reason) {
  egress_policy p;
  auto why = p.check("127.0.0.1", ip("127.0.0.1"), 8080);
  ASSERT_TRUE(why);
  EXPECT_EQ(*why, "127.0.0.1:8080 is a loopback address; allow it in actions.egress_allow");
  why = p.check("metadata.internal", ip("169.254.169.254"), 80);
  ASSERT_TRUE(why);
  EXPECT_EQ(*why,
            "metadata.internal resolves to 169.254.169.254:80, a link-local address; allow it "
            "in actions.egress_allow");
  why = p.check("::1", ip("::1"), 443);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("[::1]:443 is a loopback address"), std::string::npos) << *why;
  EXPECT_TRUE(p.check("::ffff:10.0.0.1", ip("::ffff:10.0.0.1"), 443));
  EXPECT_TRUE(p.check("0.0.0.0", ip("0.0.0.0"), 80));
  EXPECT_FALSE(p.check("example.com", ip("93.184.216.34"), 443));
}

TEST(egress, allow_list_opens_networks_addresses_and_names) {
  auto p = egress_policy::make({" 10.1.0.0/16 ", "192.168.7.7", "127.0.0.1:8081", "[::1]:9000",
                                "orders.internal", "Billing.Internal:8443", "fd00::/8", ""});
  ASSERT_TRUE(p) << p.err().message;
  EXPECT_FALSE(p->check("10.1.2.3", ip("10.1.2.3"), 80));
  EXPECT_FALSE(p->check("x", ip("::ffff:10.1.200.1"), 80)) << "an IPv4 network covers mapped forms";
  EXPECT_TRUE(p->check("10.2.0.1", ip("10.2.0.1"), 80));
  EXPECT_FALSE(p->check("192.168.7.7", ip("192.168.7.7"), 1234));
  EXPECT_TRUE(p->check("192.168.7.8", ip("192.168.7.8"), 1234));
  EXPECT_FALSE(p->check("127.0.0.1", ip("127.0.0.1"), 8081));
  EXPECT_TRUE(p->check("127.0.0.1", ip("127.0.0.1"), 8082)) << "the port is part of the entry";
  EXPECT_FALSE(p->check("::1", ip("::1"), 9000));
  EXPECT_TRUE(p->check("::1", ip("::1"), 9001));
  EXPECT_FALSE(p->check("orders.internal", ip("10.9.9.9"), 443));
  EXPECT_FALSE(p->check("ORDERS.internal", ip("10.9.9.9"), 8080)) << "names compare caseless";
  EXPECT_FALSE(p->check("billing.internal", ip("10.9.9.9"), 8443));
  EXPECT_TRUE(p->check("billing.internal", ip("10.9.9.9"), 443));
  EXPECT_FALSE(p->check("fd00::5", ip("fd00::5"), 443));
  // A name entry does not open another name that resolves to the same address.
  EXPECT_TRUE(p->check("evil.example", ip("10.9.9.9"), 443));
}

TEST(egress, own_ports_stay_refused_unless_named_exactly) {
  auto p = egress_policy::make({"127.0.0.0/8", "127.0.0.1:7000"});
  ASSERT_TRUE(p);
  p->add_own_port(8080);
  p->add_own_port(7000);
  auto why = p->check("127.0.0.1", ip("127.0.0.1"), 8080);
  ASSERT_TRUE(why);
  EXPECT_EQ(*why,
            "127.0.0.1:8080 is this node's own port; allow that address and port in "
            "actions.egress_allow");
  EXPECT_TRUE(p->check("localhost", ip("127.0.0.2"), 8080));
  EXPECT_TRUE(p->check("0.0.0.0", ip("0.0.0.0"), 8080));
  EXPECT_FALSE(p->check("127.0.0.1", ip("127.0.0.1"), 8081)) << "other loopback ports are allowed";
  EXPECT_FALSE(p->check("127.0.0.1", ip("127.0.0.1"), 7000)) << "the exact entry opens it";
  // On a public address another host's port 8080 is nobody's own port.
  EXPECT_FALSE(p->check("example.com", ip("93.184.216.34"), 8080));
}

TEST(egress, bad_entries_name_themselves) {
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "::1/129", "10.0.0.1:0", "10.0.0.1:70000",
                          "[::1", "[::1]x", "::1:80x", "host name", "a/b", "[zz]:80"}) {
    auto p = egress_policy::make({bad});
    ASSERT_FALSE(p) << bad;
    EXPECT_EQ(p.err().code, "bad_config");
    EXPECT_NE(p.err().message.find(std::string("'") + bad + "'"), std::string::npos)
        << p.err().message;
    EXPECT_EQ(p.err().message.rfind("actions.egress_allow: ", 0), 0u) << p.err().message;
  }
}

}  // namespace
}  // namespace parley::http
