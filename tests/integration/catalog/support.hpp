#pragma once
/// Shared by the catalog and admin tests: one migrated Postgres client for the
/// whole binary, sample bot files, and unique tenant ids.

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "src/store/catalog.hpp"
#include "src/store/migrations.hpp"
#include "src/store/postgres.hpp"
#include "tests/support/servers.hpp"

namespace parley::catalog_testing {

using store::testing::eventually;
using store::testing::require_env;
using store::testing::unique_name;

/// A client on DATABASE_URL with every migration applied (to the public
/// schema, as parleyd does; tests stay apart by unique tenant ids). Null after
/// recording a failure when DATABASE_URL is unset or Postgres is unusable.
inline store::postgres_client* shared_postgres() {
  static std::unique_ptr<store::postgres_client> pg =
      []() -> std::unique_ptr<store::postgres_client> {
    auto url = require_env("DATABASE_URL");
    if (url.empty()) return nullptr;
    auto c = store::postgres_client::create({url, 3});
    if (!c) {
      ADD_FAILURE() << c.err().message;
      return nullptr;
    }
    auto m = store::apply_migrations(**c);
    if (!m) {
      ADD_FAILURE() << "migrations: " << m.err().code << ": " << m.err().message;
      return nullptr;
    }
    return std::move(*c);
  }();
  if (!pg) ADD_FAILURE() << "no usable Postgres (see the failures above)";
  return pg.get();
}

/// One whole turn's transcript line, as the conversation actor builds it.
inline store::transcript_line turn_line(const std::string& tenant, const std::string& session,
                                        std::int64_t sequence, std::optional<std::string> inbound,
                                        const std::vector<std::string>& replies,
                                        std::int64_t at_ms = 0) {
  store::transcript_line_builder b(tenant, session, sequence);
  if (inbound) b.inbound(*inbound);
  for (const auto& r : replies) b.reply(r);
  return b.finish(at_ms);
}

/// Stores a turn with payloads by SQL (the transcript writer writes none), for tests of
/// how transcripts read back: `outbound` is the turn's JSON array of replies (a string,
/// {"text", "payload"} or null each).
inline void seed_turn_sql(store::postgres_client& pg, const std::string& tenant,
                          const std::string& session, std::int64_t sequence,
                          std::optional<std::string> inbound, const std::string& inbound_payload,
                          const std::string& outbound, std::int64_t at_ms) {
  auto r = pg.run_sync([&](pqxx::transaction_base& tx) {
    tx.exec_params(
        "INSERT INTO transcript_turns (tenant_id, session_id, sequence, inbound, "
        "inbound_payload, outbound, created_at) VALUES ($1, $2, $3, CASE WHEN $8 THEN $4 END, "
        "NULLIF($5, '')::jsonb, $6::jsonb, 'epoch'::timestamptz + $7 * interval '1 millisecond')",
        tenant, session, sequence, inbound.value_or(""), inbound_payload, outbound, at_ms,
        inbound.has_value());
  });
  EXPECT_TRUE(r) << r.err().message;
}

/// The text of a file under config/bots/.
inline std::string sample_bot(const std::string& name) {
  std::ifstream in(std::string(PARLEY_SOURCE_DIR) + "/config/bots/" + name, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot read config/bots/" << name;
    return {};
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The sample with its first `from` replaced by `to` (fails the test if absent).
inline std::string edited(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  if (at == std::string::npos) {
    ADD_FAILURE() << "'" << from << "' is not in the sample";
    return text;
  }
  return text.replace(at, from.size(), to);
}

/// A tenant id no other test or run uses (see unique_name).
inline std::string unique_tenant(const std::string& stem) { return unique_name(stem); }

/// What a shell command printed (stdout and stderr together) and its exit code.
struct run_result {
  int exit_code = -1;
  std::string output;
};

/// Runs `cmd` with /bin/sh and waits for it (the parleyctl tests).
inline run_result run_shell(const std::string& cmd) {
  run_result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace parley::catalog_testing
