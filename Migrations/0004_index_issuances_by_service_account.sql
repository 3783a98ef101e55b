-- 0004: an index for listing one service account's certificates without naming its namespace.
-- `meshca audit list --sa NAME` filters on service_account alone. issuances_by_identity starts with namespace, so
-- SQLite walked issuances_by_issued_at backwards testing every row until it had enough matches: 0.7 s for the
-- newest 50 of one account's rows in a ledger of a million (the benchmark's ledger-at-scale phase). With this
-- index it reads only that account's entries, newest first, and the ORDER BY issued_at needs no sort.
-- Only an index: no row changes, nothing for the event chain to record.

CREATE INDEX issuances_by_service_account ON issuances (service_account, issued_at);
