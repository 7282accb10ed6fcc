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

Hostile-server modes: the request is forwarded unchanged (signatures still verify) and the real
server's answer is rewritten. A rewritten answer stays valid HTTP: its body is read whole
(Content-Length, chunked or until close) and sent back with a corrected Content-Length (no
Transfer-Encoding); answers to HEAD never get a body. The list-* modes apply only to
ListObjectsV2 requests (GET with list-type=2 in the query); other requests pass untouched and
are not counted.

  list-inject    add a <Contents> entry for --inject-key (default other/x.db.gz.enc; e.g. a key
                 outside the requested prefix, or backups/../victim), --inject-size bytes,
                 LastModified 2020-01-01, before </ListBucketResult>; KeyCount is raised by one so
                 the page is otherwise consistent
  list-loop      every answer says IsTruncated=true with the same NextContinuationToken
                 (--token, default "loop-token"): a listing that never advances
  list-pad       --pad-bytes (default 17 MiB) of whitespace before </ListBucketResult>: a
                 well-formed document larger than any real page
  list-cut       only the first half of the body (the XML is cut in the middle)
  list-unclosed  the closing </ListBucketResult> removed
  list-notoken   IsTruncated=true and every NextContinuationToken removed
  trickle        GET answers with a 2xx status that are not listings (object bodies): the head at
                 once, then the body one byte every --trickle-interval seconds (default 0.5, i.e.
                 2 B/s: above curl's 1 B/s low-speed limit, so only a size-dependent deadline
                 ends it)
  header         set the response header --header "Name: value" (replaced when present, added
                 otherwise). Content-Length is only rewritten on answers without a body (HEAD,
                 204, 304): use --methods HEAD for it

Usage: fault_proxy.py --upstream 127.0.0.1:8333 --fault reset --count 2 [--methods GET]
       [--min-body 1] [--stall-seconds 30] [--lifetime 600] [--inject-key K] [--inject-size N]
       [--token T] [--pad-bytes N] [--trickle-interval S] [--header "Name: value"]
