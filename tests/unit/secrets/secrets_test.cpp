// The sealing of tenant secrets (src/secrets): round trips, wrong keys, tampered
// bytes, rows moved to another tenant or name, and the key formats.

#include <gtest/gtest.h>

#include "src/secrets/secrets.hpp"

namespace {

using namespace parley::secrets;

const std::string hex_a = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const std::string hex_b = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

keyring ring(const std::string& current, const std::string& previous = "") {
  auto k = keyring::from_text(current, previous);
  EXPECT_TRUE(k.ok()) << (k.ok() ? "" : k.err().message);
  return k.ok() ? *k : keyring();
}

TEST(secrets, RoundTripsAndUsesAFreshNonceEachTime) {
  auto keys = ring(hex_a);
  auto a = seal(keys.current(), "acme", "TOKEN", "s3cret value");
  auto b = seal(keys.current(), "acme", "TOKEN", "s3cret value");
  EXPECT_EQ(a.nonce.size(), 12u);
  EXPECT_NE(a.nonce, b.nonce);
  EXPECT_NE(a.ciphertext, b.ciphertext);
  EXPECT_EQ(a.ciphertext.find("s3cret"), std::string::npos);
  EXPECT_EQ(a.key_id, keys.current().id);
  auto v = open(keys, "acme", "TOKEN", a);
  ASSERT_TRUE(v.ok()) << v.err().message;
  EXPECT_EQ(*v, "s3cret value");
  auto empty = open(keys, "acme", "E", seal(keys.current(), "acme", "E", ""));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
  std::string big(max_value_bytes, 'x');
  auto large = open(keys, "acme", "BIG", seal(keys.current(), "acme", "BIG", big));
  ASSERT_TRUE(large.ok());
  EXPECT_EQ(*large, big);
}

TEST(secrets, KeyIdIsTheFirstEightBytesOfTheKeysSha256) {
  // sha256 of the bytes 00..1f starts 630dcd2966c4336691125448bbb25b4f...
  auto keys = ring(hex_a);
  EXPECT_EQ(keys.current().id, "630dcd2966c43366");
  EXPECT_EQ(keys.current().id.size(), 16u);
}

TEST(secrets, AWrongKeyFailsAndAnUnknownKeyIdIsNamed) {
  auto sealed_a = seal(ring(hex_a).current(), "acme", "TOKEN", "v");
  auto under_b = ring(hex_b);
  auto r = open(under_b, "acme", "TOKEN", sealed_a);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, "secrets_key_unknown");
  EXPECT_NE(r.err().message.find(sealed_a.key_id), std::string::npos) << r.err().message;
  // The same key id but other key bytes (a forged id): the tag does not match.
  auto forged = sealed_a;
  forged.key_id = under_b.current().id;
  auto f = open(under_b, "acme", "TOKEN", forged);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.err().code, "secret_undecryptable");
}

TEST(secrets, TamperedCiphertextNonceOrTagFails) {
  auto keys = ring(hex_a);
  auto s = seal(keys.current(), "acme", "TOKEN", "the value");
  for (std::size_t i = 0; i < s.ciphertext.size(); ++i) {
    auto t = s;
    t.ciphertext[i] = static_cast<char>(t.ciphertext[i] ^ 0x01);
    auto r = open(keys, "acme", "TOKEN", t);
    ASSERT_FALSE(r.ok()) << "byte " << i;
    EXPECT_EQ(r.err().code, "secret_undecryptable");
  }
  auto n = s;
  n.nonce[0] = static_cast<char>(n.nonce[0] ^ 0x80);
  EXPECT_FALSE(open(keys, "acme", "TOKEN", n).ok());
  auto cut = s;
  cut.ciphertext.resize(5);
  EXPECT_FALSE(open(keys, "acme", "TOKEN", cut).ok());
  auto short_nonce = s;
  short_nonce.nonce.resize(8);
  EXPECT_FALSE(open(keys, "acme", "TOKEN", short_nonce).ok());
}

