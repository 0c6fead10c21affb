-- pawledger schema 4: the writer lease. One row per lease name; the instance holding a row whose token it knows is
-- the only one whose appends commit (every append checks the token in its own statement or transaction). A taker
-- may replace the row only once expires_at has passed, by the database's clock; each take increments the token.

CREATE TABLE IF NOT EXISTS pawledger_lease (
  name        text PRIMARY KEY,
  holder      text NOT NULL,
  token       bigint NOT NULL,
  acquired_at timestamptz NOT NULL,
  renewed_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL
);
