#pragma once
/// parley::store catalog: typed access to what Parley keeps in Postgres —
/// tenants and their API keys, bots and their immutable versions, the active
/// version pointer, conversations, transcripts, quarantined messages and the
/// audit log (schema: migrations/0002_catalog.sql; transcripts:
/// migrations/0004_transcript_turns.sql).
///
/// Threads: every function comes in two forms. The asynchronous one enqueues a
/// job on the postgres_client and returns at once; `done` runs exactly once on
/// a worker thread of that client, after COMMIT or the failure, and must be
/// short and must not block or throw (see postgres.hpp). The `_sync` form
/// blocks the caller and is for tools, start-up and tests only: never call it
/// from an actor, an HTTP handler, or a callback of the client.
///
/// Transactions: each call is one transaction. Every admin change (tenant,
/// API key, deploy, activate, rollback) writes its audit_log row in the same
/// transaction, so a change and its audit row exist together or not at all.
///
/// Errors: the codes of postgres.hpp (`postgres_unavailable`,
/// `postgres_error`, ...) plus these, each with a message naming the thing at
/// fault: `invalid_argument` (a malformed id, an empty name, a bad row),
/// `tenant_exists`, `tenant_not_found`, `bot_not_found`, `version_not_found`,
/// `api_key_not_found`, `no_active_version`, `no_previous_version`.
///
/// Times are Unix milliseconds (UTC).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/common/result.hpp"
#include "src/store/postgres.hpp"