TEST(secrets, ARowCopiedToAnotherTenantOrNameFails) {
  auto keys = ring(hex_a);
  auto s = seal(keys.current(), "acme", "TOKEN", "v");
  EXPECT_FALSE(open(keys, "other", "TOKEN", s).ok());
  EXPECT_FALSE(open(keys, "acme", "TOKEN2", s).ok());
  // The separator keeps the boundary: ("acm", "eTOKEN") is not ("acme", "TOKEN").
  EXPECT_FALSE(open(keys, "acm", "eTOKEN", s).ok());
  auto r = open(keys, "other", "TOKEN", s);
  EXPECT_EQ(r.err().code, "secret_undecryptable");
  EXPECT_EQ(r.err().message.find("v\""), std::string::npos);
}

TEST(secrets, PreviousKeysStillOpenTheirRows) {
  auto old_ring = ring(hex_a);
  auto s = seal(old_ring.current(), "acme", "TOKEN", "old");
  auto rotated = ring(hex_b, " " + hex_a + " ,");
  EXPECT_EQ(rotated.current().id, ring(hex_b).current().id);
  auto r = open(rotated, "acme", "TOKEN", s);
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(*r, "old");
  EXPECT_EQ(rotated.ids().size(), 2u);
  EXPECT_NE(rotated.find(old_ring.current().id), nullptr);
}

TEST(secrets, KeysParseAsHexOrBase64Of32Bytes) {
  auto h = parse_key(hex_a, "K");
  ASSERT_TRUE(h.ok());
  // The same bytes in base64, standard and URL alphabets, with and without padding.
  auto b = parse_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "K");
  ASSERT_TRUE(b.ok()) << b.err().message;
  EXPECT_EQ(b->id, h->id);
  auto b2 = parse_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "K");
  ASSERT_TRUE(b2.ok());
  EXPECT_EQ(b2->bytes, h->bytes);
  auto upper =
      parse_key(" 000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\n", "K");
  ASSERT_TRUE(upper.ok());
  EXPECT_EQ(upper->id, h->id);
}

TEST(secrets, BadKeysGetAClearErrorThatNeverShowsTheKey) {
  for (std::string bad :
       {std::string("abc"), hex_a.substr(2), hex_a + "00", std::string(64, 'g'),
        std::string("AAECAwQFBgcICQoLDA0ODxAREhMU"), std::string("not base64 at all!!")}) {
    auto r = parse_key(bad, "PARLEY_SECRETS_KEY");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.err().code, "bad_secrets_key");
    EXPECT_NE(r.err().message.find("PARLEY_SECRETS_KEY"), std::string::npos);
    EXPECT_NE(r.err().message.find("64 hex digits"), std::string::npos);
    EXPECT_EQ(r.err().message.find(bad), std::string::npos) << r.err().message;
  }
  EXPECT_FALSE(parse_key("   ", "K").ok());
  auto prev = keyring::from_text(hex_a, hex_b + ",zz");
  ASSERT_FALSE(prev.ok());
  EXPECT_NE(prev.err().message.find("PARLEY_SECRETS_PREVIOUS_KEYS entry 2"), std::string::npos)
      << prev.err().message;
  auto no_current = keyring::from_text("", hex_b);
  ASSERT_FALSE(no_current.ok());
  EXPECT_NE(no_current.err().message.find("PARLEY_SECRETS_KEY"), std::string::npos);
  auto none = keyring::from_text("", "");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_current());
}

TEST(secrets, NamesFollowTheBotCompilersRule) {
  for (const char* ok : {"A", "ORDERS_API_TOKEN", "a.b-c_d", "0"}) EXPECT_TRUE(valid_name(ok));
  EXPECT_TRUE(valid_name(std::string(64, 'x')));
  EXPECT_FALSE(valid_name(std::string(65, 'x')));
  for (const char* bad : {"", "a b", "a/b", "é", "a{b}", "a\n"}) EXPECT_FALSE(valid_name(bad));
  EXPECT_NE(name_problem("a b").find("'a b'"), std::string::npos);
  EXPECT_EQ(name_problem("OK"), "");
}

}  // namespace
