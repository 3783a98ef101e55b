-- 0006: an index for finding the certificate already issued for a public key.
-- A client whose answer was lost (a connection closed after the CA had issued and recorded the certificate)
-- repeats its request with the same credential and the same CSR key. Within the daemon's retry-window meshca
-- answers it with the certificate it already issued, instead of signing a second one or refusing a now-spent
-- single-use join token. It looks for that certificate before every issuance, by public key (then requester and
-- issued_at); without this index that is a scan of every issuance in the window.
-- Only an index: no row changes, nothing for the event chain to record.

CREATE INDEX issuances_by_public_key ON issuances (public_key_sha256, issued_at);
