#include "src/secrets/secrets.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cctype>
#include <cstdlib>
#include <cstring>

namespace parley::secrets {
namespace {

constexpr std::size_t nonce_bytes = 12;
constexpr std::size_t tag_bytes = 16;

std::string hex(const unsigned char* p, std::size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[p[i] >> 4]);
    out.push_back(digits[p[i] & 0x0F]);
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int base64_digit(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

/// Decodes base64 (either alphabet, padding optional); nullopt on a bad character.
std::optional<std::string> base64_decode(std::string_view in) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    int d = base64_digit(c);
    if (d < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string aad(std::string_view tenant, std::string_view name) {
  // The NUL keeps ("ab", "c") and ("a", "bc") apart: tenant ids and names hold none.
  std::string a(tenant);
  a.push_back('\0');
  a.append(name);
  return a;
}

struct ctx_deleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, ctx_deleter>;

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string name_problem(std::string_view name) {
  if (valid_name(name)) return {};
  std::string shown(name.substr(0, 80));
  return "secret name '" + shown + "' is not valid: use 1 to 64 letters, digits, '_', '.' or '-'";
}

std::string key_id(const std::array<unsigned char, 32>& key) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(key.data(), key.size(), md, &len, EVP_sha256(), nullptr) != 1) std::abort();
  return hex(md, 8);
}

result<master_key> parse_key(std::string_view text, std::string_view what) {
  auto t = trim(text);
  std::string raw;
  bool all_hex = !t.empty();
  for (char c : t) all_hex = all_hex && hex_digit(c) >= 0;
  if (t.size() == 64 && all_hex) {
    for (std::size_t i = 0; i < 64; i += 2)
      raw.push_back(static_cast<char>(hex_digit(t[i]) * 16 + hex_digit(t[i + 1])));
  } else if (auto b = base64_decode(t); b && b->size() == 32) {
    raw = std::move(*b);
  } else {
    std::string w(what);
    if (t.empty()) return make_error("bad_secrets_key", w + " is empty");
    return make_error("bad_secrets_key",
                      w +
                          " is not a 256-bit key: give 64 hex digits or the base64 of 32 bytes "
                          "(openssl rand -hex 32); it has " +
                          std::to_string(t.size()) + " characters");
  }
  master_key k;
  std::memcpy(k.bytes.data(), raw.data(), 32);
  k.id = key_id(k.bytes);
  return k;
}

keyring::keyring(std::optional<master_key> current, std::vector<master_key> previous)
    : current_(std::move(current)), previous_(std::move(previous)) {}

result<keyring> keyring::from_text(std::string_view current, std::string_view previous) {
  std::optional<master_key> cur;
  if (!trim(current).empty()) {
    auto k = parse_key(current, "PARLEY_SECRETS_KEY");
    if (!k) return k.err();
    cur = std::move(*k);
  }
  std::vector<master_key> prev;
  std::size_t index = 0;
  while (!trim(previous).empty()) {
    auto comma = previous.find(',');
    auto item = trim(previous.substr(0, comma));
    previous = comma == std::string_view::npos ? std::string_view() : previous.substr(comma + 1);
    ++index;
    if (item.empty()) continue;
    auto k = parse_key(item, "PARLEY_SECRETS_PREVIOUS_KEYS entry " + std::to_string(index));
    if (!k) return k.err();
    prev.push_back(std::move(*k));
  }
  if (!cur && !prev.empty())
    return make_error("bad_secrets_key",
                      "PARLEY_SECRETS_PREVIOUS_KEYS is set but PARLEY_SECRETS_KEY is not: set the "
                      "current key too");
  return keyring(std::move(cur), std::move(prev));
}

result<keyring> keyring::from_env() {
  const char* c = std::getenv("PARLEY_SECRETS_KEY");
  const char* p = std::getenv("PARLEY_SECRETS_PREVIOUS_KEYS");
  return from_text(c ? c : "", p ? p : "");
}

const master_key* keyring::find(std::string_view id) const {
  if (current_ && current_->id == id) return &*current_;
  for (const auto& k : previous_)
    if (k.id == id) return &k;
  return nullptr;
}

std::vector<std::string> keyring::ids() const {
  std::vector<std::string> out;
  if (current_) out.push_back(current_->id);
  for (const auto& k : previous_) out.push_back(k.id);
  return out;
}

sealed seal(const master_key& key, std::string_view tenant, std::string_view name,
            std::string_view value) {
  sealed s;
  s.key_id = key.id;
  s.nonce.resize(nonce_bytes);
  // A failing CSPRNG or cipher is a broken host, not a recoverable condition.
  if (RAND_bytes(reinterpret_cast<unsigned char*>(s.nonce.data()), nonce_bytes) != 1) std::abort();
  auto a = aad(tenant, name);
  ctx_ptr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) std::abort();
  int len = 0;
  s.ciphertext.resize(value.size() + tag_bytes);
  auto* out = reinterpret_cast<unsigned char*>(s.ciphertext.data());
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, nonce_bytes, nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.bytes.data(), bytes(s.nonce)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(a), static_cast<int>(a.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out, &len, bytes(value), static_cast<int>(value.size())) != 1)
    std::abort();
  int total = len;
  if (EVP_EncryptFinal_ex(ctx.get(), out + total, &len) != 1) std::abort();
  total += len;
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, tag_bytes, out + total) != 1)
    std::abort();
  s.ciphertext.resize(static_cast<std::size_t>(total) + tag_bytes);
  return s;
}

result<std::string> open(const keyring& keys, std::string_view tenant, std::string_view name,
                         const sealed& s) {
  const master_key* key = keys.find(s.key_id);
  if (key == nullptr)
    return make_error("secrets_key_unknown",
                      "secret '" + std::string(name) + "' of tenant '" + std::string(tenant) +
                          "' is sealed under key id " + s.key_id +
                          ", which neither PARLEY_SECRETS_KEY nor PARLEY_SECRETS_PREVIOUS_KEYS "
                          "holds");
  auto undecryptable = [&] {
    return make_error("secret_undecryptable", "secret '" + std::string(name) + "' of tenant '" +
                                                  std::string(tenant) +
                                                  "' does not decrypt: wrong key or altered row");
  };
  if (s.nonce.size() != nonce_bytes || s.ciphertext.size() < tag_bytes) return undecryptable();
  auto a = aad(tenant, name);
  std::size_t n = s.ciphertext.size() - tag_bytes;
  std::string plain(n, '\0');
  std::string tag = s.ciphertext.substr(n);
  ctx_ptr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) std::abort();
  int len = 0;
  auto* out = reinterpret_cast<unsigned char*>(plain.data());
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, nonce_bytes, nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key->bytes.data(), bytes(s.nonce)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(a), static_cast<int>(a.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out, &len, bytes(s.ciphertext), static_cast<int>(n)) != 1)
    return undecryptable();
  int total = len;
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, tag_bytes, tag.data()) != 1)
    return undecryptable();
  if (EVP_DecryptFinal_ex(ctx.get(), out + total, &len) != 1) {
    OPENSSL_cleanse(plain.data(), plain.size());
    return undecryptable();
  }
  total += len;
  plain.resize(static_cast<std::size_t>(total));
  return plain;
}

}  // namespace parley::secrets
