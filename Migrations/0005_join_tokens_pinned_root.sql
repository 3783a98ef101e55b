-- 0005: a join token records the root it pins.
-- A token carries the SHA-256 of the CA root a client holding it verifies the daemon against (the root that
-- signed when the token was created). `meshca root retire` must wait for every usable token that pins the root it
-- drops; before this column it could only infer the pin from the token's creation time (before the rotation's
-- activation = the old root). New tokens store the fingerprint here; rows created before keep NULL, and the
-- inference still applies to them (`meshca root status` says so).
-- The value is set once, at creation; the hash chain records it with a `token-pin` event in the same transaction.

ALTER TABLE join_tokens ADD COLUMN pinned_root_sha256 TEXT;     -- lowercase hex SHA-256 of the root's DER; NULL = not recorded
