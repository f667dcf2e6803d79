#include "actors/gateway/sha256.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

namespace parley::actors {

/// The digest fetched once and a context per thread: OpenSSL 3's one-shot SHA256()
/// looks the algorithm up and allocates a context on every call, which cost 2 % of
/// the node's CPU at 35,000 requests/s.
void sha256(std::string_view data, unsigned char* out) {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct ctx_holder {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~ctx_holder() { EVP_MD_CTX_free(ctx); }
  };
  thread_local ctx_holder h;
  unsigned int len = 0;
  if (md == nullptr || h.ctx == nullptr || EVP_DigestInit_ex2(h.ctx, md, nullptr) != 1 ||
      EVP_DigestUpdate(h.ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(h.ctx, out, &len) != 1)
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
           out);  // never expected
}

std::string sha256_hex(std::string_view data) {
  unsigned char d[sha256_size];
  sha256(data, d);
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sha256_size);
  for (unsigned char c : d) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

}  // namespace parley::actors
