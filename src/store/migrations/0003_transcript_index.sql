-- 0003_transcript_index: transcripts keep one index.
--
-- The unique index on (session_id, sequence, direction, idx) already serves the
-- only read, a conversation's transcript by (tenant, session): session ids are
-- unique, the tenant is a filter on the few rows found. The second index cost a
-- write per transcript row on the hottest insert path (bench/README.md).
DROP INDEX IF EXISTS transcript_messages_by_tenant;
