"""What the interop scripts share: gRPC stubs generated at run time from meshca's own ca.proto (grpcio-tools),
and a CSR as Istio's agents build it (a new P-256 key, the SPIFFE ID as the only SAN, an empty subject)."""
import atexit
import os
import shutil
import sys
import tempfile

import grpc_tools
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_tools import protoc


def load_stubs(proto_dir):
    out = tempfile.mkdtemp(prefix="meshca-stubs-")
    atexit.register(shutil.rmtree, out, ignore_errors=True)
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
