#!/bin/sh
# curl as an mTLS client on meshca-agent's files. The combined file (--combined-pem combined.pem) holds the
# certificate and its key, but curl opens it twice (the certificate, then the key), so a renewal between the two
# opens would pair a certificate with the next one's key: resolve ..data once and read the files of that version,
# which the agent keeps until the next-but-one renewal. root-cert.pem verifies the server, whose certificate carries
# the DNS name web.local (its agent's --dns-name). See docs/recipes.md.
version=/run/meshca/client/$(readlink /run/meshca/client/..data)
exec curl --silent --show-error --fail \
    --cert "$version/combined.pem" \
    --cacert "$version/root-cert.pem" \
    --resolve web.local:8443:127.0.0.1 --resolve web.local:8444:127.0.0.1 \
    "${1:-https://web.local:8443/}"
