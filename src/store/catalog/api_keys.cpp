#include "src/store/catalog/api_keys.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdlib>

#include "src/store/catalog/detail.hpp"

namespace parley::store {

using namespace detail;

namespace {

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

std::string base64url(const unsigned char* p, std::size_t n) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    unsigned v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    out.push_back(alphabet[v & 63]);
  }
  if (n - i == 1) {
    unsigned v = p[i] << 16;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
  } else if (n - i == 2) {
    unsigned v = (p[i] << 16) | (p[i + 1] << 8);
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
  }
  return out;
}

constexpr std::size_t key_prefix_length = 8;

}  // namespace

std::string api_key_hash(const std::string& key) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(key.data(), key.size(), md, &len, EVP_sha256(), nullptr) != 1) std::abort();
  return hex(md, len);
}

catalog_job<api_key_created> create_api_key(std::string tenant, std::string name,
                                            std::string actor) {
  return [tenant = std::move(tenant), name = std::move(name),
          actor = std::move(actor)](pqxx::transaction_base& tx) {
    if (name.empty()) fail("invalid_argument", "API key name must not be empty");
    require_tenant(tx, tenant);
    unsigned char bytes[32];
    // A failing CSPRNG is a broken host, not a recoverable condition.
    if (RAND_bytes(bytes, sizeof bytes) != 1) std::abort();
    api_key_created k;
    k.key = "pk_" + base64url(bytes, sizeof bytes);
    k.prefix = k.key.substr(0, key_prefix_length);
    auto row = tx.exec_params1(
        "INSERT INTO api_keys (tenant_id, name, key_hash, prefix) VALUES ($1, $2, $3, $4) "
        "RETURNING id",
        tenant, clean_text(name), api_key_hash(k.key), k.prefix);
    k.id = row[0].as<std::int64_t>();
    write_audit(tx, actor, "api_key.create", tenant, "api_key/" + std::to_string(k.id),
                {{"name", name}, {"prefix", k.prefix}});
    return k;
  };
}

catalog_job<bool> verify_api_key(std::string tenant, std::string key) {
  return [tenant = std::move(tenant), key = std::move(key)](pqxx::transaction_base& tx) {
    if (key.size() < key_prefix_length || key.compare(0, 3, "pk_") != 0) return false;
    if (!valid_catalog_id(tenant)) return false;
    std::string want = api_key_hash(key);
    bool match = false;
    for (const auto& row :
         tx.exec_params("SELECT key_hash FROM api_keys WHERE tenant_id = $1 AND prefix = $2 AND "
                        "revoked_at IS NULL",
                        tenant, key.substr(0, key_prefix_length))) {
      auto have = row[0].as<std::string>();
      if (have.size() == want.size() && CRYPTO_memcmp(have.data(), want.data(), want.size()) == 0)
        match = true;
    }
    return match;
  };
}

catalog_job<void> revoke_api_key(std::string tenant, std::int64_t key_id, std::string actor) {
  return [tenant = std::move(tenant), key_id,
          actor = std::move(actor)](pqxx::transaction_base& tx) {
    require_id("tenant id", tenant);
    auto r = tx.exec_params(
        "UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND id = $2 AND "
        "revoked_at IS NULL RETURNING prefix",
        tenant, key_id);
    if (r.empty()) {
      if (tx.exec_params("SELECT 1 FROM api_keys WHERE tenant_id = $1 AND id = $2", tenant, key_id)
              .empty())
        fail("api_key_not_found",
             "tenant '" + tenant + "' has no API key " + std::to_string(key_id));
      return;
    }
    write_audit(tx, actor, "api_key.revoke", tenant, "api_key/" + std::to_string(key_id),
                {{"prefix", r[0][0].as<std::string>()}});
  };
}

catalog_job<std::vector<api_key_record>> list_api_keys(std::string tenant) {
  return [tenant = std::move(tenant)](pqxx::transaction_base& tx) {
    require_tenant(tx, tenant);
    std::vector<api_key_record> out;
    for (const auto& row : tx.exec_params("SELECT id, name, prefix, " + ms("created_at") +
                                              ", revoked_at IS NOT NULL FROM api_keys "
                                              "WHERE tenant_id = $1 ORDER BY id",
                                          tenant))
      out.push_back(api_key_record{row[0].as<std::int64_t>(), row[1].as<std::string>(),
                                   row[2].as<std::string>(), row[3].as<std::int64_t>(),
                                   row[4].as<bool>()});
    return out;
  };
}

}  // namespace parley::store
