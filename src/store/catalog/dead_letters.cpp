#include "src/store/catalog/dead_letters.hpp"

#include "src/store/catalog/detail.hpp"

namespace parley::store {

using namespace detail;

catalog_job<bool> insert_dead_letter(dead_letter d) {
  return [d = std::move(d)](pqxx::transaction_base& tx) {
    auto r = tx.exec_params(
        "INSERT INTO outbox_dead_letters (tenant_id, session_id, sequence, reply_index, channel, "
        "address, body, reason, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (tenant_id, session_id, sequence, reply_index) DO NOTHING",
        clean_text(d.tenant), clean_text(d.session_id), d.sequence, d.reply_index,
        clean_text(d.channel), clean_text(d.address), clean_text(d.body), clean_text(d.reason),
        d.attempts);
    return r.affected_rows() == 1;
  };
}

catalog_job<std::vector<dead_letter>> list_dead_letters(std::string tenant, int limit) {
  return [tenant = std::move(tenant), limit](pqxx::transaction_base& tx) {
    std::vector<dead_letter> out;
    for (const auto& row : tx.exec_params(
             "SELECT id, session_id, sequence, reply_index, channel, address, body, reason, "
             "attempts, " +
                 ms("created_at") +
                 " FROM outbox_dead_letters WHERE tenant_id = $1 ORDER BY id LIMIT $2",
             tenant, limit)) {
      dead_letter d;
      d.id = row[0].as<std::int64_t>();
      d.tenant = tenant;
      d.session_id = row[1].as<std::string>();
      d.sequence = row[2].as<std::int64_t>();
      d.reply_index = row[3].as<int>();
      d.channel = row[4].as<std::string>();
      d.address = row[5].as<std::string>();
      d.body = row[6].as<std::string>();
      d.reason = row[7].as<std::string>();
      d.attempts = row[8].as<int>();
      d.created_at_ms = row[9].as<std::int64_t>();
      out.push_back(std::move(d));
    }
    return out;
  };
}

catalog_job<std::size_t> insert_receipts(std::vector<message_receipt> receipts) {
  return [receipts = std::move(receipts)](pqxx::transaction_base& tx) {
    for (const auto& r : receipts)
      tx.exec_params(
          "INSERT INTO message_receipts (tenant_id, bot_id, channel, address, "
          "provider_message_id, status, error_code, watermark) VALUES ($1, $2, $3, $4, $5, $6, "
          "NULLIF($7, '')::bigint, to_timestamp(NULLIF($8, '')::bigint / 1000.0))",
          clean_text(r.tenant), clean_text(r.bot), clean_text(r.channel), clean_text(r.address),
          clean_text(r.provider_message_id), clean_text(r.status),
          r.error_code ? std::to_string(*r.error_code) : std::string(),
          r.watermark_ms ? std::to_string(*r.watermark_ms) : std::string());
    return receipts.size();
  };
}

catalog_job<std::vector<message_receipt>> list_receipts(std::string tenant, std::string address,
                                                        int limit) {
  return [tenant = std::move(tenant), address = std::move(address),
          limit](pqxx::transaction_base& tx) {
    std::vector<message_receipt> out;
    for (const auto& row : tx.exec_params(
             "SELECT bot_id, channel, provider_message_id, status, error_code, " + ms("watermark") +
                 " FROM message_receipts WHERE tenant_id = $1 AND address = $2 ORDER BY id "
                 "LIMIT $3",
             tenant, address, limit)) {
      message_receipt r;
      r.tenant = tenant;
      r.address = address;
      r.bot = row[0].as<std::string>();
      r.channel = row[1].as<std::string>();
      r.provider_message_id = row[2].as<std::string>();
      r.status = row[3].as<std::string>();
      if (!row[4].is_null()) r.error_code = row[4].as<std::int64_t>();
      if (!row[5].is_null()) r.watermark_ms = row[5].as<std::int64_t>();
      out.push_back(std::move(r));
    }
    return out;
  };
}

catalog_job<bool> open_handoff(handoff_record h) {
  return [h = std::move(h)](pqxx::transaction_base& tx) {
    std::string targets;
    for (const auto& t : h.targets) targets += (targets.empty() ? "" : ",") + t;
    auto r = tx.exec_params(
        "INSERT INTO handoffs (tenant_id, session_id, sequence, bot_id, channel, address, queue, "
        "targets) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
        "ON CONFLICT (tenant_id, session_id, sequence) DO NOTHING",
        clean_text(h.tenant), clean_text(h.session_id), h.sequence, clean_text(h.bot),
        clean_text(h.channel), clean_text(h.address), clean_text(h.queue), clean_text(targets));
    return r.affected_rows() == 1;
  };
}

catalog_job<std::vector<handoff_record>> list_handoffs(std::string tenant, bool open_only,
                                                       int limit) {
  return [tenant = std::move(tenant), open_only, limit](pqxx::transaction_base& tx) {
    std::vector<handoff_record> out;
    for (const auto& row : tx.exec_params(
             "SELECT session_id, sequence, bot_id, channel, address, queue, targets, " +
                 ms("opened_at") +
                 ", closed_at IS NOT NULL, coalesce(outcome, '') FROM handoffs WHERE tenant_id = "
                 "$1 AND ($2 = false OR closed_at IS NULL) ORDER BY opened_at, session_id LIMIT $3",
             tenant, open_only, limit)) {
      handoff_record h;
      h.tenant = tenant;
      h.session_id = row[0].as<std::string>();
      h.sequence = row[1].as<std::int64_t>();
      h.bot = row[2].as<std::string>();
      h.channel = row[3].as<std::string>();
      h.address = row[4].as<std::string>();
      h.queue = row[5].as<std::string>();
      auto targets = row[6].as<std::string>();
      for (std::size_t start = 0; start < targets.size();) {
        auto comma = targets.find(',', start);
        if (comma == std::string::npos) comma = targets.size();
        h.targets.push_back(targets.substr(start, comma - start));
        start = comma + 1;
      }
      h.opened_at_ms = row[7].as<std::int64_t>();
      h.closed = row[8].as<bool>();
      h.outcome = row[9].as<std::string>();
      out.push_back(std::move(h));
    }
    return out;
  };
}

catalog_job<bool> close_handoff(std::string tenant, std::string session_id, std::string outcome) {
  return [tenant = std::move(tenant), session_id = std::move(session_id),
          outcome = std::move(outcome)](pqxx::transaction_base& tx) {
    auto r = tx.exec_params(
        "UPDATE handoffs SET closed_at = now(), outcome = $3 "
        "WHERE tenant_id = $1 AND session_id = $2 AND closed_at IS NULL",
        tenant, session_id, outcome);
    return r.affected_rows() > 0;
  };
}

}  // namespace parley::store
