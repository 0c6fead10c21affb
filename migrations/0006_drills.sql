-- pawledger schema 6: restore drills. Each row is one drill's verdict: a tier's newest backup restored into a scratch
-- folder and replayed in full. Only the newest rows are kept (LEDGER_DRILL_KEEP); nothing here is secret.

CREATE TABLE IF NOT EXISTS pawledger_drills (
  id          bigserial PRIMARY KEY,
  ledger_id   text NOT NULL,
  tier        text NOT NULL,
  backup_id   text,
  height      bigint,
  duration_ms integer NOT NULL,
  outcome     text NOT NULL,
  reason      text,
  started_at  timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS pawledger_drills_tier ON pawledger_drills (tier, id DESC);
