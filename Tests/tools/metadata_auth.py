#!/usr/bin/env python3
"""Independent check of laju-backup's metadata authentication (docs/design.md 2.6 and 4.6),
written from the document with Python's standard library only (hmac, hashlib), not from the
Swift code.

  metadata_auth.py object KEY_B64 OBJECT_KEY META_JSON   -> the `auth` the object's pairs must carry
  metadata_auth.py record KEY_B64 OBJECT_KEY BODY_FILE   -> the `auth` of an identity record
  metadata_auth.py pack KEY_B64 IDENTITY RELATIVE_NAME   -> the 40-byte header of a version 2 pack
                                                            (docs/format-incremental.md 3, 4.1), hex
"""
import base64
import hashlib
import hmac
import json
import struct
import sys


def hkdf_sha256(ikm, info, length=32):
    # RFC 5869 with no salt: a string of HashLen zeros.
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def meta_key(key_b64):
    return hkdf_sha256(base64.b64decode(key_b64), b"laju-backup v2: HMAC-SHA256 of a full backup's metadata")


def field(text):
    b = text.encode("utf-8")
    return struct.pack(">I", len(b)) + b


def object_auth(key_b64, object_key, pairs):
    pairs = {k.lower(): v for k, v in pairs.items() if k.lower() != "auth"}
    data = b"laju-backup object metadata v2\0" + field(object_key)
    for name in sorted(pairs, key=lambda n: n.encode("utf-8")):
        data += field(name) + field(pairs[name])
    return hmac.new(meta_key(key_b64), data, hashlib.sha256).hexdigest()


def record_auth(key_b64, object_key, body):
    data = b"laju-backup identity record v1\0" + object_key.encode("utf-8") + b"\0" + body
    return hmac.new(meta_key(key_b64), data, hashlib.sha256).hexdigest()


def pack_header(key_b64, identity, relative_name):
    k_pack = hkdf_sha256(
        base64.b64decode(key_b64), b"laju-backup incremental pack-header v2\0" + identity.encode("utf-8"))
    mac = hmac.new(k_pack, b"laju-backup pack header v2\0" + relative_name.encode("utf-8"), hashlib.sha256)
    return (b"LJINCPK2" + mac.digest()).hex()


def main(argv):
    if argv[1] == "pack":
        print(pack_header(argv[2], argv[3], argv[4]))
        return
    mode, key_b64, object_key, path = argv[1:5]
    with open(path, "rb") as f:
        content = f.read()
    if mode == "object":
        print(object_auth(key_b64, object_key, json.loads(content)))
    elif mode == "record":
        print(record_auth(key_b64, object_key, content))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main(sys.argv)
