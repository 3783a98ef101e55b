"""Calls meshca's CA the way ztunnel (Istio's ambient node proxy) does, with Python grpcio.

Usage: ztunnel_call.py ADDRESS TRUSTED_TOKEN UNTRUSTED_TOKEN ROOT_CERT PROTO_DIR IDENTITY

What ztunnel's CA client sends (istio/ztunnel src/identity/caclient.rs): a CSR for a new P-256 key whose only SAN
is the pod's SPIFFE ID, validity_duration SECRET_TTL (86400), and the metadata Struct with the single key
ImpersonatedIdentity (a string, the same SPIFFE ID), authenticated with ztunnel's own service-account token
(`authorization: Bearer`) and the `clusterid` header, over TLS verified against ROOT_CERT. ztunnel then checks that
the leaf's identity is the one it asked for. The same request with a token of an account that is not a trusted
node account must fail as istiod fails it. Prints one JSON line.
"""
import json
import sys

import grpc
from cryptography import x509
from google.protobuf import struct_pb2
from istio_ca_client import load_stubs, make_csr


def main():
    address, trusted, untrusted, root_cert, proto_dir, identity = sys.argv[1:7]
    ca_pb2, ca_pb2_grpc = load_stubs(proto_dir)
    credentials = grpc.ssl_channel_credentials(root_certificates=open(root_cert, "rb").read())
    with grpc.secure_channel(address, credentials) as channel:
        stub = ca_pb2_grpc.IstioCertificateServiceStub(channel)

        def request():
            key, csr = make_csr(identity)
            metadata = struct_pb2.Struct()
            metadata.update({"ImpersonatedIdentity": identity})
            return key, ca_pb2.IstioCertificateRequest(csr=csr, validity_duration=86400, metadata=metadata)

        key, req = request()
        response = stub.CreateCertificate(req, metadata=[("authorization", f"Bearer {trusted}"), ("clusterid", "Kubernetes")], timeout=15)
        chain = list(response.cert_chain)
        leaf = x509.load_pem_x509_certificate(chain[0].encode())
        uris = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier)
        same_key = leaf.public_key().public_numbers() == key.public_key().public_numbers()

        _, req = request()
        try:
            stub.CreateCertificate(req, metadata=[("authorization", f"Bearer {untrusted}"), ("clusterid", "Kubernetes")], timeout=15)
            refusal = {"code": "OK", "details": ""}
        except grpc.RpcError as error:
            refusal = {"code": error.code().name, "details": error.details()}
    print(json.dumps({
        "elements": len(chain), "uris": uris, "same_key": same_key, "identity_matches": uris == [identity],
        "lifetime": int((leaf.not_valid_after_utc - leaf.not_valid_before_utc).total_seconds()), "untrusted": refusal,
    }))


if __name__ == "__main__":
    main()
