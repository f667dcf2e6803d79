#include "src/store/catalog/tenants.hpp"

#include "src/store/catalog/detail.hpp"

namespace parley::store {

using namespace detail;

namespace {

tenant_record tenant_from(const pqxx::row& row) {
  return tenant_record{row[0].as<std::string>(), row[1].as<std::string>(),
                       row[2].as<std::int64_t>()};
}

}  // namespace

catalog_job<tenant_record> create_tenant(std::string id, std::string name, std::string actor) {
  return [id = std::move(id), name = std::move(name),
          actor = std::move(actor)](pqxx::transaction_base& tx) {
    require_id("tenant id", id);
    if (name.empty()) fail("invalid_argument", "tenant name must not be empty");
    auto r = tx.exec_params(
        "INSERT INTO tenants (id, name) VALUES ($1, $2) ON CONFLICT (id) DO "
        "NOTHING RETURNING id, name, " +
            ms("created_at"),
        id, clean_text(name));
    if (r.empty()) fail("tenant_exists", "tenant '" + id + "' already exists");
    tenant_record t{r[0][0].as<std::string>(), r[0][1].as<std::string>(),
                    r[0][2].as<std::int64_t>()};
    write_audit(tx, actor, "tenant.create", id, id, {{"name", t.name}});
    return t;
  };
}

catalog_job<std::vector<tenant_record>> list_tenants() {
  return [](pqxx::transaction_base& tx) {
    std::vector<tenant_record> out;
    for (const auto& row :
         tx.exec("SELECT id, name, " + ms("created_at") + " FROM tenants ORDER BY id"))
      out.push_back(tenant_from(row));
    return out;
  };
}

catalog_job<std::optional<tenant_record>> get_tenant(std::string id) {
  return [id = std::move(id)](pqxx::transaction_base& tx) -> std::optional<tenant_record> {
    if (!valid_catalog_id(id)) return std::nullopt;
    auto r =
        tx.exec_params("SELECT id, name, " + ms("created_at") + " FROM tenants WHERE id = $1", id);
    if (r.empty()) return std::nullopt;
    return tenant_from(r[0]);
  };
}

}  // namespace parley::store
