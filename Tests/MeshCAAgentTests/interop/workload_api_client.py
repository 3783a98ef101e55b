"""Reads meshca's SPIFFE Workload API with py-spiffe (PyPI `spiffe`), SPIFFE's own Python client.

Usage: workload_api_client.py SOCKET_PATH

1. fetch_x509_svid(), fetch_x509_bundles() and fetch_x509_context() through WorkloadApiClient.
2. A raw grpcio call with py-spiffe's generated stubs but *without* the `workload.spiffe.io` header.
3. stream_x509_contexts(): prints "FIRST-UPDATE <serial>" after the first update, then waits (up to
   60 s) for an update carrying a different leaf serial, which the Swift test causes by publishing
   new credentials.

Prints one line "RESULT <json>" at the end; exits 0 once it got that far (the Swift test checks the fields).
"""

import json
import sys
import threading

import grpc
from cryptography.hazmat.primitives import serialization
from spiffe import TrustDomain, WorkloadApiClient
from spiffe._proto import workload_pb2, workload_pb2_grpc


def public_key_bytes(key):
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def main():
    socket_path = sys.argv[1]
    result = {}
    client = WorkloadApiClient(socket_path="unix://" + socket_path)

    svid = client.fetch_x509_svid()
    result["spiffe_id"] = str(svid.spiffe_id)
    result["chain_length"] = len(svid.cert_chain)
    result["key_matches_leaf"] = public_key_bytes(svid.private_key.public_key()) == public_key_bytes(svid.leaf.public_key())
    first_serial = format(svid.leaf.serial_number, "x")
    result["serial"] = first_serial

    bundles = client.fetch_x509_bundles()
    bundle = bundles.get_bundle_for_trust_domain(TrustDomain("cluster.local"))
    result["bundle_authorities"] = len(bundle.x509_authorities) if bundle is not None else 0
    result["leaf_issuer_in_bundle"] = bundle is not None and any(
        authority.subject == svid.leaf.issuer for authority in bundle.x509_authorities
    )

    context = client.fetch_x509_context()
    result["context_svid"] = str(context.default_svid.spiffe_id)
    context_bundle = context.x509_bundle_set.get_bundle_for_trust_domain(TrustDomain("cluster.local"))
    result["context_bundle_authorities"] = len(context_bundle.x509_authorities) if context_bundle else 0

    # py-spiffe always adds the header, so call its stubs directly to see the refusal a header-less client gets.
    with grpc.insecure_channel("unix:" + socket_path) as channel:
        stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)
        try:
            next(iter(stub.FetchX509SVID(workload_pb2.X509SVIDRequest(), timeout=10)))
            result["no_header_code"] = "OK"
        except grpc.RpcError as error:
            result["no_header_code"] = error.code().name

    serials = []
    rotated = threading.Event()
    errors = []

    def on_success(update):
        serial = format(update.default_svid.leaf.serial_number, "x")
        serials.append(serial)
        if len(serials) == 1:
            print("FIRST-UPDATE " + serial, flush=True)
        elif serial != serials[0]:
            rotated.set()

    def on_error(error):
        errors.append(repr(error))

    handle = client.stream_x509_contexts(on_success, on_error)
    result["rotation_seen"] = rotated.wait(timeout=60)
    handle.cancel()
    result["stream_serials"] = serials
    result["stream_errors"] = errors
    client.close()
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
