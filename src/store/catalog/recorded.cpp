#include "src/store/catalog/recorded.hpp"

#include <map>

#include "src/store/catalog/detail.hpp"

namespace parley::store {

using namespace detail;

catalog_job<recorded_page> recorded_conversations(std::string tenant, std::string bot,
                                                  std::int64_t since_seconds, std::string after,
                                                  int limit, int max_turns) {
  return [=](pqxx::transaction_base& tx) {
    require_id("bot id", bot);
    if (limit < 1 || limit > 500) fail("invalid_argument", "limit must be 1 to 500");
    if (since_seconds < 0) fail("invalid_argument", "since must not be negative");
    std::int64_t after_us = -1;
    std::string after_session;
    if (!after.empty()) {
      auto colon = after.find(':');
      try {
        if (colon == std::string::npos) throw std::invalid_argument("no colon");
        std::size_t used = 0;
        after_us = std::stoll(after.substr(0, colon), &used);
        if (used != colon) throw std::invalid_argument("trailing");
      } catch (const std::exception&) {
        fail("invalid_argument", "after must be the 'next' cursor of a previous page");
      }
      after_session = after.substr(colon + 1);
    }
    require_tenant(tx, tenant);
    recorded_page page;
    // conversations_by_bot (tenant_id, bot_id, started_at) serves the range and order.
    auto convs = tx.exec_params(
        "SELECT session_id, version, channel, " + ms("started_at") +
            ", (extract(epoch FROM started_at) * 1000000)::bigint, coalesce(end_reason, '') "
            "FROM conversations WHERE tenant_id = $1 AND bot_id = $2 "
            "AND ($3::bigint = 0 OR started_at >= now() - $3::bigint * interval '1 second') "
            "AND ($4::bigint < 0 OR (started_at, session_id) > "
            "(timestamptz 'epoch' + $4::bigint * interval '1 microsecond', $5::text)) "
            "ORDER BY started_at, session_id LIMIT $6",
        tenant, bot, since_seconds, after_us, after_session, limit + 1);
    std::map<std::string, std::size_t> index;
    array_literal sessions;
    for (const auto& row : convs) {
      if (static_cast<int>(page.conversations.size()) == limit) break;
      recorded_conversation_row c;
      c.session_id = row[0].as<std::string>();
      c.version = row[1].as<int>();
      c.channel = row[2].as<std::string>();
      c.started_at_ms = row[3].as<std::int64_t>();
      c.started_at_us = row[4].as<std::int64_t>();
      c.end_reason = row[5].as<std::string>();
      index.emplace(c.session_id, page.conversations.size());
      sessions.text(c.session_id);
      page.conversations.push_back(std::move(c));
    }
    if (static_cast<int>(convs.size()) > limit) {
      const auto& last = page.conversations.back();
      page.next = std::to_string(last.started_at_us) + ":" + last.session_id;
    }
    if (page.conversations.empty()) return page;
    // The primary key (session_id, sequence) finds each conversation's turns.
    auto turns = tx.exec_params(
        "SELECT session_id, sequence, coalesce(inbound, ''), outbound::text, "
        "coalesce(replay::text, ''), " +
            ms("created_at") +
            " FROM (SELECT *, row_number() OVER (PARTITION BY session_id ORDER BY sequence) AS n "
            "FROM transcript_turns WHERE session_id = ANY($1::text[]) AND tenant_id = $2) AS t "
            "WHERE n <= $3 + 1 ORDER BY session_id, sequence",
        sessions.str(), tenant, max_turns);
    for (const auto& row : turns) {
      auto& c = page.conversations[index.at(row[0].as<std::string>())];
      if (static_cast<int>(c.turns.size()) == max_turns) {
        c.truncated = true;
        continue;
      }
      recorded_turn_row t;
      t.sequence = row[1].as<std::int64_t>();
      t.inbound = row[2].as<std::string>();
      t.outbound_json = row[3].as<std::string>();
      t.replay_json = row[4].as<std::string>();
      t.at_ms = row[5].as<std::int64_t>();
      c.turns.push_back(std::move(t));
    }
    return page;
  };
}

}  // namespace parley::store
