-- Issue 13: replies to asynchronous channels (SMS, Messenger) that could not be
-- delivered: refused by the provider (a 4xx other than 429), refused by the channel's
-- policy (an SMS number that sent STOP, Messenger's 24-hour window), or still failing
-- after outbox.give_up_after. The outbox drain (cluster/node/outbox_drain) writes one
-- row per reply, then forgets the reply; operators read them, nothing resends them.
CREATE TABLE outbox_dead_letters (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL,
  session_id text NOT NULL,
  sequence bigint NOT NULL,
  reply_index integer NOT NULL,
  channel text NOT NULL,
  address text NOT NULL,
  body text NOT NULL,
  reason text NOT NULL,
  attempts integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, session_id, sequence, reply_index)
);
CREATE INDEX outbox_dead_letters_by_tenant ON outbox_dead_letters (tenant_id, id);

-- What the providers said became of the replies sent (Twilio status callbacks,
-- Messenger message_deliveries and message_reads), beside the transcripts. A
-- Messenger receipt names no message: it covers every message sent to the address
-- before `watermark`.
CREATE TABLE message_receipts (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL,
  bot_id text NOT NULL,
  channel text NOT NULL,
  address text NOT NULL,
  provider_message_id text NOT NULL,  -- '' for a Messenger read
  status text NOT NULL,               -- queued, sent, delivered, undelivered, failed, read
  error_code bigint,
  watermark timestamptz,
  received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_receipts_by_address ON message_receipts (tenant_id, address, id);

-- Conversations of asynchronous channels handed to a human agent (the agent API,
-- actors/gateway/agent_gateway): opened by the outbox drain when the bot's transfer
-- is committed, closed by the agent.
CREATE TABLE handoffs (
  tenant_id text NOT NULL,
  session_id text NOT NULL,
  sequence bigint NOT NULL,          -- the turn that handed it over
  bot_id text NOT NULL,
  channel text NOT NULL,
  address text NOT NULL,
  queue text NOT NULL,
  targets text NOT NULL,             -- comma-separated
  opened_at timestamptz NOT NULL DEFAULT now(),
  closed_at timestamptz,
  outcome text,                      -- resolved, returned_to_bot
  PRIMARY KEY (tenant_id, session_id, sequence)
);
CREATE INDEX handoffs_open ON handoffs (tenant_id, opened_at) WHERE closed_at IS NULL;
