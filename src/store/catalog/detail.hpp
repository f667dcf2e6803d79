#pragma once
/// Internal to src/store/catalog/*.cpp: SQL fragments, id and tenant checks, text
/// cleaning and the audit row every admin change writes. Not for callers outside.

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <cstdint>
#include <string>

#include "src/store/catalog/job.hpp"
#include "src/store/catalog/tenants.hpp"

namespace parley::store::detail {

using json = nlohmann::json;

/// A Postgres array literal ("{...}") built element by element, for statements that
/// pass a list as one array parameter (unnest(), = ANY()).
class array_literal {
 public:
  void text(const std::string& v) {
    separate();
    s_ += '"';
    // Whole runs between characters to escape (texts rarely hold any): appending
    // byte by byte was the largest cost of building a transcript batch.
    std::size_t from = 0;
    for (auto at = v.find_first_of("\"\\"); at != std::string::npos;
         at = v.find_first_of("\"\\", at + 1)) {
      s_.append(v, from, at - from);
      s_ += '\\';
      from = at;
    }
    s_.append(v, from, std::string::npos);
    s_ += '"';
  }
  void number(long long v) {
    separate();
    s_ += std::to_string(v);
  }
  void null() {
    separate();
    s_ += "NULL";
  }
  std::string str() const { return s_ + '}'; }

 private:
  void separate() {
    if (s_.size() > 1) s_ += ',';
  }
  std::string s_ = "{";
};

/// Unix milliseconds of a timestamptz column, as SQL.
std::string ms(const std::string& column);

/// SQL for a timestamp parameter given in Unix milliseconds, 0 meaning now().
std::string at_or_now(const std::string& param);

/// Fails with `invalid_argument` unless valid_catalog_id(id); `what` names it.
void require_id(const std::string& what, const std::string& id);

/// require_id, then `tenant_not_found` unless the tenant exists.
void require_tenant(pqxx::transaction_base& tx, const std::string& tenant);

/// Text that Postgres accepts in a text column: valid UTF-8 without NUL.
/// Invalid sequences become U+FFFD and NULs are dropped, so a user's odd bytes
/// cannot make a transcript batch fail forever.
std::string clean_text(const std::string& in);

/// Appends an audit_log row in `tx` (audit.cpp). Result: its id.
std::int64_t write_audit(pqxx::transaction_base& tx, const std::string& actor,
                         const std::string& action, const std::string& tenant,
                         const std::string& target, const json& details);

}  // namespace parley::store::detail
