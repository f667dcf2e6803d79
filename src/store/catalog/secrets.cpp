#include "src/store/catalog/secrets.hpp"

#include <openssl/crypto.h>

#include "src/store/catalog/detail.hpp"

namespace parley::store {

using namespace detail;

namespace {

std::string to_hex(const std::string& raw) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 0x0F]);
  }
  return out;
}

std::string from_hex(const std::string& hex) {
  auto digit = [](char c) {
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;  // Postgres's encode(): 0-9a-f
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(digit(hex[i]) * 16 + digit(hex[i + 1])));
  return out;
}

void require_name(const std::string& name) {
  if (!secrets::valid_name(name)) fail("invalid_argument", secrets::name_problem(name));
}

void require_current(const secrets::keyring& keys) {
  if (!keys.has_current())
    fail("secrets_key_missing",
         "this node has no master key for tenant secrets: set PARLEY_SECRETS_KEY (64 hex digits, "
         "see docs/operations.md, \"Secrets\")");
}

/// SQL columns for a sealed row, bytes as hex.
const char* sealed_columns = "name, key_id, encode(nonce, 'hex'), encode(ciphertext, 'hex')";

secrets::sealed sealed_of(const pqxx::row& row) {
  return secrets::sealed{row[1].as<std::string>(), from_hex(row[2].as<std::string>()),
                         from_hex(row[3].as<std::string>())};
}

std::string open_or_fail(const secrets::keyring& keys, const std::string& tenant,
                         const std::string& name, const secrets::sealed& s) {
  auto v = secrets::open(keys, tenant, name, s);
  if (!v) fail(v.err().code, v.err().message);
  return std::move(*v);
}

}  // namespace

catalog_job<bool> put_secret(secrets::keyring keys, std::string tenant, std::string name,
                             std::string value, std::string actor) {
  return [keys = std::move(keys), tenant = std::move(tenant), name = std::move(name),
          value = std::move(value), actor = std::move(actor)](pqxx::transaction_base& tx) {
    require_current(keys);
    require_id("tenant id", tenant);
    require_name(name);
    if (value.size() > secrets::max_value_bytes)
      fail("invalid_argument", "the value of secret '" + name + "' is " +
                                   std::to_string(value.size()) + " bytes; at most " +
                                   std::to_string(secrets::max_value_bytes) + " are allowed");
    require_tenant(tx, tenant);
    auto s = secrets::seal(keys.current(), tenant, name, value);
    // xmax = 0 only on a row this statement inserted (not on one it updated).
    auto row = tx.exec_params1(
        "INSERT INTO tenant_secrets (tenant_id, name, key_id, nonce, ciphertext) "
        "VALUES ($1, $2, $3, decode($4, 'hex'), decode($5, 'hex')) "
        "ON CONFLICT (tenant_id, name) DO UPDATE SET key_id = EXCLUDED.key_id, "
        "nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext, updated_at = now() "
        "RETURNING (xmax = 0)",
        tenant, name, s.key_id, to_hex(s.nonce), to_hex(s.ciphertext));
    bool created = row[0].as<bool>();
    write_audit(tx, actor, "secret.set", tenant, "secret/" + name,
                {{"name", name}, {"key_id", s.key_id}, {"created", created}});
    return created;
  };
}

catalog_job<std::vector<secret_record>> list_secrets(std::string tenant) {
  return [tenant = std::move(tenant)](pqxx::transaction_base& tx) {
    require_tenant(tx, tenant);
    std::vector<secret_record> out;
    for (const auto& row : tx.exec_params("SELECT name, key_id, " + ms("updated_at") +
                                              " FROM tenant_secrets WHERE tenant_id = $1 "
                                              "ORDER BY name COLLATE \"C\"",
                                          tenant))
      out.push_back(secret_record{row[0].as<std::string>(), row[1].as<std::string>(),
                                  row[2].as<std::int64_t>()});
    return out;
  };
}

