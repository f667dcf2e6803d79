-- 0013_transcript_replay: a turn keeps what replaying it needs.
--
--   replay  JSON object written by the conversation (src/bot/replay.hpp,
--           bot::turn_recorder): how the VM was entered ("op", "input"), the turn's
--           clock ("now", Input.now_unix), the action answers the VM received in
--           order ("actions": name, ok, status, body, error; a body past 16 KiB is cut
--           and marked "truncated"), and the outcome ("status", "end_reason").
--           NULL for turns written before this migration.
-- Read by GET /admin/v1/tenants/{t}/bots/{b}/conversations (parleyctl replay).
-- Nullable without a default: catalog only, no table rewrite. Like the other message
-- columns (0006), no query filters on it, so ANALYZE skips it.
ALTER TABLE transcript_turns ADD COLUMN replay jsonb;
ALTER TABLE transcript_turns ALTER COLUMN replay SET STATISTICS 0;
