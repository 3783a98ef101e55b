"""Calls FetchX509SVID once, as whatever uid this process runs under, and reports the outcome.

Usage: workload_api_uid_probe.py SOCKET_PATH
Prints "RESULT OK <spiffe id> uid=<uid>" or "RESULT <gRPC status code name> uid=<uid>". The Swift test
starts it under another uid (setpriv) to show that admission follows the kernel's peer credentials.
Uses grpcio with py-spiffe's generated stubs so the status code arrives unwrapped.
"""

import os
import sys

import grpc
from spiffe._proto import workload_pb2, workload_pb2_grpc


def main():
    socket_path = sys.argv[1]
    with grpc.insecure_channel("unix:" + socket_path) as channel:
        stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)
        try:
            responses = stub.FetchX509SVID(
                workload_pb2.X509SVIDRequest(), metadata=[("workload.spiffe.io", "true")], timeout=30
            )
            first = next(iter(responses))
            responses.cancel()
            outcome = "OK " + first.svids[0].spiffe_id
        except grpc.RpcError as error:
            outcome = error.code().name
    print("RESULT %s uid=%d" % (outcome, os.getuid()), flush=True)


if __name__ == "__main__":
    main()
