#!/usr/bin/env python3
"""Generates a realistic app database of about SIZE MiB: users, orders with free text, events with
JSON-ish payloads and a share of random (incompressible) bytes, in WAL mode, as Laju apps run.
Usage: make-db.py PATH SIZE_MIB"""
import os, random, sqlite3, sys

path, size_mib = sys.argv[1], int(sys.argv[2])
target = size_mib * 1024 * 1024
if os.path.exists(path):
    os.remove(path)
db = sqlite3.connect(path)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=OFF")
db.executescript("""
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT, created_at INTEGER);
CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, total_cents INTEGER, status TEXT, note TEXT, created_at INTEGER);
CREATE INDEX orders_user ON orders(user_id);
CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT, payload TEXT, token BLOB, at INTEGER);
""")
rnd = random.Random(42)
words = "the order was shipped to customer via courier payment received invoice pending refund address street city".split()
batch = 20000
uid = oid = eid = 0
while True:
    rows_u, rows_o, rows_e = [], [], []
    for _ in range(batch // 10):
        uid += 1
        rows_u.append((uid, f"user{uid}@example.com", f"User {uid}", 1700000000000 + uid * 1000))
    for _ in range(batch):
        oid += 1
        rows_o.append((oid, rnd.randint(1, uid), rnd.randint(100, 999999), rnd.choice(["paid", "shipped", "pending", "refunded"]),
                       " ".join(rnd.choice(words) for _ in range(rnd.randint(4, 16))), 1700000000000 + oid * 60000))
        eid += 1
        rows_e.append((eid, rnd.choice(["login", "view", "click", "purchase"]),
                       '{"ip":"10.%d.%d.%d","ua":"Mozilla/5.0","path":"/p/%d"}' % (rnd.randint(0, 255), rnd.randint(0, 255), rnd.randint(0, 255), rnd.randint(1, 5000)),
                       os.urandom(24), 1700000000000 + eid * 1000))
    db.executemany("INSERT INTO users VALUES (?,?,?,?)", rows_u)
    db.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?)", rows_o)
    db.executemany("INSERT INTO events VALUES (?,?,?,?,?)", rows_e)
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if os.path.getsize(path) >= target:
        break
# The catalog table, exactly as knex creates it.
db.executescript("""
create table `backup_files` (`id` varchar(255), `key` varchar(255) not null, `file_name` varchar(255) not null, `file_size` bigint not null, `compression` varchar(255) not null, `storage` varchar(255) not null, `checksum` varchar(255) not null, `uploaded_at` bigint not null, `deleted_at` bigint null, `encryption` varchar(255) not null, `enc_iv` varchar(255) not null, `enc_tag` varchar(255) not null, primary key (`id`));
create unique index `backup_files_key_unique` on `backup_files` (`key`);
""")
db.commit()
db.close()
print(f"{path}: {os.path.getsize(path) / 1048576:.0f} MiB, {oid} orders, {eid} events")
