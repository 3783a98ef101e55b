-- 0001: the issuance ledger.
-- Creates the tables every later feature builds on: one row per certificate that left the CA
-- (written and committed before the certificate is handed out), one row per refused request.
-- Times are Unix seconds (UTC). Hex strings are lowercase without separators.

CREATE TABLE issuances (
    serial                TEXT    PRIMARY KEY,          -- certificate serial number, hex
    spiffe_id             TEXT    NOT NULL,             -- spiffe://<td>/ns/<ns>/sa/<sa>
    trust_domain          TEXT    NOT NULL,
    namespace             TEXT    NOT NULL,
    service_account       TEXT    NOT NULL,
    sans                  TEXT    NOT NULL,             -- JSON array of every SAN, as "URI:..." strings
    not_before            INTEGER NOT NULL,
    not_after             INTEGER NOT NULL,
    issued_at             INTEGER NOT NULL,
    requested_ttl_seconds INTEGER,                      -- NULL when the caller asked for the default
    granted_ttl_seconds   INTEGER NOT NULL,             -- not_after - issued_at
    key_type              TEXT    NOT NULL,             -- ec-p256, ec-p384, rsa-2048, ...
    public_key_sha256     TEXT    NOT NULL,             -- SHA-256 of the SubjectPublicKeyInfo DER
    csr_sha256            TEXT    NOT NULL,             -- SHA-256 of the CSR DER
    certificate_der       BLOB    NOT NULL,
    issuer_fingerprint    TEXT    NOT NULL,             -- SHA-256 of the issuing CA certificate DER
    requester             TEXT    NOT NULL,             -- who asked: "local:root(uid 0)", a token id, ...
    auth_method           TEXT    NOT NULL,             -- local, token, jwt, mtls
    revoked_at            INTEGER,                      -- NULL while not revoked
    revocation_reason     TEXT
) STRICT;

CREATE INDEX issuances_by_identity  ON issuances (namespace, service_account, issued_at);
CREATE INDEX issuances_by_spiffe_id ON issuances (spiffe_id, issued_at);
CREATE INDEX issuances_by_issued_at ON issuances (issued_at);
CREATE INDEX issuances_by_not_after ON issuances (not_after);

CREATE TABLE rejections (
    id                 INTEGER PRIMARY KEY,
    occurred_at        INTEGER NOT NULL,
    requester          TEXT    NOT NULL,
    auth_method        TEXT    NOT NULL,
    requested_identity TEXT    NOT NULL,                -- what the request asked for; "" when unknown
    reason_code        TEXT    NOT NULL,                -- stable machine-readable code, e.g. ttl-too-long
    message            TEXT    NOT NULL                 -- the message the requester was given
) STRICT;

CREATE INDEX rejections_by_time ON rejections (occurred_at);
