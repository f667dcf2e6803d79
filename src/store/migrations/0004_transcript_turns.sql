-- 0004_transcript_turns: one transcript row per turn instead of one per message.
--
-- Postgres pays per row (unique-index probe, heap tuple, WAL record), and a turn
-- is one inbound message plus its replies, always written together. The turn's
-- messages now share one row:
--   inbound          the turn's inbound message; NULL when the turn had none (a
--                    conversation that the bot opens without user text)
--   inbound_payload  its payload (JSON), NULL for none
--   outbound         JSON array, element i = reply idx i: a string (its text), or
--                    {"text": ..., "payload": ...} when it has a payload, or null
--                    for a reply not (yet) recorded
--   created_at       the turn's time (the earliest time of its messages)
-- The primary key (session_id, sequence) is the table's only index; it makes a
-- repeated batch insert nothing and serves the only read, a session's transcript
-- (session ids are unique; the tenant filters the few rows found).
-- Read and written through src/store/catalog.hpp (write_transcript_batch,
-- write_turn_records, transcript), which keep their per-message shape.

CREATE TABLE transcript_turns (
  tenant_id       text        NOT NULL,
  session_id      text        NOT NULL,
  sequence        bigint      NOT NULL,
  inbound         text,
  inbound_payload jsonb,
  outbound        jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(outbound) = 'array'),
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, sequence)
);

-- Every stored message moves over. Parley only ever wrote inbound idx 0 and
-- outbound idx 0..n-1; should a turn hold several inbound rows, the lowest idx
-- is kept, and outbound rows outside 0..9999 are not carried over.
INSERT INTO transcript_turns (tenant_id, session_id, sequence, inbound, inbound_payload, outbound,
                              created_at)
SELECT t.tenant_id, t.session_id, t.sequence, t.inbound, t.inbound_payload,
       CASE WHEN t.last_out IS NULL THEN '[]'::jsonb
            ELSE (SELECT jsonb_agg(coalesce(t.outs -> k::text, 'null'::jsonb) ORDER BY k)
                  FROM generate_series(0, t.last_out) AS k) END,
       t.created_at
FROM (
  SELECT session_id, sequence,
         (array_agg(tenant_id ORDER BY direction, idx))[1] AS tenant_id,
         (array_agg(text ORDER BY idx) FILTER (WHERE direction = 'in'))[1] AS inbound,
         (array_agg(payload ORDER BY idx) FILTER (WHERE direction = 'in'))[1] AS inbound_payload,
         jsonb_object_agg(idx::text, CASE WHEN payload IS NULL THEN to_jsonb(text)
                                          ELSE jsonb_build_object('text', text, 'payload', payload) END)
           FILTER (WHERE direction = 'out' AND idx BETWEEN 0 AND 9999) AS outs,
         max(idx) FILTER (WHERE direction = 'out' AND idx BETWEEN 0 AND 9999) AS last_out,
         min(created_at) AS created_at
  FROM transcript_messages
  GROUP BY session_id, sequence
) AS t;

DROP TABLE transcript_messages;