Prints "PORT <n>" on stdout once listening, then one line per request ("REQ <method> <path>
range=<Range header>") and per injected fault ("FAULT <kind> <method> <path>"), and exits after --lifetime seconds at the latest. --count -1: every request.
"""
import argparse
import re
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


LIST_MODES = ("list-inject", "list-loop", "list-pad", "list-cut", "list-unclosed", "list-notoken")
REWRITE_MODES = LIST_MODES + ("trickle", "header")


def is_listing(path):
    """ListObjectsV2: GET /bucket?list-type=2&... (path style) or /?list-type=2 (virtual host)."""
    query = path.split("?", 1)[1] if "?" in path else ""
    return "list-type=2" in query.split("&")


def is_listing_or_uploads(path):
    query = path.split("?", 1)[1] if "?" in path else ""
    names = [q.split("=", 1)[0] for q in query.split("&")]
    return "list-type" in names or "uploads" in names


def read_body(sock, buf, headers):
    """The whole response body (Content-Length, chunked, or until close), decoded; None when
    the connection broke before a declared length arrived."""
    if "content-length" in headers:
        body, _ = read_exact(sock, buf, int(headers["content-length"]))
        return body
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            line, buf = read_until(sock, buf, b"\r\n")
            if line is None:
                return None
            size = int(line.strip().split(b";")[0], 16)
            if size == 0:
                # Trailers (if any) end with an empty line.
                while True:
                    t, buf = read_until(sock, buf, b"\r\n")
                    if t is None or t == b"\r\n":
                        return body
            chunk, buf = read_exact(sock, buf, size + 2)
            if chunk is None:
                return None
            body += chunk[:size]
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return buf
        buf += chunk


def rebuild_head(head, body_len=None, set_header=None):
    """The response head with Transfer-Encoding dropped and Content-Length set to body_len
    (when given), and `set_header` (name, value) replaced or added."""
    lines = head.decode("latin-1").split("\r\n")
    out = [lines[0]]
    drop = set()
    if body_len is not None:
        drop |= {"content-length", "transfer-encoding"}
    if set_header:
        drop.add(set_header[0].lower())
    for line in lines[1:]:
        if not line:
            continue
        if line.split(":", 1)[0].strip().lower() in drop:
            continue
        out.append(line)
    if set_header:
        out.append("%s: %s" % set_header)
    if body_len is not None:
        out.append("Content-Length: %d" % body_len)
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")


def xml_escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def rewrite_listing(mode, body, args):
    """A ListObjectsV2 document rewritten the way `mode` says (see the module docstring)."""
    close = b"</ListBucketResult>"
    if mode == "list-inject":
        entry = ("<Contents><Key>%s</Key><LastModified>2020-01-01T00:00:00.000Z</LastModified>"
                 "<ETag>&quot;00000000000000000000000000000000&quot;</ETag><Size>%d</Size>"
                 "<StorageClass>STANDARD</StorageClass></Contents>"
                 % (xml_escape(args.inject_key), args.inject_size)).encode()
        body = body.replace(close, entry + close, 1)
        body = re.sub(rb"<KeyCount>\s*(\d+)\s*</KeyCount>",
                      lambda m: b"<KeyCount>%d</KeyCount>" % (int(m.group(1)) + 1), body, count=1)
        return body
    if mode in ("list-loop", "list-notoken"):
        body = re.sub(rb"<NextContinuationToken>.*?</NextContinuationToken>", b"", body, flags=re.S)
        extra = b"" if mode == "list-notoken" else (
            b"<NextContinuationToken>" + xml_escape(args.token).encode() + b"</NextContinuationToken>")
        return re.sub(rb"<IsTruncated>\s*\w+\s*</IsTruncated>", b"<IsTruncated>true</IsTruncated>" + extra,
                      body, count=1)
    if mode == "list-pad":
        return body.replace(close, b"\n" + b" " * args.pad_bytes + b"\n" + close, 1)
    if mode == "list-cut":
        return body[: len(body) // 2]
    if mode == "list-unclosed":
        return body.replace(close, b"", 1)
    return body


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

    def take_fault(self, method, body_len, path=""):
        global injected
        if self.methods and method not in self.methods:
            return None
        if self.args.fault in LIST_MODES and not (method == "GET" and is_listing(path)):
            return None
        if self.args.fault == "trickle" and not (method == "GET" and not is_listing_or_uploads(path)):
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
                fault = self.take_fault(method, body_len, path)
                log("REQ %s %s range=%s md5=%s" % (method, path, headers.get("range", ""), headers.get("content-md5", "")))
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

    def rewrite(self, client, up, buf, head, headers, status, no_body, fault):
        """Sends the upstream answer rewritten as `fault` says; returns whether the client
        connection may be reused."""
        keep = headers.get("connection", "").lower() != "close"
        if fault == "header":
            name, value = [x.strip() for x in self.args.header.split(":", 1)]
            if no_body:
                client.sendall(rebuild_head(head, set_header=(name, value)))
                return keep
            if name.lower() in ("content-length", "transfer-encoding"):
                raise SystemExit("--fault header: %s can only be rewritten on answers without a body" % name)
            body = read_body(up, buf, headers)
            if body is None:
                rst(client)
                return False
            client.sendall(rebuild_head(head, body_len=len(body), set_header=(name, value)) + body)
            return keep
        if no_body:
            client.sendall(head)
            return keep
        body = read_body(up, buf, headers)
        if body is None:
            rst(client)
            return False
        if fault == "trickle":
            if not 200 <= status < 300:
                client.sendall(rebuild_head(head, body_len=len(body)) + body)
                return keep
            client.sendall(rebuild_head(head, body_len=len(body)))
            for i in range(len(body)):
                time.sleep(self.args.trickle_interval)
                client.sendall(body[i:i + 1])
            return keep
        if 200 <= status < 300:
            body = rewrite_listing(fault, body, self.args)
        client.sendall(rebuild_head(head, body_len=len(body)) + body)
        return keep

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
            no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
            if fault in REWRITE_MODES:
                return self.rewrite(client, up, buf, head, headers, status, no_body, fault)
            if no_body:
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
    p.add_argument("--fault", choices=["none", "500", "503", "reset", "stall", "flip"] + list(REWRITE_MODES),
                   default="none")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--methods", default="")
    p.add_argument("--min-body", type=int, default=1)
    p.add_argument("--stall-seconds", type=float, default=30)
    p.add_argument("--lifetime", type=float, default=600)
    p.add_argument("--inject-key", default="other/x.db.gz.enc")
    p.add_argument("--inject-size", type=int, default=64)  # may exceed 64 bits: an untrusted number
    p.add_argument("--token", default="loop-token")
    p.add_argument("--pad-bytes", type=int, default=17 << 20)
    p.add_argument("--trickle-interval", type=float, default=0.5)
    p.add_argument("--header", default="")
    args = p.parse_args()
    if args.fault == "none":
        args.count = 0
    if args.fault == "header" and ":" not in args.header:
        p.error("--fault header needs --header 'Name: value'")
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
