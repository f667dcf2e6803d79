#include "src/store/catalog/quarantine.hpp"

#include "src/store/catalog/detail.hpp"

namespace parley::store {

using namespace detail;

catalog_job<std::int64_t> insert_quarantine(quarantined_message m) {
  return [m = std::move(m)](pqxx::transaction_base& tx) {
    return tx
        .exec_params1(
            "INSERT INTO quarantined_messages (tenant_id, session_id, message_id, payload, error, "
            "attempts) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            clean_text(m.tenant), clean_text(m.session_id), clean_text(m.message_id),
            clean_text(m.payload), clean_text(m.error), m.attempts)[0]
        .as<std::int64_t>();
  };
}

catalog_job<std::vector<quarantined_message>> list_quarantine(std::string tenant) {
  return [tenant = std::move(tenant)](pqxx::transaction_base& tx) {
    std::vector<quarantined_message> out;
    for (const auto& row : tx.exec_params(
             "SELECT id, session_id, message_id, payload, error, attempts, " + ms("created_at") +
                 " FROM quarantined_messages WHERE tenant_id = $1 ORDER BY id",
             tenant)) {
      quarantined_message m;
      m.id = row[0].as<std::int64_t>();
      m.tenant = tenant;
      m.session_id = row[1].as<std::string>();
      m.message_id = row[2].as<std::string>();
      m.payload = row[3].as<std::string>();
      m.error = row[4].as<std::string>();
      m.attempts = row[5].as<int>();
      m.created_at_ms = row[6].as<std::int64_t>();
      out.push_back(std::move(m));
    }
    return out;
  };
}

}  // namespace parley::store
