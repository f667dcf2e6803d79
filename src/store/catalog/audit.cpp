#include "src/store/catalog/audit.hpp"

#include "src/store/catalog/detail.hpp"

namespace parley::store {

using namespace detail;

namespace detail {

std::int64_t write_audit(pqxx::transaction_base& tx, const std::string& actor,
                         const std::string& action, const std::string& tenant,
                         const std::string& target, const json& details) {
  auto row = tx.exec_params1(
      "INSERT INTO audit_log (actor, action, tenant_id, target, details) "
      "VALUES ($1, $2, NULLIF($3, ''), $4, $5::jsonb) RETURNING id",
      clean_text(actor.empty() ? std::string("unknown") : actor), action, tenant,
      clean_text(target), details.dump(-1, ' ', false, json::error_handler_t::replace));
  return row[0].as<std::int64_t>();
}

}  // namespace detail

catalog_job<std::int64_t> audit(audit_entry e) {
  return [e = std::move(e)](pqxx::transaction_base& tx) {
    if (e.action.empty()) fail("invalid_argument", "audit action must not be empty");
    auto details = json::parse(e.details_json.empty() ? "{}" : e.details_json, nullptr, false);
    if (!details.is_object())
      fail("invalid_argument", "audit details of '" + e.action + "' must be a JSON object");
    return write_audit(tx, e.actor, e.action, e.tenant, e.target, details);
  };
}

catalog_job<std::vector<audit_entry>> list_audit(std::string tenant, std::size_t limit) {
  return [tenant = std::move(tenant), limit](pqxx::transaction_base& tx) {
    std::vector<audit_entry> out;
    for (const auto& row :
         tx.exec_params("SELECT id, " + ms("at") +
                            ", actor, action, target, details::text FROM audit_log "
                            "WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
                        tenant, static_cast<std::int64_t>(limit))) {
      audit_entry e;
      e.id = row[0].as<std::int64_t>();
      e.at_ms = row[1].as<std::int64_t>();
      e.actor = row[2].as<std::string>();
      e.action = row[3].as<std::string>();
      e.tenant = tenant;
      e.target = row[4].as<std::string>();
      e.details_json = row[5].as<std::string>();
      out.push_back(std::move(e));
    }
    return out;
  };
}

}  // namespace parley::store
