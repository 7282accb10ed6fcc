#!/usr/bin/env python3
"""A tiny HTTP receiver for the monitoring tests (stdlib only, loopback only).

It records every request it gets (method, path, headers, body) as one JSON line in --log, and
answers according to --mode:

  ok      200 with an empty body
  error   500
  hang    accepts the connection, reads the request, and never answers (until --lifetime)

Prints "PORT <n>" on stdout once listening; exits after --lifetime seconds.
"""
import argparse
import json
import socket
import sys
import threading
import time

lock = threading.Lock()


def serve(conn, args):
    try:
        conn.settimeout(30)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[0], lines[0].split(" ")[1]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0") or 0)
        while len(rest) < n:
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk
        record = {"time": time.time(), "method": method, "path": path, "headers": headers,
                  "body": rest[:n].decode("utf-8", "replace")}
        with lock:
            with open(args.log, "a") as f:
                f.write(json.dumps(record) + "\n")
        if args.mode == "hang":
            time.sleep(args.lifetime)
            return
        status = {"ok": "200 OK", "error": "500 Internal Server Error"}[args.mode]
        conn.sendall(("HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % status).encode())
    except OSError:
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--log", required=True)
    p.add_argument("--mode", choices=["ok", "error", "hang"], default="ok")
    p.add_argument("--lifetime", type=float, default=300)
    args = p.parse_args()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    sys.stdout.write("PORT %d\n" % srv.getsockname()[1])
    sys.stdout.flush()
    deadline = time.time() + args.lifetime
    srv.settimeout(1)
    while time.time() < deadline:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(conn, args), daemon=True).start()


if __name__ == "__main__":
    main()
