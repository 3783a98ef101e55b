#!/usr/bin/env bash
# Regenerates the seed corpus in Fuzz/Corpus/<target>/seed-* from real inputs: CSRs from `openssl req`, a CA,
# certificates, CRLs and join tokens from `meshca` in a throwaway state directory, JWTs signed with the fuzz
# key (derived from a public constant, as Fuzz/Entries/JWTFuzz.swift does), Istio requests carrying a CSR, and
# configuration files. No private key is written into the corpus.
#
# Usage: Fuzz/make-corpus.sh [path/to/meshca]   (default: the debug build, .build/debug/meshca)
set -euo pipefail
cd "$(dirname "$0")/.."
meshca=${1:-.build/debug/meshca}
[ -x "$meshca" ] || { echo "make-corpus: no meshca binary at $meshca; run swift build first" >&2; exit 1; }
meshca=$(realpath "$meshca")
corpus=$PWD/Fuzz/Corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
id=spiffe://cluster.local/ns/default/sa/fuzz
for target in csr chain crl token jwt request config; do
    mkdir -p "$corpus/$target"
    rm -f "$corpus/$target"/seed-*
done

# CSRs: the identity the fuzz target authenticates as, other identities, other key types, refused extensions.
csr() { # name, key args, extra req args...
    local name=$1 keyargs=$2
    shift 2
    openssl genpkey $keyargs -out "$work/$name.key" 2>/dev/null
    openssl req -new -key "$work/$name.key" -subj / "$@" -out "$corpus/csr/seed-$name.pem" 2>/dev/null
    openssl req -in "$corpus/csr/seed-$name.pem" -outform DER -out "$corpus/csr/seed-$name.der"
}
csr p256-san "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" -addext "subjectAltName=critical,URI:$id"
csr p384-san "-algorithm EC -pkeyopt ec_paramgen_curve:P-384" -addext "subjectAltName=URI:$id"
csr rsa2048-san "-algorithm RSA -pkeyopt rsa_keygen_bits:2048" -addext "subjectAltName=URI:$id"
csr rsa1024 "-algorithm RSA -pkeyopt rsa_keygen_bits:1024" -addext "subjectAltName=URI:$id"
csr ed25519 "-algorithm ED25519" -addext "subjectAltName=URI:$id"
csr p256-nosan "-algorithm EC -pkeyopt ec_paramgen_curve:P-256"
csr p256-subject "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" -subj "/CN=fuzz/O=meshca"
csr p256-other-id "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" -addext "subjectAltName=URI:spiffe://cluster.local/ns/kube-system/sa/admin"
csr p256-dns-ip "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" -addext "subjectAltName=URI:$id,DNS:fuzz.example,IP:10.0.0.1,email:a@b.c"
csr p256-two-uris "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" -addext "subjectAltName=URI:$id,URI:spiffe://cluster.local/ns/default/sa/other"
csr p256-ca "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" -addext "subjectAltName=URI:$id" -addext "basicConstraints=critical,CA:TRUE"
csr p256-usage "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" -addext "subjectAltName=URI:$id" -addext "keyUsage=digitalSignature" -addext "extendedKeyUsage=clientAuth,serverAuth"
printf '%s' "$(tr -d '\n' < "$corpus/csr/seed-p256-san.pem" | sed 's/-----BEGIN CERTIFICATE REQUEST-----/&\r\n/')" > "$corpus/csr/seed-p256-san-crlf.pem"

# A CA, issued certificates, an intermediate, revocations and CRLs, join tokens.
state=$work/state
"$meshca" init --state-dir "$state" >/dev/null 2>&1
"$meshca" issue --sa fuzz --state-dir "$state" --out "$work/fuzz" >/dev/null 2>&1
"$meshca" issue --sa api --ns payments --key-type rsa-2048 --state-dir "$state" --out "$work/api" >/dev/null 2>&1
"$meshca" issue --sa web --key-type ec-p384 --state-dir "$state" --out "$work/web" >/dev/null 2>&1
"$meshca" intermediate create --out "$work/intermediate" --state-dir "$state" >/dev/null 2>&1
cp "$work/fuzz/cert-chain.pem" "$corpus/chain/seed-cert-chain.pem"
cp "$work/fuzz/root-cert.pem" "$corpus/chain/seed-root-cert.pem"
cp "$work/api/cert-chain.pem" "$corpus/chain/seed-cert-chain-rsa.pem"
cp "$work/web/cert-chain.pem" "$corpus/chain/seed-cert-chain-p384.pem"
cp "$work/intermediate/cert-chain.pem" "$corpus/chain/seed-intermediate-chain.pem"
openssl x509 -in "$work/fuzz/cert-chain.pem" -outform DER -out "$corpus/chain/seed-leaf.der"
openssl x509 -in "$work/intermediate/ca-cert.pem" -outform DER -out "$corpus/chain/seed-intermediate.der"
openssl req -x509 -new -key "$work/p256-san.key" -subj "/O=other/CN=openssl root" -days 30 \
    -addext "subjectAltName=DNS:other.example,URI:spiffe://other/ns/a/sa/b" -addext "nameConstraints=permitted;DNS:.example" \
    -addext "authorityInfoAccess=OCSP;URI:http://ocsp.example" -addext "crlDistributionPoints=URI:http://crl.example/crl" \
    -out "$corpus/chain/seed-openssl-root.pem" 2>/dev/null
{ cat "$work/fuzz/cert-chain.pem"; printf -- '-----BEGIN PUBLIC KEY-----\n'; openssl pkey -in "$work/p256-san.key" -pubout | sed '1d;$d'; printf -- '-----END PUBLIC KEY-----\n'; } \
    > "$corpus/chain/seed-chain-and-public-key.pem"

serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
"$meshca" crl --state-dir "$state" --out "$work/empty.pem" >/dev/null 2>&1
cat "$work/empty.pem" "$state/ca-cert.pem" > "$corpus/crl/seed-empty-with-ca.pem"
"$meshca" revoke "$(serial "$work/fuzz/cert-chain.pem")" --reason keyCompromise --state-dir "$state" >/dev/null 2>&1
"$meshca" revoke "$(serial "$work/api/cert-chain.pem")" --reason superseded --state-dir "$state" >/dev/null 2>&1
"$meshca" revoke "$(serial "$work/intermediate/ca-cert.pem")" --reason cACompromise --state-dir "$state" >/dev/null 2>&1
cat "$state/crl.pem" "$state/ca-cert.pem" > "$corpus/crl/seed-three-entries-with-ca.pem"
cp "$state/crl.pem" "$corpus/crl/seed-crl.pem"
openssl crl -in "$state/crl.pem" -outform DER -out "$corpus/crl/seed-crl.der"
# A CRL from another CA (openssl), with a certificateHold entry meshca reads as unspecified, beside ours.
mkdir -p "$work/ossl"
touch "$work/ossl/index.txt"
printf '01\n' > "$work/ossl/crlnumber"
printf 'R\t300101000000Z\t250101000000Z,certificateHold\t0A\tunknown\t/CN=held\n' > "$work/ossl/index.txt"
cat > "$work/ossl/ca.cnf" <<CNF
[ ca ]
default_ca = d
[ d ]
database = $work/ossl/index.txt
crlnumber = $work/ossl/crlnumber
default_md = sha256
default_crl_days = 7
CNF
openssl ca -gencrl -config "$work/ossl/ca.cnf" -keyfile "$work/p256-san.key" -cert "$corpus/chain/seed-openssl-root.pem" \
    -out "$work/ossl/crl.pem" 2>/dev/null
cat "$state/crl.pem" "$work/ossl/crl.pem" "$corpus/chain/seed-openssl-root.pem" > "$corpus/crl/seed-two-cas.pem"

"$meshca" token create --sa fuzz --state-dir "$state" > "$corpus/token/seed-single-use" 2>/dev/null
"$meshca" token create --sa api --ns payments --uses 5 --ttl 24h --state-dir "$state" > "$corpus/token/seed-five-uses" 2>/dev/null
printf 'Bearer %s\r\n' "$(cat "$corpus/token/seed-single-use")" > "$corpus/token/seed-bearer-crlf"

# Requests: Istio's IstioCertificateRequest (csr = 1, validity_duration = 2, metadata = 3 as a Struct).
# JWTs: signed with the fuzz key, P-256 from SHA-256("meshca fuzz jwt es256") like JWTFuzz; plus bare payloads.
python3 - "$corpus" "$corpus/csr/seed-p256-san.pem" <<'PY'
import base64, hashlib, json, sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

corpus, csr_path = sys.argv[1], sys.argv[2]
csr = open(csr_path, "rb").read()

def varint(n):
    out = b""
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | 0x80]) if n else bytes([b])
        if not n:
            return out

def field(number, wire, payload):
    key = varint(number << 3 | wire)
    return key + (varint(payload) if wire == 0 else varint(len(payload)) + payload)

def value(kind, v):  # google.protobuf.Value
    if kind == "string": return field(3, 2, v.encode())
    if kind == "number": return varint(2 << 3 | 1) + v.to_bytes(8, "little")
    if kind == "bool": return field(4, 0, v)
    if kind == "struct": return field(5, 2, v)
    if kind == "list": return field(6, 2, v)

def struct(entries):  # google.protobuf.Struct: map<string, Value> fields = 1
    return b"".join(field(1, 2, field(1, 2, k.encode()) + field(2, 2, v)) for k, v in entries)

def request(name, validity, metadata=None, csr_bytes=csr):
    body = field(1, 2, csr_bytes) + (field(2, 0, validity) if validity else b"")
    if metadata is not None:
        body += field(3, 2, metadata)
    open(f"{corpus}/request/seed-{name}.bin", "wb").write(body)

