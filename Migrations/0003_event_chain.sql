-- 0003: the tamper-evident event chain and its signed checkpoints.
-- Every change the ledger records (an issuance, a revocation, a rejection, a join token's creation, use or
-- revocation, a root change) appends one row to ledger_events in the same transaction as the change itself.
-- Each event holds the SHA-256 of its content (the covered row's columns, or its own payload) and a hash over
-- its position, the previous event's hash and that content, so editing, deleting, inserting or reordering rows
-- breaks the chain at the first event touched. ledger_checkpoints holds the chain's head signed with the ledger
-- key (not the CA key), so even a rewritten chain cannot match an earlier checkpoint. `meshca audit verify`
-- recomputes both; the encoding is documented in Sources/MeshCALedger/LedgerChain.swift.
--
-- Existing rows are brought onto the chain here: one placeholder event per row (and per revocation, token use
-- and token revocation already recorded), in the order they happened. SQLite has no SHA-256, so the hash
-- columns stay NULL and meshca fills them in, in sequence order and in one transaction, right after this
-- migration commits (SQLiteLedger's chainPlaceholders); that step runs again on every open until it is done.

CREATE TABLE ledger_events (
    seq            INTEGER PRIMARY KEY,                 -- 1, 2, 3, ... without gaps: the position in the chain
    kind           TEXT    NOT NULL,                    -- issuance, revocation, rejection, token-creation, ...
    subject        TEXT    NOT NULL,                    -- what it is about: a serial, a rejection id, a token id
    payload        BLOB,                                -- the encoded content, for events no table row holds
    content_sha256 BLOB,                                -- SHA-256 of the encoded content; NULL until chained
    prev_hash      BLOB,                                -- the previous event's hash (32 zero bytes for seq 1)
    hash           BLOB                                 -- SHA-256 over seq, prev_hash, kind, subject, content_sha256
) STRICT;

CREATE TABLE ledger_checkpoints (
    id          INTEGER PRIMARY KEY,
    event_count INTEGER NOT NULL,                       -- the chain's length when signed (events 1...event_count)
    head_hash   BLOB    NOT NULL,                       -- the hash of event event_count
    created_at  INTEGER NOT NULL,
    key_id      TEXT    NOT NULL,                       -- first 16 hex digits of SHA-256 of the Ed25519 public key
    signature   BLOB    NOT NULL                        -- Ed25519 over the checkpoint text (see LedgerCheckpoint)
) STRICT;

INSERT INTO ledger_events (kind, subject)
SELECT kind, subject FROM (
    SELECT 'issuance' AS kind, serial AS subject, issued_at AS happened, 0 AS rank, rowid AS tiebreak
        FROM issuances
    UNION ALL
    SELECT 'revocation', serial, revoked_at, 1, rowid FROM issuances WHERE revoked_at IS NOT NULL
    UNION ALL
    SELECT 'rejection', CAST(id AS TEXT), occurred_at, 2, id FROM rejections
    UNION ALL
    SELECT 'token-creation', id, created_at, 3, rowid FROM join_tokens
    UNION ALL
    SELECT 'token-use', id, coalesce(last_used_at, created_at), 4, rowid FROM join_tokens
        WHERE uses > 0 OR last_used_at IS NOT NULL
    UNION ALL
    SELECT 'token-revocation', id, revoked_at, 5, rowid FROM join_tokens WHERE revoked_at IS NOT NULL
)
ORDER BY happened, rank, tiebreak;
