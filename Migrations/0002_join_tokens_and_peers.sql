-- 0002: join tokens, and the network peer of every request.
-- Join tokens let a workload without credentials get its first certificate: an operator creates a token for
-- one namespace and service account, and the daemon consumes one use of it in the same transaction that
-- records the issuance, so a token can never be used more often than max_uses, even by concurrent requests.
-- Only the SHA-256 of a token's secret is stored, so reading the ledger does not reveal usable tokens.
-- The peer columns keep where a request came from (e.g. ipv4:127.0.0.1:53412) for audits; rows recorded
-- before this migration, and local CLI use, have ''.

ALTER TABLE issuances  ADD COLUMN peer TEXT NOT NULL DEFAULT '';
ALTER TABLE rejections ADD COLUMN peer TEXT NOT NULL DEFAULT '';

CREATE TABLE join_tokens (
    id              TEXT    PRIMARY KEY,                -- short public id, lowercase hex
    secret_sha256   TEXT    NOT NULL,                   -- SHA-256 of the secret; the secret itself is never stored
    namespace       TEXT    NOT NULL,                   -- the identity the token may be used for
    service_account TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,                   -- unusable from this second on
    max_uses        INTEGER NOT NULL CHECK (max_uses >= 1),
    uses            INTEGER NOT NULL DEFAULT 0,
    revoked_at      INTEGER,                            -- NULL while not revoked
    created_by      TEXT    NOT NULL,                   -- who created it: "local:root(uid 0)", ...
    last_used_at    INTEGER                             -- NULL until first used
) STRICT;
