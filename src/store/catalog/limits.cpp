#include "src/store/catalog/limits.hpp"

#include <sstream>

#include "src/store/catalog/detail.hpp"

namespace parley::store {

using namespace detail;

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += ' ';
    out += s;
  }
  return out;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string item; in >> item;) out.push_back(item);
  return out;
}

}  // namespace

catalog_job<std::optional<tenant_limits_record>> get_tenant_limits(std::string tenant,
                                                                   bool must_exist) {
  return [tenant = std::move(tenant),
          must_exist](pqxx::transaction_base& tx) -> std::optional<tenant_limits_record> {
    if (must_exist)
      require_tenant(tx, tenant);
    else
      require_id("tenant id", tenant);
    auto r = tx.exec_params("SELECT max_attachments, max_url_bytes, schemes, content_types, " +
                                ms("updated_at") + " FROM tenant_limits WHERE tenant_id = $1",
                            tenant);
    if (r.empty()) return std::nullopt;
    tenant_limits_record out;
    out.max_attachments = r[0][0].as<std::int64_t>();
    out.max_url_bytes = r[0][1].as<std::int64_t>();
    out.schemes = split(r[0][2].as<std::string>());
    out.content_types = split(r[0][3].as<std::string>());
    out.updated_at_ms = r[0][4].as<std::int64_t>();
    return out;
  };
}

catalog_job<void> put_tenant_limits(std::string tenant, tenant_limits_record limits,
                                    std::string actor) {
  return [tenant = std::move(tenant), limits = std::move(limits),
          actor = std::move(actor)](pqxx::transaction_base& tx) {
    require_tenant(tx, tenant);
    for (const auto* list : {&limits.schemes, &limits.content_types})
      for (const auto& s : *list)
        if (s.empty() || s.find_first_of(" \t\r\n") != std::string::npos)
          fail("invalid_argument", "a scheme or content type must be one word: '" + s + "'");
    auto schemes = join(limits.schemes);
    auto types = join(limits.content_types);
    tx.exec_params(
        "INSERT INTO tenant_limits (tenant_id, max_attachments, max_url_bytes, schemes, "
        "content_types) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (tenant_id) DO UPDATE SET max_attachments = EXCLUDED.max_attachments, "
        "max_url_bytes = EXCLUDED.max_url_bytes, schemes = EXCLUDED.schemes, "
        "content_types = EXCLUDED.content_types, updated_at = now()",
        tenant, limits.max_attachments, limits.max_url_bytes, schemes, types);
    write_audit(tx, actor, "limits.set", tenant, "limits",
                {{"max_attachments", limits.max_attachments},
                 {"max_url_bytes", limits.max_url_bytes},
                 {"schemes", limits.schemes},
                 {"content_types", limits.content_types}});
  };
}

}  // namespace parley::store
