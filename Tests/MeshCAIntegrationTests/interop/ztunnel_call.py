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
import os
import sys
import tempfile

import grpc
import grpc_tools
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import struct_pb2
from grpc_tools import protoc


def load_stubs(proto_dir):
    out = tempfile.mkdtemp(prefix="meshca-stubs-")
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    status = protoc.main(["protoc", f"-I{proto_dir}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}", "ca.proto"])
    if status != 0:
        raise SystemExit(f"protoc failed with {status}")
    sys.path.insert(0, out)
    import ca_pb2
    import ca_pb2_grpc
    return ca_pb2, ca_pb2_grpc


def make_csr(spiffe_id):
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).add_extension(san, critical=True).sign(key, hashes.SHA256())
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


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
