"""Calls meshca's CA the way istio-agent does, with Python grpcio: an independent gRPC implementation.

Usage: istio_agent_call.py ADDRESS TOKEN ROOT_CERT PROTO_DIR OUT_DIR

Stubs are generated at run time from meshca's own ca.proto with grpcio-tools. The call carries the
metadata Struct {"CertSigner": ""}, the headers `authorization: Bearer <token>` and `clusterid`, and is
made over TLS verified against ROOT_CERT (grpc negotiates ALPN h2). The returned chain is written to
OUT_DIR/chain.pem (all elements) and OUT_DIR/roots.pem (the last element). Prints one JSON line.
"""
import json
import os
import sys

import grpc
from cryptography import x509
from google.protobuf import struct_pb2
from istio_ca_client import load_stubs, make_csr


def main():
    address, token, root_cert, proto_dir, out_dir = sys.argv[1:6]
    ca_pb2, ca_pb2_grpc = load_stubs(proto_dir)
    credentials = grpc.ssl_channel_credentials(root_certificates=open(root_cert, "rb").read())
    with grpc.secure_channel(address, credentials) as channel:
        stub = ca_pb2_grpc.IstioCertificateServiceStub(channel)
        metadata = struct_pb2.Struct()
        metadata.update({"CertSigner": ""})
        headers = [("authorization", f"Bearer {token}"), ("clusterid", "Kubernetes")]
        key, csr = make_csr("spiffe://cluster.local/ns/default/sa/was")
        request = ca_pb2.IstioCertificateRequest(csr=csr, validity_duration=86400, metadata=metadata)
        response = stub.CreateCertificate(request, metadata=headers, timeout=15)
        chain = list(response.cert_chain)
        with open(os.path.join(out_dir, "chain.pem"), "w") as f:
            f.write("".join(chain))
        with open(os.path.join(out_dir, "roots.pem"), "w") as f:
            f.write(chain[-1])
        leaf = x509.load_pem_x509_certificate(chain[0].encode())
        uris = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier)
        same_key = leaf.public_key().public_numbers() == key.public_key().public_numbers()

        # Refusals carry the status codes istio-agent relies on (it retries neither).
        codes = {}
        for name, req, hdrs in [
            ("garbage_csr", ca_pb2.IstioCertificateRequest(csr="garbage", metadata=metadata), headers),
            ("no_credential", ca_pb2.IstioCertificateRequest(csr=csr, metadata=metadata), []),
        ]:
            try:
                stub.CreateCertificate(req, metadata=hdrs, timeout=15)
                codes[name] = "OK"
            except grpc.RpcError as error:
                codes[name] = error.code().name
    print(json.dumps({"elements": len(chain), "newline_terminated": all(e.endswith("\n") for e in chain), "uris": uris, "same_key": same_key, "codes": codes}))


if __name__ == "__main__":
    main()