namespace parley::store {

template <class T>
using catalog_callback = std::function<void(result<T>)>;

/// Whether `id` may name a tenant or a bot: 1 to 64 characters of a-z, A-Z,
/// 0-9, '_', '-' and '.', starting with a letter or digit. Every function
/// taking a tenant or bot id checks it (error `invalid_argument`).
bool valid_catalog_id(const std::string& id);

// ------------------------------------------------------------------ tenants

struct tenant_record {
  std::string id;
  std::string name;
  std::int64_t created_at_ms = 0;
};

/// Creates a tenant. Errors: `invalid_argument`, `tenant_exists`.
void create_tenant(postgres_client& pg, std::string id, std::string name, std::string actor,
                   catalog_callback<tenant_record> done);
result<tenant_record> create_tenant_sync(postgres_client& pg, std::string id, std::string name,
                                         std::string actor);

/// Every tenant, ordered by id.
void list_tenants(postgres_client& pg, catalog_callback<std::vector<tenant_record>> done);
result<std::vector<tenant_record>> list_tenants_sync(postgres_client& pg);

/// One tenant; nullopt when unknown.
void get_tenant(postgres_client& pg, std::string id,
                catalog_callback<std::optional<tenant_record>> done);
result<std::optional<tenant_record>> get_tenant_sync(postgres_client& pg, std::string id);

// ------------------------------------------------------------------ API keys

/// A key just created: `key` is the plaintext, returned this once and never
/// stored ("pk_" + 43 base64url characters of 32 random bytes).
struct api_key_created {
  std::int64_t id = 0;
  std::string key;
  std::string prefix;  ///< first 8 characters of `key`, shown in listings
};

struct api_key_record {
  std::int64_t id = 0;
  std::string name;
  std::string prefix;
  std::int64_t created_at_ms = 0;
  bool revoked = false;
};

/// Hex SHA-256 of a plaintext key, as stored in api_keys.key_hash (for
/// callers that cache verified keys by hash rather than plaintext).
std::string api_key_hash(const std::string& key);

/// Creates an API key for a tenant. Errors: `invalid_argument` (empty name),
/// `tenant_not_found`.
void create_api_key(postgres_client& pg, std::string tenant, std::string name, std::string actor,
                    catalog_callback<api_key_created> done);
result<api_key_created> create_api_key_sync(postgres_client& pg, std::string tenant,
                                            std::string name, std::string actor);

/// Whether `key` is a live (not revoked) API key of `tenant`. Hashes are
/// compared in constant time. A malformed key or unknown tenant is `false`,
/// not an error; only Postgres failures are errors.
void verify_api_key(postgres_client& pg, std::string tenant, std::string key,
                    catalog_callback<bool> done);
result<bool> verify_api_key_sync(postgres_client& pg, std::string tenant, std::string key);

/// Revokes a key by id (idempotent for an already revoked key). Errors:
/// `api_key_not_found` (no such key for this tenant).
void revoke_api_key(postgres_client& pg, std::string tenant, std::int64_t key_id, std::string actor,
                    catalog_callback<void> done);
result<void> revoke_api_key_sync(postgres_client& pg, std::string tenant, std::int64_t key_id,
                                 std::string actor);

/// The tenant's keys (never the plaintext or hash), ordered by id.
void list_api_keys(postgres_client& pg, std::string tenant,
                   catalog_callback<std::vector<api_key_record>> done);
result<std::vector<api_key_record>> list_api_keys_sync(postgres_client& pg, std::string tenant);

// ------------------------------------------------------------------ bots and versions

/// One compiler finding, as stored with a version and shown by the admin API.
struct deploy_diagnostic {
  std::string severity;  ///< "error" or "warning"
  int line = 0;          ///< 1-based; 0 for the whole file
  int column = 0;
  std::string message;
};

struct deploy_request {
  std::string tenant;
  std::string bot;
  std::string source;       ///< the bot definition file's text (YAML or JSON)
  std::string deployed_by;  ///< actor recorded with the version and in the audit log
  bool activate = false;    ///< also make the new version the active one
  std::string file_name;    ///< labels diagnostics; empty: "<bot>.yaml"
};

/// A deploy either stores a new version (`deployed`) or, when the file does
/// not compile, stores nothing and carries the errors in `diagnostics`.
struct deploy_outcome {
  bool deployed = false;
  int version = 0;         ///< the new version (1, 2, 3, ... per bot), when deployed
  std::string program_id;  ///< "<name>@<hash>", when deployed
  bool activated = false;
  std::vector<deploy_diagnostic> diagnostics;  ///< errors and warnings, by position
};

/// Compiles `source` with parley::bot::compile (on the worker thread) and
/// stores it as the bot's next immutable version, creating the bot on its
/// first deploy. Concurrent deploys of one bot get distinct, consecutive
/// versions. Errors: `invalid_argument`, `tenant_not_found`. A file that
/// does not compile is a successful call with `deployed == false`.
void deploy_version(postgres_client& pg, deploy_request request,
                    catalog_callback<deploy_outcome> done);
result<deploy_outcome> deploy_version_sync(postgres_client& pg, deploy_request request);

struct version_info {
  int version = 0;
  std::string program_id;
  std::string deployed_by;
  std::int64_t deployed_at_ms = 0;
  bool active = false;
  std::vector<deploy_diagnostic> warnings;
};

/// The bot's versions, ascending, with the active one marked. Errors:
/// `bot_not_found` (no version was ever deployed).
void list_versions(postgres_client& pg, std::string tenant, std::string bot,
                   catalog_callback<std::vector<version_info>> done);
result<std::vector<version_info>> list_versions_sync(postgres_client& pg, std::string tenant,
                                                     std::string bot);

/// A stored version, ready to load: `program` holds the bytes of
/// parley::bot::serialize (parse them into bot::v1::Program, then bot::load).
struct bot_program {
  std::string tenant;
  std::string bot;
  int version = 0;
  std::string program_id;
  std::string program;
  std::string source;  ///< filled by get_version only (get_active leaves it empty)
};

/// One version. Errors: `version_not_found`.
void get_version(postgres_client& pg, std::string tenant, std::string bot, int version,
                 catalog_callback<bot_program> done);
result<bot_program> get_version_sync(postgres_client& pg, std::string tenant, std::string bot,
                                     int version);

/// The active version. Errors: `no_active_version` (never activated,
/// including an unknown bot).
void get_active(postgres_client& pg, std::string tenant, std::string bot,
                catalog_callback<bot_program> done);
result<bot_program> get_active_sync(postgres_client& pg, std::string tenant, std::string bot);

/// The active pointer after activate or rollback.
struct activation {
  int version = 0;
  std::optional<int> previous_version;
  std::int64_t change_seq = 0;
  bool changed = false;  ///< false: `version` was already active, nothing written
};

/// Makes `version` the active one; the one active before becomes
/// previous_version. Activating the active version changes nothing. Also
/// sends pg_notify('parley_catalog', '{"tenant":..,"bot":..,"version":..,
/// "change_seq":..}'). Errors: `version_not_found`.
void activate(postgres_client& pg, std::string tenant, std::string bot, int version,
              std::string actor, catalog_callback<activation> done);
result<activation> activate_sync(postgres_client& pg, std::string tenant, std::string bot,
                                 int version, std::string actor);

/// Moves the pointer back to previous_version and clears it: one step of
/// undo (a second rollback in a row fails until the next activate).
/// Errors: `no_active_version`, `no_previous_version`.
void rollback(postgres_client& pg, std::string tenant, std::string bot, std::string actor,
              catalog_callback<activation> done);
result<activation> rollback_sync(postgres_client& pg, std::string tenant, std::string bot,
                                 std::string actor);

struct active_change {
  std::string tenant;
  std::string bot;
  int version = 0;
  std::int64_t change_seq = 0;
};

/// The current pointer of every bot whose pointer changed after `change_seq`,
/// ascending by change_seq (0: every active bot, for a node starting up).
/// Poll with the largest change_seq seen: values become visible in
/// increasing order, so none is skipped. At most `limit` rows.
void active_changes_since(postgres_client& pg, std::int64_t change_seq,
                          catalog_callback<std::vector<active_change>> done,
                          std::size_t limit = 1000);
result<std::vector<active_change>> active_changes_since_sync(postgres_client& pg,
                                                             std::int64_t change_seq,
                                                             std::size_t limit = 1000);

// ------------------------------------------------------------------ conversations

struct conversation_record {
  std::string tenant;
  std::string session_id;
  std::string bot;
  int version = 0;
  std::string channel;             ///< "bot_api", "directline", "sms", ...
  std::string external_key;        ///< the channel's conversation key, may be empty
  std::int64_t started_at_ms = 0;  ///< 0 on upsert: now()
  std::optional<std::int64_t> ended_at_ms;
  std::string end_reason;
};

/// Records a conversation start; a repeated call for the same (tenant,
/// session) keeps started_at and the version and changes nothing else.
void upsert_conversation(postgres_client& pg, conversation_record record,
                         catalog_callback<void> done);
result<void> upsert_conversation_sync(postgres_client& pg, conversation_record record);

/// Marks a conversation ended (first call wins); result: whether a row was
/// changed (false for an unknown or already ended session).
void end_conversation(postgres_client& pg, std::string tenant, std::string session_id,
                      std::string reason, catalog_callback<bool> done);
result<bool> end_conversation_sync(postgres_client& pg, std::string tenant, std::string session_id,
                                   std::string reason);

/// One conversation; nullopt when unknown.
void get_conversation(postgres_client& pg, std::string tenant, std::string session_id,
                      catalog_callback<std::optional<conversation_record>> done);
result<std::optional<conversation_record>> get_conversation_sync(postgres_client& pg,
                                                                 std::string tenant,
                                                                 std::string session_id);

// ------------------------------------------------------------------ transcripts

/// One inbound or outbound message of a turn, as read back: a turn's inbound message
/// is (sequence, "in", 0); its replies are (sequence, "out", 0..n-1).
///
/// Storage: one row per turn in transcript_turns (migrations/0004_transcript_turns.sql),
/// keyed by (session_id, sequence), written whole as a transcript_line; transcript()
/// expands each turn back into its messages, which share the turn's tenant and time.
struct transcript_row {
  std::string tenant;
  std::string session_id;
  std::int64_t sequence = 0;
  std::string direction;  ///< "in" or "out"
  int idx = 0;
  std::string text;
  std::string payload_json;  ///< a JSON document, or empty for none
  std::int64_t at_ms = 0;    ///< the turn's time
};

/// One whole turn of a transcript, already formatted as a line of transcript_turns'
/// COPY text (transcript_line_builder) on the thread that has the turn, so that the
/// transcript writer and the Postgres worker only move and concatenate bytes.
struct transcript_line {
  std::string copy;          ///< the COPY text line, without its newline
  std::size_t messages = 0;  ///< the inbound message (0 or 1) and the replies
  /// Set by a writer sending the line again after a failed write (whose outcome is
  /// unknown): a batch holding such a line skips the plain COPY, which would fail on
  /// a stored turn (and leave a duplicate-key ERROR in Postgres's log).
  bool maybe_stored = false;
};

/// Builds a transcript_line: inbound() at most once and before any reply(), then the
/// replies in order, then finish(). Texts are cleaned like every transcript text
/// (invalid UTF-8 becomes U+FFFD, NUL is dropped).
class transcript_line_builder {
 public:
  transcript_line_builder(std::string_view tenant, std::string_view session_id,
                          std::int64_t sequence);
  void inbound(std::string_view text);
  void reply(std::string_view text);
  /// `at_ms`: the turn's time in milliseconds since the epoch (<= 0: now).
  transcript_line finish(std::int64_t at_ms);

