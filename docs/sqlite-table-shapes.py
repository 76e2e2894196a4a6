#!/usr/bin/env python3
"""What the ingest benchmark's SQLite baseline leaves out: the same 50,000 rows, 100 per
INSERT and 1,000 per transaction (WAL, synchronous=FULL), into the baseline's table
(primary key only) and into the gateway's own table shape (store/migrations/sqlite/0002:
the case and target indexes DOMAIN R3 needs, the device foreign key, the checks), in
the baseline's round-robin order and in the order the gateway's group commits see
during the drain (a few devices' consecutive records per transaction).

Python's sqlite3 (the system SQLite) adds its own binding cost to every row, so only
the ratios mean anything. Run: python3 docs/sqlite-table-shapes.py [folder]
"""
import hashlib
import os
import sqlite3
import sys
import time

COLUMNS = 19
BASELINE = """CREATE TABLE field_records (device_id TEXT NOT NULL, sequence INTEGER NOT NULL,
 previous_hash TEXT NOT NULL, hash TEXT NOT NULL, case_number TEXT NOT NULL,
 target TEXT NOT NULL, stage TEXT NOT NULL, action_kind TEXT NOT NULL, text TEXT NOT NULL,
 officers TEXT NOT NULL, location TEXT, lat_e6 INTEGER, lon_e6 INTEGER,
 made_at INTEGER NOT NULL, made_at_gateway INTEGER NOT NULL, recordings TEXT NOT NULL,
 corrects INTEGER, clock_skew_ms INTEGER NOT NULL, received_at INTEGER NOT NULL,
 PRIMARY KEY (device_id, sequence))"""
GATEWAY = [
    "CREATE TABLE devices (id TEXT PRIMARY KEY)",
    """CREATE TABLE field_records (device_id TEXT NOT NULL REFERENCES devices (id),
 sequence INTEGER NOT NULL CHECK (sequence >= 1), previous_hash TEXT NOT NULL,
 hash TEXT NOT NULL, case_number TEXT NOT NULL, target TEXT NOT NULL,
 stage TEXT NOT NULL CHECK (stage IN ('initiation', 'investigation', 'review_decision',
 'service_execution', 'archive')), action_kind TEXT NOT NULL, text TEXT NOT NULL,
 officers TEXT NOT NULL, location TEXT, lat_e6 INTEGER, lon_e6 INTEGER,
 made_at INTEGER NOT NULL, made_at_gateway INTEGER NOT NULL, recordings TEXT NOT NULL,
 corrects INTEGER, clock_skew_ms INTEGER NOT NULL, received_at INTEGER NOT NULL,
 PRIMARY KEY (device_id, sequence))""",
    "CREATE INDEX field_records_case ON field_records (case_number, made_at_gateway)",
    "CREATE INDEX field_records_target ON field_records (target, made_at_gateway)",
]


def rows(n, devices=1000):
    """The load test's record content (loadtest::sim::record_content), round-robin."""
    out = []
    for k in range(n):
        d, made = k % devices, k // devices + 1
        dev = f"dev-{d:05}"
        h = hashlib.sha256(f"{dev}{made}".encode()).hexdigest()
        out.append((dev, made, h, h, f"LT-{d:05}-{made // 50}", f"Shop {d % 97}",
                    "investigation", "inspection", f"{dev} record {made}",
                    '["LT-0001","LT-0002"]', "loadtest", None, None, 1790000000000,
                    1790000000000, "[]", None, 0, 1790000000000))
    return out


def insert(path, schema, data):
    for f in (path, path + "-wal", path + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=FULL")
    c.execute("PRAGMA foreign_keys=ON")
    for s in schema:
        c.execute(s)
    if len(schema) > 1:
        c.executemany("INSERT INTO devices VALUES (?)", sorted({(r[0],) for r in data}))
    stmt = "INSERT INTO field_records VALUES " + ",".join(
        ["(" + ",".join(["?"] * COLUMNS) + ")"] * 100)
    started = time.perf_counter()
    for i in range(0, len(data), 1000):
        c.execute("BEGIN")
        for j in range(i, i + 1000, 100):
            c.execute(stmt, [v for r in data[j:j + 100] for v in r])
        c.execute("COMMIT")
    rate = len(data) / (time.perf_counter() - started)
    c.close()
    return rate


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "."
    path = os.path.join(folder, "table-shapes.db")
    round_robin = rows(50_000)
    drain_order = sorted(round_robin, key=lambda r: (r[0], r[1]))
    for _ in range(3):
        base = insert(path, [BASELINE], round_robin)
        rr = insert(path, GATEWAY, round_robin)
        dm = insert(path, GATEWAY, drain_order)
        print(f"baseline {base:,.0f} rows/s; gateway table, round-robin {rr:,.0f} "
              f"({rr / base:.2f}); gateway table, drain order {dm:,.0f} ({dm / base:.2f})")
    for f in (path, path + "-wal", path + "-shm"):
        if os.path.exists(f):
            os.remove(f)


if __name__ == "__main__":
    main()
