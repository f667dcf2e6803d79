#pragma once
/// Shared by the catalog and admin tests: one migrated Postgres client for the
/// whole binary, sample bot files, and unique tenant ids.

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

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

}  // namespace parley::catalog_testing
