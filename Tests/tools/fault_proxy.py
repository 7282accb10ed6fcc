#!/usr/bin/env python3
"""A small fault-injecting HTTP proxy for the S3 end-to-end tests (stdlib only, loopback only).

It sits in front of an S3 server and forwards each request byte for byte (the Host header and
every signed header stay as the client sent them, so SigV4 signatures still verify upstream).
The first N eligible requests get a fault instead:

  500      answer 500 InternalError (S3 XML error body)
  503      answer 503 SlowDown
  reset    cut the connection with a TCP RST in the middle of the body: halfway through the
           request body for uploads, halfway through the response body for downloads
  stall    the same, but instead of a reset the connection goes silent for --stall-seconds
  flip     forward the request with one byte of its body inverted (corruption in transit)

Usage: fault_proxy.py --upstream 127.0.0.1:8333 --fault reset --count 2 [--methods GET]
       [--min-body 1] [--stall-seconds 30] [--lifetime 600]
Prints "PORT <n>" on stdout once listening, then one line per request ("REQ <method> <path>
range=<Range header>") and per injected fault ("FAULT <kind> <method> <path>"), and exits after --lifetime seconds at the latest. --count -1: every request.
"""
import argparse
import socket
import struct
import sys
import threading
import time

lock = threading.Lock()
injected = 0


def log(line):
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def read_until(sock, buf, marker):
    while marker not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    i = buf.index(marker) + len(marker)
    return buf[:i], buf[i:]


def read_exact(sock, buf, n):
    while len(buf) < n:
        chunk = sock.recv(min(1 << 20, n - len(buf)) or 1)
        if not chunk:
            return None, buf
        buf += chunk
    return buf[:n], buf[n:]


def parse_headers(head):
    lines = head.decode("latin-1").split("\r\n")
    first = lines[0]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return first, headers


def rst(sock):
    """Close with a TCP RST (SO_LINGER 0), as a dropped connection looks to the client."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


def error_response(status, code, message):
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message>"
            "<RequestId>FAULTPROXY%d</RequestId></Error>" % (code, message, int(time.time() * 1000))).encode()
    reason = {500: "Internal Server Error", 503: "Slow Down"}[status]
    head = ("HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n"
            "Connection: close\r\n\r\n" % (status, reason, len(body))).encode()
    return head + body


class Proxy:
    def __init__(self, args):
        self.args = args
        host, port = args.upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.methods = set(m.strip().upper() for m in args.methods.split(",")) if args.methods else None

    def take_fault(self, method, body_len):
        global injected
        if self.methods and method not in self.methods:
            return None
        if self.args.fault in ("reset", "stall", "flip") and method in ("PUT", "POST") and body_len < self.args.min_body:
            return None
        with lock:
            if self.args.count >= 0 and injected >= self.args.count:
                return None
            injected += 1
        return self.args.fault

    def serve(self, client):
        buf = b""
        try:
            while True:
                head, buf = read_until(client, buf, b"\r\n\r\n")
                if head is None:
                    return
                first, headers = parse_headers(head)
                method, path = first.split(" ")[0].upper(), first.split(" ")[1]
                body_len = int(headers.get("content-length", "0") or 0)
                fault = self.take_fault(method, body_len)
                log("REQ %s %s range=%s" % (method, path, headers.get("range", "")))
                if fault:
                    log("FAULT %s %s %s" % (fault, method, path))
                if fault in ("reset", "stall") and body_len > 0:
                    # Take half the upload, then break the connection.
                    _, buf = read_exact(client, buf, body_len // 2)
                    if fault == "stall":
                        time.sleep(self.args.stall_seconds)
                    rst(client)
                    return
                body, buf = read_exact(client, buf, body_len)
                if body is None:
                    return
                if fault == "flip" and body_len > 0:
                    body = body[: body_len // 2] + bytes([body[body_len // 2] ^ 0xFF]) + body[body_len // 2 + 1:]
                if fault in ("500", "503"):
                    client.sendall(error_response(500, "InternalError", "injected fault") if fault == "500"
                                   else error_response(503, "SlowDown", "Please reduce your request rate."))
                    client.close()
                    return
                keep = self.forward(client, head + body, method, fault)
                if not keep:
                    client.close()
                    return
        except OSError:
            try:
                client.close()
            except OSError:
                pass

    def forward(self, client, request, method, fault):
        """Relays one request upstream and its response back; returns whether the client
        connection may be reused."""
        up = socket.create_connection(self.upstream, timeout=60)
        try:
            up.sendall(request)
            buf = b""
            head, buf = read_until(up, buf, b"\r\n\r\n")
            if head is None:
                rst(client)
                return False
            first, headers = parse_headers(head)
            status = int(first.split(" ")[1])
            if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                client.sendall(head)
                return True
            if "content-length" in headers:
                n = int(headers["content-length"])
                if fault in ("reset", "stall") and n > 1:
                    half, buf = read_exact(up, buf, n // 2)
                    client.sendall(head + (half or b""))
                    if fault == "stall":
                        time.sleep(self.args.stall_seconds)
                    rst(client)
                    return False
                client.sendall(head)
                sent = 0
                while sent < n:
                    if not buf:
                        buf = up.recv(1 << 20)
                        if not buf:
                            rst(client)
                            return False
                    piece, buf = buf[: n - sent], buf[n - sent:]
                    client.sendall(piece)
                    sent += len(piece)
                return headers.get("connection", "").lower() != "close"
            # No length (chunked or until close): relay until upstream closes, then close too.
            client.sendall(head + buf)
            if headers.get("transfer-encoding", "").lower() == "chunked":
                data = buf
                while not data.endswith(b"0\r\n\r\n"):
                    chunk = up.recv(1 << 20)
                    if not chunk:
                        break
                    client.sendall(chunk)
                    data = (data + chunk)[-16:]
                return True
            while True:
                chunk = up.recv(1 << 20)
                if not chunk:
                    return False
                client.sendall(chunk)
        finally:
            up.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--fault", choices=["none", "500", "503", "reset", "stall", "flip"], default="none")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--methods", default="")
    p.add_argument("--min-body", type=int, default=1)
    p.add_argument("--stall-seconds", type=float, default=30)
    p.add_argument("--lifetime", type=float, default=600)
    args = p.parse_args()
    if args.fault == "none":
        args.count = 0
    proxy = Proxy(args)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    log("PORT %d" % srv.getsockname()[1])
    deadline = time.time() + args.lifetime
    srv.settimeout(1)
    while time.time() < deadline:
        try:
            client, _ = srv.accept()
        except socket.timeout:
            continue
        threading.Thread(target=proxy.serve, args=(client,), daemon=True).start()


if __name__ == "__main__":
    main()
