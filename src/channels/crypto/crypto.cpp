#include "src/channels/crypto/crypto.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstdlib>

namespace parley::channels::crypto {

namespace {

[[noreturn]] void openssl_failed() { std::abort(); }

// One HMAC context per thread and digest, its digest set once: EVP_MAC_init with a
// key then only rekeys it, where OpenSSL 3's one-shot HMAC() fetches the
// algorithms and allocates a context on every call.
class hmac_context {
 public:
  explicit hmac_context(const char* digest) {
    static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (mac == nullptr) openssl_failed();
    ctx_ = EVP_MAC_CTX_new(mac);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(digest), 0),
        OSSL_PARAM_construct_end()};
    if (ctx_ == nullptr || EVP_MAC_CTX_set_params(ctx_, params) != 1) openssl_failed();
  }
  ~hmac_context() { EVP_MAC_CTX_free(ctx_); }
  hmac_context(const hmac_context&) = delete;
  hmac_context& operator=(const hmac_context&) = delete;

  template <std::size_t N>
  std::array<unsigned char, N> mac(std::string_view key, std::string_view data) {
    // A null key means "keep the previous one" to EVP_MAC_init: an empty key must
    // still point somewhere.
    static const unsigned char empty = 0;
    const auto* k = key.empty() ? &empty : reinterpret_cast<const unsigned char*>(key.data());
    std::array<unsigned char, N> out{};
    std::size_t len = 0;
    if (EVP_MAC_init(ctx_, k, key.size(), nullptr) != 1 ||
        EVP_MAC_update(ctx_, reinterpret_cast<const unsigned char*>(data.data()), data.size()) !=
            1 ||
        EVP_MAC_final(ctx_, out.data(), &len, out.size()) != 1 || len != N)
      openssl_failed();
    return out;
  }

 private:
  EVP_MAC_CTX* ctx_ = nullptr;
};

}  // namespace

std::array<unsigned char, sha1_size> hmac_sha1(std::string_view key, std::string_view data) {
  thread_local hmac_context ctx("SHA1");
  return ctx.mac<sha1_size>(key, data);
}

std::array<unsigned char, sha256_size> hmac_sha256(std::string_view key, std::string_view data) {
  thread_local hmac_context ctx("SHA256");
  return ctx.mac<sha256_size>(key, data);
}

std::array<unsigned char, sha256_size> sha256(std::string_view data) {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct holder {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~holder() { EVP_MD_CTX_free(ctx); }
  };
  thread_local holder h;
  std::array<unsigned char, sha256_size> out{};
  unsigned int len = 0;
  if (md == nullptr || h.ctx == nullptr || EVP_DigestInit_ex2(h.ctx, md, nullptr) != 1 ||
      EVP_DigestUpdate(h.ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(h.ctx, out.data(), &len) != 1 || len != sha256_size)
    openssl_failed();
  return out;
}

std::string base64(std::string_view bytes) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const unsigned v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    const unsigned v = (p[i] << 16) | (rest == 2 ? p[i + 1] << 8 : 0);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += rest == 2 ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string hex(std::string_view bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace parley::channels::crypto