catalog_job<std::map<std::string, std::string>> tenant_secrets(secrets::keyring keys,
                                                               std::string tenant) {
  return [keys = std::move(keys), tenant = std::move(tenant)](pqxx::transaction_base& tx) {
    require_id("tenant id", tenant);
    std::map<std::string, std::string> out;
    for (const auto& row : tx.exec_params(
             std::string("SELECT ") + sealed_columns + " FROM tenant_secrets WHERE tenant_id = $1",
             tenant)) {
      auto name = row[0].as<std::string>();
      out.emplace(name, open_or_fail(keys, tenant, name, sealed_of(row)));
    }
    return out;
  };
}

catalog_job<std::optional<std::string>> get_secret(secrets::keyring keys, std::string tenant,
                                                   std::string name) {
  return [keys = std::move(keys), tenant = std::move(tenant),
          name = std::move(name)](pqxx::transaction_base& tx) -> std::optional<std::string> {
    require_id("tenant id", tenant);
    require_name(name);
    auto r = tx.exec_params(std::string("SELECT ") + sealed_columns +
                                " FROM tenant_secrets WHERE tenant_id = $1 AND name = $2",
                            tenant, name);
    if (r.empty()) return std::nullopt;
    return open_or_fail(keys, tenant, name, sealed_of(r[0]));
  };
}

catalog_job<void> delete_secret(std::string tenant, std::string name, std::string actor) {
  return [tenant = std::move(tenant), name = std::move(name),
          actor = std::move(actor)](pqxx::transaction_base& tx) {
    require_id("tenant id", tenant);
    require_name(name);
    auto r = tx.exec_params(
        "DELETE FROM tenant_secrets WHERE tenant_id = $1 AND name = $2 RETURNING key_id", tenant,
        name);
    if (r.empty()) {
      require_tenant(tx, tenant);
      fail("secret_not_found", "tenant '" + tenant + "' has no secret '" + name + "'");
    }
    write_audit(tx, actor, "secret.delete", tenant, "secret/" + name, {{"name", name}});
  };
}

catalog_job<rotation_result> rotate_secrets(secrets::keyring keys, std::string actor) {
  return [keys = std::move(keys), actor = std::move(actor)](pqxx::transaction_base& tx) {
    require_current(keys);
    const auto& current = keys.current();
    rotation_result out;
    std::map<std::string, std::int64_t> per_tenant;
    for (const auto& row : tx.exec_params(std::string("SELECT ") + sealed_columns +
                                              ", tenant_id FROM tenant_secrets WHERE key_id <> $1 "
                                              "ORDER BY tenant_id, name FOR UPDATE",
                                          current.id)) {
      auto name = row[0].as<std::string>();
      auto tenant = row[4].as<std::string>();
      auto value = open_or_fail(keys, tenant, name, sealed_of(row));
      auto s = secrets::seal(current, tenant, name, value);
      OPENSSL_cleanse(value.data(), value.size());
      // updated_at stays: the value did not change, only its sealing.
      tx.exec_params(
          "UPDATE tenant_secrets SET key_id = $3, nonce = decode($4, 'hex'), "
          "ciphertext = decode($5, 'hex') WHERE tenant_id = $1 AND name = $2",
          tenant, name, s.key_id, to_hex(s.nonce), to_hex(s.ciphertext));
      ++out.reencrypted;
      ++per_tenant[tenant];
    }
    for (const auto& [tenant, n] : per_tenant) {
      out.tenants.push_back(tenant);
      write_audit(tx, actor, "secrets.rotate", tenant, "secrets",
                  {{"reencrypted", n}, {"key_id", current.id}});
    }
    return out;
  };
}

catalog_job<std::map<std::string, std::int64_t>> secret_key_ids() {
  return [](pqxx::transaction_base& tx) {
    std::map<std::string, std::int64_t> out;
    if (tx.exec("SELECT to_regclass('tenant_secrets') IS NOT NULL")[0][0].as<bool>() == false)
      return out;
    for (const auto& row :
         tx.exec("SELECT key_id, count(*) FROM tenant_secrets GROUP BY key_id ORDER BY key_id"))
      out.emplace(row[0].as<std::string>(), row[1].as<std::int64_t>());
    return out;
  };
}

}  // namespace parley::store
