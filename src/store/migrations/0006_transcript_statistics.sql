-- 0006_transcript_statistics: ANALYZE skips the transcript's message columns.
--
-- No query filters, joins or sorts on a turn's inbound text, its payload or its
-- replies (a transcript is read by session id, through the primary key), so their
-- column statistics help no plan, while autovacuum's ANALYZE of an insert-heavy
-- transcript_turns spent a third of its time on them: sorting a sample of 30,000
-- texts and JSON documents (about 157 against 107 ms for a table of 980,000 turns,
-- bench/README.md). On a node's own machine that time is taken from the turns.
-- Statistics of tenant_id, session_id, sequence and created_at stay. Catalog only:
-- no table rewrite.
ALTER TABLE transcript_turns
  ALTER COLUMN inbound SET STATISTICS 0,
  ALTER COLUMN inbound_payload SET STATISTICS 0,
  ALTER COLUMN outbound SET STATISTICS 0;
