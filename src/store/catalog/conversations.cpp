#include "src/store/catalog/conversations.hpp"

#include "src/store/catalog/detail.hpp"

namespace parley::store {

using namespace detail;

catalog_job<void> upsert_conversation(conversation_record c) {
  return [c = std::move(c)](pqxx::transaction_base& tx) {
    require_id("tenant id", c.tenant);
    if (c.session_id.empty()) fail("invalid_argument", "conversation session id must not be empty");
    tx.exec_params(
        "INSERT INTO conversations (tenant_id, session_id, bot_id, version, channel, "
        "external_key, started_at) VALUES ($1, $2, $3, $4, $5, $6, " +
            at_or_now("$7") + ") ON CONFLICT (tenant_id, session_id) DO NOTHING",
        c.tenant, clean_text(c.session_id), clean_text(c.bot), c.version, clean_text(c.channel),
        clean_text(c.external_key), c.started_at_ms);
  };
}

catalog_job<bool> end_conversation(std::string tenant, std::string session, std::string reason) {
  return [tenant = std::move(tenant), session = std::move(session),
          reason = std::move(reason)](pqxx::transaction_base& tx) {
    auto r = tx.exec_params(
        "UPDATE conversations SET ended_at = now(), end_reason = $3 "
        "WHERE tenant_id = $1 AND session_id = $2 AND ended_at IS NULL",
        tenant, clean_text(session), clean_text(reason));
    return r.affected_rows() > 0;
  };
}

catalog_job<std::optional<conversation_record>> get_conversation(std::string tenant,
                                                                 std::string session) {
  return [tenant = std::move(tenant), session = std::move(session)](
             pqxx::transaction_base& tx) -> std::optional<conversation_record> {
    auto r = tx.exec_params("SELECT bot_id, version, channel, external_key, " + ms("started_at") +
                                ", " + ms("ended_at") +
                                ", coalesce(end_reason, '') FROM conversations "
                                "WHERE tenant_id = $1 AND session_id = $2",
                            tenant, clean_text(session));
    if (r.empty()) return std::nullopt;
    conversation_record c;
    c.tenant = tenant;
    c.session_id = session;
    c.bot = r[0][0].as<std::string>();
    c.version = r[0][1].as<int>();
    c.channel = r[0][2].as<std::string>();
    c.external_key = r[0][3].as<std::string>();
    c.started_at_ms = r[0][4].as<std::int64_t>();
    if (!r[0][5].is_null()) c.ended_at_ms = r[0][5].as<std::int64_t>();
    c.end_reason = r[0][6].as<std::string>();
    return c;
  };
}

}  // namespace parley::store
