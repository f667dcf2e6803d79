// The digests and encodings behind the webhook signatures, against RFC vectors.

#include <gtest/gtest.h>

#include "src/channels/crypto/crypto.hpp"

namespace crypto = parley::channels::crypto;

namespace {

TEST(channels_crypto, hmac_sha1_rfc2202) {
  // RFC 2202 test case 2.
  EXPECT_EQ(
      crypto::hex(crypto::bytes_of(crypto::hmac_sha1("Jefe", "what do ya want for nothing?"))),
      "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
}

TEST(channels_crypto, hmac_sha256_rfc4231) {
  // RFC 4231 test case 2.
  EXPECT_EQ(
      crypto::hex(crypto::bytes_of(crypto::hmac_sha256("Jefe", "what do ya want for nothing?"))),
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(channels_crypto, hmac_with_an_empty_key_and_a_long_key) {
  // Python: hmac.new(b'', b'abc', 'sha256').hexdigest()
  EXPECT_EQ(crypto::hex(crypto::bytes_of(crypto::hmac_sha256("", "abc"))),
            "fd7adb152c05ef80dccf50a1fa4c05d5a3ec6da95575fc312ae7c5d091836351");
  // A key longer than the block is hashed first (RFC 4231 test case 6).
  EXPECT_EQ(
      crypto::hex(crypto::bytes_of(crypto::hmac_sha256(
          std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First"))),
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  // The same context rekeyed gives each key's own MAC.
  EXPECT_NE(crypto::hmac_sha256("a", "x"), crypto::hmac_sha256("b", "x"));
  EXPECT_EQ(crypto::hmac_sha256("a", "x"), crypto::hmac_sha256("a", "x"));
}

TEST(channels_crypto, sha256_and_base64) {
  EXPECT_EQ(crypto::hex(crypto::bytes_of(crypto::sha256("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(crypto::base64(""), "");
  EXPECT_EQ(crypto::base64("f"), "Zg==");
  EXPECT_EQ(crypto::base64("fo"), "Zm8=");
  EXPECT_EQ(crypto::base64("foo"), "Zm9v");
  EXPECT_EQ(crypto::base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(crypto::base64("\xff\xfe\xfd"), "//79");
}

TEST(channels_crypto, equal_constant_time) {
  EXPECT_TRUE(crypto::equal_constant_time("", ""));
  EXPECT_TRUE(crypto::equal_constant_time("abc", "abc"));
  EXPECT_FALSE(crypto::equal_constant_time("abc", "abd"));
  EXPECT_FALSE(crypto::equal_constant_time("abc", "ab"));
}

}  // namespace