request("plain", 3600)
request("no-validity", 0)
request("negative-validity", -1)
request("long-validity", 400 * 86400)
request("cluster-id", 86400, struct([("ClusterID", value("string", "Kubernetes"))]))
request("cert-signer", 3600, struct([("CertSigner", value("string", "istio-system"))]))
request("impersonated", 3600, struct([("ImpersonatedIdentity", value("string", "spiffe://cluster.local/ns/kube-system/sa/admin"))]))
request("impersonated-number", 3600, struct([("ImpersonatedIdentity", value("number", 0x4045000000000000))]))
request("impersonated-struct", 3600, struct([("ImpersonatedIdentity", value("struct", struct([("a", value("bool", 1))])))]))
request("impersonated-list", 3600, struct([("ImpersonatedIdentity", value("list", field(1, 2, value("string", "x"))))]))
request("empty-csr", 3600, csr_bytes=b"")

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def es256(payload, header=None):
    key = ec.derive_private_key(int.from_bytes(hashlib.sha256(b"meshca fuzz jwt es256").digest(), "big"), ec.SECP256R1())
    header = header or {"alg": "ES256", "typ": "JWT"}
    signing_input = b64(json.dumps(header, separators=(",", ":")).encode()) + "." + b64(json.dumps(payload, separators=(",", ":")).encode())
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

now = 1_800_000_000
k8s = {
    "aud": ["istio-ca"], "exp": now + 3600, "iat": now - 60, "nbf": now - 60,
    "iss": "https://kubernetes.default.svc",
    "kubernetes.io": {"namespace": "default", "serviceaccount": {"name": "fuzz", "uid": "1b0f6a58-8f3e-4b1e-9d4b-2f0c1c3d4e5f"},
                      "pod": {"name": "fuzz-7d9c", "uid": "5c3e"}},
    "sub": "system:serviceaccount:default:fuzz",
}
sub_only = {"aud": "istio-ca", "exp": now + 600, "iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:payments:api"}
jwts = {
    "kubernetes": es256(k8s),
    "sub-only": es256(sub_only),
    "with-kid": es256(k8s, {"alg": "ES256", "typ": "JWT", "kid": "fuzz"}),
    "expired": es256(dict(k8s, exp=now - 3600)),
    "long-lived": es256(dict(k8s, exp=now + 365 * 86400)),
    "wrong-audience": es256(dict(k8s, aud=["api"])),
    "wrong-issuer": es256(dict(k8s, iss="https://evil.example")),
    "no-exp": es256({k: v for k, v in k8s.items() if k != "exp"}),
    "bad-names": es256(dict(k8s, **{"kubernetes.io": {"namespace": "Default_", "serviceaccount": {"name": "a/b"}}})),
}
rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
signing_input = b64(b'{"alg":"RS256","typ":"JWT"}') + "." + b64(json.dumps(k8s).encode())
jwts["rs256-unknown-key"] = signing_input + "." + b64(rsa_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()))
for name, token in jwts.items():
    open(f"{corpus}/jwt/seed-{name}", "w").write(token)
# Bare payloads: JWTFuzz also signs each input as a payload.
open(f"{corpus}/jwt/seed-payload-kubernetes.json", "w").write(json.dumps(k8s))
open(f"{corpus}/jwt/seed-payload-sub.json", "w").write(json.dumps(sub_only))
PY

# Configuration: the README example, every key, lists, and values each check refuses.
cat > "$corpus/config/seed-readme.yaml" <<'YAML'
# /etc/meshca/serve.yaml
listen: 0.0.0.0:15012
dns-name: [meshca.istio-system.svc, 192.168.1.10]
max-ttl: 7d
rate-limit: 30/m
jwt-keys: /etc/meshca/k8s-jwks.json
YAML
{
    echo "listen: '[::1]:15012'"
    echo "monitoring: 127.0.0.1:0"
    echo "trust-domain: cluster.local"
    echo "dns-name:"
    echo "  - meshca.istio-system.svc"
    echo "  - 10.0.0.1"
    echo "default-ttl: 1h30m"
    echo "max-ttl: 90d"
    echo "serving-cert-ttl: 7d"
    echo "rate-limit: 'off'"
    echo "auth-failure-limit: 60/m"
    echo "jwt-issuer: https://kubernetes.default.svc"
    echo "jwt-audience: istio-ca,meshca"
} > "$corpus/config/seed-keys.yaml"
printf 'max-ttl: 400d\ndefault-ttl: 91d\nlisten: 127.0.0.1:99999\nrate-limit: 5/fortnight\nunknown_key: 1\nmax_ttl: 1d\n' \
    > "$corpus/config/seed-refused.yaml"
printf 'base: &b 24h\ndefault-ttl: *b\ndns-name: {a: b}\nlisten: ~\n' > "$corpus/config/seed-anchors.yaml"
printf -- '- a\n- b\n' > "$corpus/config/seed-not-a-mapping.yaml"
echo "make-corpus: $(find "$corpus" -name 'seed-*' | wc -l) seed files in Fuzz/Corpus"
