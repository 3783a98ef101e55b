#!/bin/sh
# curl as an mTLS client on meshca-agent's files: the combined file (--combined-pem combined.pem) gives curl the
# certificate and the key of the same version in one read; root-cert.pem verifies the server, whose certificate
# carries the DNS name web.local (its agent's --dns-name). See docs/recipes.md.
exec curl --silent --show-error --fail \
    --cert /run/meshca/client/combined.pem \
    --cacert /run/meshca/client/root-cert.pem \
    --resolve web.local:8443:127.0.0.1 --resolve web.local:8444:127.0.0.1 \
    "${1:-https://web.local:8443/}"