 private:
  void open_outbound();
  transcript_line line_;
  bool outbound_open_ = false;
};

/// The records of many turns in one transaction: the conversations, then the turns'
/// transcript lines by one COPY. A conversation record without `ended_at_ms` is a start
/// (inserted once, as upsert_conversation, at now()); one with `ended_at_ms` set is an
/// end (as end_conversation with its end_reason, at now()); the starts are written
/// before the ends. Conversation writes come first, so a transcript never names a
/// conversation that is not recorded. A line whose turn is stored already (a batch
/// written again, the turn written by another node or tenant first) is skipped, not
/// merged: a stored turn is whole. Result: messages stored.
void write_turn_lines(postgres_client& pg, std::vector<conversation_record> conversations,
                      std::shared_ptr<const std::vector<transcript_line>> lines,
                      catalog_callback<std::size_t> done);
result<std::size_t> write_turn_lines_sync(postgres_client& pg, std::vector<transcript_line> lines);

/// A session's messages by (sequence, direction "in" first, idx).
void transcript(postgres_client& pg, std::string tenant, std::string session_id,
                catalog_callback<std::vector<transcript_row>> done);
result<std::vector<transcript_row>> transcript_sync(postgres_client& pg, std::string tenant,
                                                    std::string session_id);

// ------------------------------------------------------------------ quarantine and audit

struct quarantined_message {
  std::int64_t id = 0;  ///< set by insert
  std::string tenant;
  std::string session_id;
  std::string message_id;
  std::string payload;  ///< the inbound message as received (any text)
  std::string error;
  int attempts = 0;
  std::int64_t created_at_ms = 0;
};

/// Keeps a message that killed its conversation too often. Result: its id.
void insert_quarantine(postgres_client& pg, quarantined_message message,
                       catalog_callback<std::int64_t> done);
result<std::int64_t> insert_quarantine_sync(postgres_client& pg, quarantined_message message);

/// A tenant's quarantined messages, oldest first.
result<std::vector<quarantined_message>> list_quarantine_sync(postgres_client& pg,
                                                              std::string tenant);

struct audit_entry {
  std::int64_t id = 0;  ///< set by the database
  std::int64_t at_ms = 0;
  std::string actor;
  std::string action;  ///< "tenant.create", "api_key.create", "bot.deploy", ...
  std::string tenant;  ///< empty: not about one tenant (stored as NULL)
  std::string target;
  std::string details_json = "{}";  ///< a JSON object
};

/// Appends an audit row on its own (the catalog's admin functions write theirs
/// in their own transaction). Result: its id.
void audit(postgres_client& pg, audit_entry entry, catalog_callback<std::int64_t> done);
result<std::int64_t> audit_sync(postgres_client& pg, audit_entry entry);

/// A tenant's audit rows, newest first, at most `limit`.
void list_audit(postgres_client& pg, std::string tenant, std::size_t limit,
                catalog_callback<std::vector<audit_entry>> done);
result<std::vector<audit_entry>> list_audit_sync(postgres_client& pg, std::string tenant,
                                                 std::size_t limit = 100);

}  // namespace parley::store
