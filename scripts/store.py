"""The results store of long runs (``sparseflow explore``, the benchmarks): one SQLite file.

One row per finished piece of work, keyed by the hash of its configuration and of the code
(:func:`code_version`), so a rerun skips what is done and a change to the code recomputes
everything. Rows are written by the one process that drives the run, each in its own
transaction as soon as its task returns: a killed run loses only the tasks still running.
The key is the primary key and rows are inserted with ``INSERT OR IGNORE``: a task that ran
twice (a worker died after finishing it, the scheduler re-ran it) is stored once.
"""
from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
import time
from functools import lru_cache
from pathlib import Path

from model.outputs import json_default

_SCHEMA = """CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,      -- config_key(kind, config)
    kind TEXT NOT NULL,        -- what the row is (compile, cost, point, synth, ...)
    config TEXT NOT NULL,      -- the configuration, JSON
    result TEXT NOT NULL,      -- the result, JSON
    blob BLOB,                 -- a binary result (e.g. a pickled network), or NULL
    code TEXT NOT NULL,        -- code_version() that computed it
    seconds REAL,              -- compute time of the task
    finished REAL NOT NULL     -- Unix time it was stored
)"""


@lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of every source and data file of the installed packages (``model``, ``rtl``,
    ``verif``, ``scripts``): any edit changes it, so stored results are never reused across code."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for pkg in ("model", "rtl", "verif", "scripts"):
        for p in sorted((root / pkg).rglob("*")):
            if p.suffix in (".py", ".json", ".cpp") and "__pycache__" not in p.parts:
                h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def config_key(kind: str, config: dict) -> str:
    """The store key of ``config``: SHA-256 of its canonical JSON, its kind and the code version."""
    text = json.dumps({"kind": kind, "config": config, "code": code_version()}, sort_keys=True,
                      default=json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class Store:
    """``results.sqlite`` in a run's output folder (see the module docstring)."""

    def __init__(self, path):
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")  # readers (a second shell) never block the writer
        self.db.execute(_SCHEMA)
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def has(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM results WHERE key = ?", (key,)).fetchone() is not None

    def get(self, key: str) -> dict | None:
        """``{"config", "result", "blob", "seconds"}`` of ``key``, or None."""
        r = self.db.execute("SELECT config, result, blob, seconds FROM results WHERE key = ?", (key,)).fetchone()
        return None if r is None else {"config": json.loads(r[0]), "result": json.loads(r[1]), "blob": r[2],
                                       "seconds": r[3]}

    def put(self, key: str, kind: str, config: dict, result: dict, blob: bytes | None = None,
            seconds: float | None = None) -> bool:
        """Store one finished task (committed at once); False if ``key`` was stored already."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO results (key, kind, config, result, blob, code, seconds, finished) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key, kind, json.dumps(config, sort_keys=True, default=json_default),
             json.dumps(result, sort_keys=True, default=json_default), blob, code_version(), seconds, time.time()))
        self.db.commit()
        return cur.rowcount == 1

    def rows(self, kind: str) -> list[dict]:
        """Every row of ``kind``: its config and result merged into one flat dictionary (plus ``key``)."""
        out = []
        for key, c, r, s in self.db.execute("SELECT key, config, result, seconds FROM results WHERE kind = ? "
                                            "ORDER BY finished, key", (kind,)):
            out.append({"key": key, **json.loads(c), **json.loads(r), "seconds": s})
        return out

    def count(self, kind: str | None = None) -> int:
        q = "SELECT COUNT(*) FROM results" + (" WHERE kind = ?" if kind else "")
        return self.db.execute(q, (kind,) if kind else ()).fetchone()[0]


def write_csv(rows: list[dict], path, fields: list[str]) -> None:
    """``rows`` as CSV with ``fields`` as columns (missing values empty)."""
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
