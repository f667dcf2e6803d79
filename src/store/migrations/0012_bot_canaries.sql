-- 0012_bot_canaries: canary deploys and region-wide per-version counts.
--
-- bot_canaries: one row per canary ever started; at most one running (ended_at IS
-- NULL) per bot. New conversations of the bot start on `version` with probability
-- percent/100 (chosen by a hash of the session id), the others on the active version.
-- The baseline_* columns are the active version's counts in bot_version_stats when the
-- canary started, so that the comparison covers the same time window for both.
-- A canary's change (start, promote, abort, automatic rollback) takes the next
-- bot_change_seq value into bot_active.change_seq of its bot, so every node's registry
-- hears of it through the change log it already polls (src/store/catalog/canary.hpp).
-- Read and written through src/store/catalog/canary.hpp.

CREATE TABLE bot_canaries (
  id                               bigserial        PRIMARY KEY,
  tenant_id                        text             NOT NULL,
  bot_id                           text             NOT NULL,
  version                          integer          NOT NULL,
  percent                          integer          NOT NULL CHECK (percent BETWEEN 1 AND 50),
  baseline_version                 integer          NOT NULL,
  max_error_rate_increase          double precision NOT NULL,
  max_fallback_rate_increase       double precision NOT NULL,
  max_action_failure_rate_increase double precision NOT NULL,
  min_conversations                integer          NOT NULL CHECK (min_conversations > 0),
  baseline_turns                   bigint           NOT NULL DEFAULT 0,
  baseline_sessions                bigint           NOT NULL DEFAULT 0,
  baseline_fallbacks               bigint           NOT NULL DEFAULT 0,
  baseline_action_failures         bigint           NOT NULL DEFAULT 0,
  baseline_error_dialogs           bigint           NOT NULL DEFAULT 0,
  started_by                       text             NOT NULL,
  started_at                       timestamptz      NOT NULL DEFAULT now(),
  ended_at                         timestamptz,
  outcome                          text CHECK (outcome IN ('promoted', 'aborted', 'rolled_back')),
  reason                           jsonb,
  FOREIGN KEY (tenant_id, bot_id, version) REFERENCES bot_versions (tenant_id, bot_id, version)
);
CREATE UNIQUE INDEX bot_canaries_running ON bot_canaries (tenant_id, bot_id) WHERE ended_at IS NULL;

-- What every node's conversations did, per bot version, added by each node about once
-- a second from its own per-version counters (parley_bot_*_total). Counts since the
-- version first ran on a node of this release; a node that dies loses at most its last
-- second.
CREATE TABLE bot_version_stats (
  tenant_id       text        NOT NULL,
  bot_id          text        NOT NULL,
  version         integer     NOT NULL,
  turns           bigint      NOT NULL DEFAULT 0,
  sessions        bigint      NOT NULL DEFAULT 0,
  fallbacks       bigint      NOT NULL DEFAULT 0,
  transfers       bigint      NOT NULL DEFAULT 0,
  ended           bigint      NOT NULL DEFAULT 0,
  action_failures bigint      NOT NULL DEFAULT 0,
  error_dialogs   bigint      NOT NULL DEFAULT 0,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, bot_id, version)
);
