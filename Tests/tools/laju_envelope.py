#!/usr/bin/env python3
"""An independent implementation of the Laju envelope, for interop tests.

Written from the format page only (AES-256-GCM of a gzip stream, 12-byte IV, 16-byte tag kept
apart, no AAD) with pyca/cryptography and Python's gzip: it shares no code with laju-backup.

  laju_envelope.py open-raw OBJECT KEY_B64 IV_B64 TAG_B64 > stream.gz   decrypt only (the compressed
                                                                       stream out: gzip, or zstd/xz for
                                                                       `zstd -dc` / `xz -dc`)
  laju_envelope.py open     OBJECT KEY_B64 IV_B64 TAG_B64 > plain      decrypt + gunzip
  laju_envelope.py open-meta OBJECT KEY_B64 > plain                    IV/tag from OBJECT.meta.json
  laju_envelope.py seal-gz  GZFILE OBJECT KEY_B64                      encrypt an existing compressed
                                                                       file (gzip, zstd or xz);
                                                                       prints {"iv","tag","checksum"}
Exit status 1 with "InvalidTag" on stderr when the tag does not verify.
"""
import base64
import gzip
import hashlib
import json
import os
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def decrypt(path, key_b64, iv_b64, tag_b64):
    key = base64.b64decode(key_b64, validate=True)
    iv = base64.b64decode(iv_b64, validate=True)
    tag = base64.b64decode(tag_b64, validate=True)
    assert len(key) == 32 and len(iv) == 12 and len(tag) == 16, "key 32, iv 12, tag 16 bytes"
    with open(path, "rb") as f:
        ct = f.read()
    # cryptography's AESGCM expects the tag appended; the Laju object keeps it apart.
    return AESGCM(key).decrypt(iv, ct + tag, None)


def main(argv):
    cmd = argv[1]
    try:
        if cmd in ("open-raw", "open"):
            stream = decrypt(*argv[2:6])
            sys.stdout.buffer.write(stream if cmd == "open-raw" else gzip.decompress(stream))
        elif cmd == "open-meta":
            with open(argv[2] + ".meta.json") as f:
                meta = json.load(f)
            assert meta["algo"] == "aes-256-gcm" and meta["comp"] == "gzip", meta
            with open(argv[2], "rb") as f:
                assert hashlib.md5(f.read()).hexdigest() == meta["checksum"], "checksum mismatch"
            sys.stdout.buffer.write(gzip.decompress(decrypt(argv[2], argv[3], meta["iv"], meta["tag"])))
        elif cmd == "seal-gz":
            src, dst, key_b64 = argv[2:5]
            key = base64.b64decode(key_b64, validate=True)
            iv = os.urandom(12)
            with open(src, "rb") as f:
                sealed = AESGCM(key).encrypt(iv, f.read(), None)
            ct, tag = sealed[:-16], sealed[-16:]
            with open(dst, "wb") as f:
                f.write(ct)
            print(json.dumps({"iv": base64.b64encode(iv).decode(), "tag": base64.b64encode(tag).decode(),
                              "checksum": hashlib.md5(ct).hexdigest()}))
        else:
            sys.exit(f"unknown command {cmd}")
    except InvalidTag:
        sys.stderr.write("InvalidTag\n")
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv)
