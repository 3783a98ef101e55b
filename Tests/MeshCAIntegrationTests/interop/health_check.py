"""Checks meshca's grpc.health.v1.Health with grpcio's own health stub (grpcio-health-checking), the client
Kubernetes-style probes and grpc_health_probe are built on.

Usage: health_check.py ADDRESS ROOT_CERT STATE_DIR METRICS_URL

Check for "" and the Istio service (SERVING), an unknown name (NOT_FOUND); then a Watch on "": its first message,
then the CA certificate file is replaced by garbage (the CA becomes unusable) and the next message must be
NOT_SERVING, with Check agreeing and /metrics showing meshca_ca_usable 0; the file is put back and the next message
must be SERVING. Prints one JSON line.
"""
import json
import os
import queue
import sys
import threading
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

NAMES = {v: k for k, v in health_pb2.HealthCheckResponse.ServingStatus.items()}


def main():
    address, root_cert, state_dir, metrics_url = sys.argv[1:5]
    credentials = grpc.ssl_channel_credentials(root_certificates=open(root_cert, "rb").read())
    result = {}
    with grpc.secure_channel(address, credentials) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ["", "istio.v1.auth.IstioCertificateService"]:
            response = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=15)
            result[f"check[{name}]"] = NAMES[response.status]
        try:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=15)
            result["check_unknown"] = "OK"
        except grpc.RpcError as error:
            result["check_unknown"] = error.code().name

        updates = queue.Queue()
        call = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=60)

        def pump():
            try:
                for message in call:
                    updates.put(NAMES[message.status])
            except grpc.RpcError as error:
                updates.put("ended:" + error.code().name)

        threading.Thread(target=pump, daemon=True).start()
        watched = [updates.get(timeout=20)]
        cert = os.path.join(state_dir, "ca-cert.pem")
        original = open(cert, "rb").read()
        with open(cert + ".tmp", "wb") as f:
            f.write(b"not a certificate\n")
        os.replace(cert + ".tmp", cert)
        try:
            watched.append(updates.get(timeout=20))
            result["check_while_broken"] = NAMES[stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=15).status]
            metrics = urllib.request.urlopen(metrics_url, timeout=15).read().decode()
            result["ca_usable_while_broken"] = [float(l.split()[1]) for l in metrics.splitlines() if l.startswith("meshca_ca_usable ")]
        finally:
            with open(cert + ".tmp", "wb") as f:
                f.write(original)
            os.replace(cert + ".tmp", cert)
        watched.append(updates.get(timeout=20))
        result["watch"] = watched
        call.cancel()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
