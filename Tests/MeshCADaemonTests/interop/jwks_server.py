"""An HTTPS server standing in for the Kubernetes API server's JWKS endpoints in RemoteJWTKeysTests.

Serves GET PATH from the file DIRECTORY/<PATH with "/" as "_">, so /openid/v1/jwks is "_openid_v1_jwks" and the
test rotates keys by rewriting that file. With a TOKEN argument every request must carry "Authorization: Bearer
TOKEN" (else 401). Prints "PORT n" once listening. Every request is appended as "GET path status" to
DIRECTORY/requests.log before its answer is sent, so a client that has its answer finds the line there (the
test counts requests from that file; reading this process's output instead would race with the pipe).

    python3 jwks_server.py DIRECTORY CERT_CHAIN_PEM KEY_PEM [TOKEN]
"""
import http.server
import os
import signal
import ssl
import sys

# The test process ignores or blocks SIGTERM (its in-process daemons handle it through ServiceLifecycle) and
# children inherit that; stop on it as a server should.
signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

directory, chain, key = sys.argv[1:4]
token = sys.argv[4] if len(sys.argv) > 4 else None


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if token is not None and self.headers.get("Authorization") != "Bearer " + token:
            return self.answer(401, b'{"message":"Unauthorized"}')
        path = os.path.join(directory, self.path.split("?")[0].replace("/", "_"))
        if not os.path.isfile(path):
            return self.answer(404, b'{"message":"not found"}')
        with open(path, "rb") as f:
            self.answer(200, f.read())

    def answer(self, status, body):
        with open(os.path.join(directory, "requests.log"), "a") as log:
            log.write("GET %s %d\n" % (self.path, status))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    """Each connection's TLS handshake runs on that connection's own thread, under a timeout: a client that
    connects and sends nothing (or is not speaking TLS) cannot hold up the next one, as it would if the handshake
    ran inside accept() on the serving thread."""

    daemon_threads = True

    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:
            request = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            request.close()
            return
        super().finish_request(request, client_address)


context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(chain, key)
server = Server(("127.0.0.1", 0), Handler)
print("PORT", server.server_address[1], flush=True)
server.serve_forever()
