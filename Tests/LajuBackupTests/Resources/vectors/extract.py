#!/usr/bin/env python3
"""Re-creates the trimmed NIST CAVP files in this folder from a cryptography_vectors wheel.

    pip download --no-deps -d /tmp/cv cryptography_vectors && cd /tmp/cv && unzip -q *.whl
    python3 extract.py /tmp/cv/cryptography_vectors/ciphers/AES/GCM .

Keeps whole sections (all Count entries) whose header matches the selection below, so each kept
section is byte-for-byte as NIST published it.
"""
import sys

def keep(h):
    iv, pt, aad, tag = h["IVlen"], h["PTlen"], h["AADlen"], h["Taglen"]
    if iv == 96:   # the Laju envelope's IV length: every plaintext length, three AAD lengths, three tag lengths
        return aad in (0, 128, 720) and tag in (128, 96, 32)
    return tag == 128 and aad in (0, 720) and pt in (0, 408)   # 8- and 1024-bit IVs (GHASH'd IV path)

def trim(src, dst):
    lines = open(src).read().split("\n")
    out, i = [], 0
    # File comment header.
    while i < len(lines) and not lines[i].startswith("["):
        out.append(lines[i]); i += 1
    while i < len(lines):
        header = []
        while i < len(lines) and lines[i].startswith("["):
            header.append(lines[i]); i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("["):
            body.append(lines[i]); i += 1
        h = {l.strip("[]").split(" = ")[0]: int(l.strip("[]").split(" = ")[1]) for l in header}
        if keep(h):
            out += header + body
    open(dst, "w").write("\n".join(out))

src, dst = sys.argv[1], sys.argv[2]
for name in ("gcmEncryptExtIV256.rsp", "gcmDecrypt256.rsp"):
    trim(f"{src}/{name}", f"{dst}/{name}")
