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
