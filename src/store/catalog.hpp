#pragma once
/// parley::store catalog: typed access to what Parley keeps in Postgres —
/// tenants and their API keys, bots and their immutable versions, the active
/// version pointer, conversations, transcripts, quarantined messages and the
/// audit log (schema: migrations/0002_catalog.sql; transcripts:
/// migrations/0004_transcript_turns.sql).
///
/// One header per domain under src/store/catalog/ (this one includes them all). Every
/// operation is a job, run by one runner (catalog/job.hpp): run_job (a callback on a
/// worker thread of the postgres_client) or run_job_sync (blocking; tools, start-up
/// and tests only).
///
/// Transactions: each job is one transaction. Every admin change (tenant,
/// API key, deploy, activate, rollback) writes its audit_log row in the same
/// transaction, so a change and its audit row exist together or not at all.
///
/// Errors: the codes of postgres.hpp (`postgres_unavailable`,
/// `postgres_error`, ...) plus these, each with a message naming the thing at
/// fault: `invalid_argument` (a malformed id, an empty name, a bad row),
/// `tenant_exists`, `tenant_not_found`, `bot_not_found`, `version_not_found`,
/// `api_key_not_found`, `no_active_version`, `no_previous_version`, and for canaries
/// (catalog/canary.hpp) `canary_running`, `no_canary`.
///
/// Times are Unix milliseconds (UTC).

#include "src/store/catalog/api_keys.hpp"
#include "src/store/catalog/audit.hpp"
#include "src/store/catalog/bot_versions.hpp"
#include "src/store/catalog/canary.hpp"
#include "src/store/catalog/conversations.hpp"
#include "src/store/catalog/dead_letters.hpp"
#include "src/store/catalog/job.hpp"
#include "src/store/catalog/limits.hpp"
#include "src/store/catalog/quarantine.hpp"
#include "src/store/catalog/recorded.hpp"
#include "src/store/catalog/secrets.hpp"
#include "src/store/catalog/tenants.hpp"
#include "src/store/catalog/transcripts.hpp"
