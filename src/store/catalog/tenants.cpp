#include "src/store/catalog/tenants.hpp"

#include "src/store/catalog/detail.hpp"

namespace parley::store {

using namespace detail;

namespace {

tenant_record tenant_from(const pqxx::row& row) {
  return tenant_record{row[0].as<std::string>(), row[1].as<std::string>(),
                       row[2].as<std::int64_t>(),
                       row[3].is_null() ? std::string() : row[3].as<std::string>()};
}

}  // namespace

catalog_job<tenant_record> create_tenant(std::string id, std::string name, std::string actor,
                                         std::string home_region) {
  return [id = std::move(id), name = std::move(name), actor = std::move(actor),
          home_region = std::move(home_region)](pqxx::transaction_base& tx) {
    require_id("tenant id", id);
    if (name.empty()) fail("invalid_argument", "tenant name must not be empty");
    auto r = tx.exec_params(
        "INSERT INTO tenants (id, name, home_region) VALUES ($1, $2, NULLIF($3, '')) "
        "ON CONFLICT (id) DO NOTHING RETURNING id, name, " +
            ms("created_at") + ", home_region",
        id, clean_text(name), home_region);
    if (r.empty()) fail("tenant_exists", "tenant '" + id + "' already exists");
    tenant_record t = tenant_from(r[0]);
    write_audit(tx, actor, "tenant.create", id, id,
                {{"name", t.name}, {"home_region", t.home_region}});
    return t;
  };
}

catalog_job<std::vector<tenant_record>> list_tenants() {
  return [](pqxx::transaction_base& tx) {
    std::vector<tenant_record> out;
    for (const auto& row :
         tx.exec("SELECT id, name, " + ms("created_at") + ", home_region FROM tenants ORDER BY id"))
      out.push_back(tenant_from(row));
    return out;
  };
}

catalog_job<std::optional<tenant_record>> get_tenant(std::string id) {
  return [id = std::move(id)](pqxx::transaction_base& tx) -> std::optional<tenant_record> {
    if (!valid_catalog_id(id)) return std::nullopt;
    auto r = tx.exec_params(
        "SELECT id, name, " + ms("created_at") + ", home_region FROM tenants WHERE id = $1", id);
    if (r.empty()) return std::nullopt;
    return tenant_from(r[0]);
  };
}

}  // namespace parley::store
