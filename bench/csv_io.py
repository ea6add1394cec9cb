"""CSV import and export of 100,000 rows x 8 columns (9.6 MB), ours and the code before, side by side.

Each import and each export runs in a fresh Python process, so its peak RSS
(``ru_maxrss``) is its own; the process also reports its RSS before the work (the interpreter
and the app's imports), and the figure is the difference. Both versions run the service the
tables page calls, as the page calls it: ours streams the file in 256 KiB chunks
(``import_csv_stream``) and streams the export to a file (``write_csv``); the code before
read the whole upload (``import_csv(data=…)``) and built the export as one string
(``export_csv``). The code before is ``git archive <ref>`` of ``--baseline-ref``, unpacked
under ``bench/.work/csv_io/``.

Measured, median of ``--runs`` (3) each, on SQLite (a file, as the app configures it) and on
a throwaway PostgreSQL cluster (default durability): the 100k-row import and export, then the
import and export of 25k and 50k rows, to show what memory does when the file doubles.
Targets (SQLite): import <= 3 s, export <= 1 s, memory bounded by streaming, not by the file.

    python -m bench.csv_io [--rows 100000] [--runs 3] [--no-postgres] [--baseline-ref REF]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.live_app import code_state
from tests.support.machine import describe, figure, write_result
from tests.support.paths import ROOT
from tests.support.servers import ServerUnavailable, postgres_bindir, postgres_cluster

WORK = ROOT / "bench" / ".work" / "csv_io"
BASELINE_REF = "75b29e2"
"""main before this work (issue 13 §4): the whole-file import and export."""
IMPORT_TARGET_S = 3.0
EXPORT_TARGET_S = 1.0
HEADER = ["Company", "City", "Country", "Email", "Website", "Phone", "Industry", "Notes"]
CITIES = ["Rome", "Paris", "Berlin", "Lisbon", "Oslo", "Madrid", "Vienna", "Prague", "Dublin"]
NOTES = ["", "call back next week", "met at the fair", "asked for a demo in May", "hot lead"]

CHILD = r"""
import json, os, resource, sys, time
mode, url, path, table = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
from enrichment_app.db.engine import create_db_engine, session_factory
from enrichment_app.db.migrate import upgrade_database
from enrichment_app.services import csv_import, tables
streaming = hasattr(csv_import, "import_csv_stream")
if streaming:
    from enrichment_app.services.csv_reading import read_chunks
    from enrichment_app.services.csv_export import write_csv
engine = create_db_engine(url)
upgrade_database(engine)
open_session = session_factory(engine)
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
before, load = rss(), os.getloadavg()[0]
wall, cpu = time.perf_counter(), time.process_time()
with open_session() as session:
    if mode == "import":
        limit = 40 * 1024 * 1024
        with open(path, "rb") as upload:
            if streaming:
                created = csv_import.import_csv_stream(
                    session, name="bench", chunks=read_chunks(upload), max_bytes=limit,
                    max_cell_chars=10_000)
            else:
                created = csv_import.import_csv(
                    session, name="bench", data=upload.read(limit + 1), max_bytes=limit,
                    max_cell_chars=10_000)
        session.commit()
        table = created.id
        size = os.path.getsize(path)
    elif streaming:
        with open(path, "w", encoding="utf-8", newline="") as out:
            size = write_csv(session, table_id=table, out=out)
    else:
        text = tables.export_csv(session=session, table_id=table)
        with open(path, "w", encoding="utf-8", newline="") as out:
            size = out.write(text)
print(json.dumps({"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu,
                  "peak_rss_mib": rss(), "rss_before_mib": before, "table_id": table,
                  "bytes": size, "load_average": load, "streaming": streaming}))
"""


def make_file(rows: int) -> Path:
    """A CSV file of ``rows`` rows x 8 columns, about 96 bytes a row (the same every time)."""
    path = WORK / f"companies-{rows}.csv"
    if path.exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(rows)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        for i in range(rows):
            writer.writerow(
                [
                    f"Company {i:06d}",
                    rnd.choice(CITIES),
                    rnd.choice(["IT", "FR", "DE", "PT", "IE"]),
                    f"s{i}@co{i}.example",
                    f"co{i}.example",
                    f"+39 {rnd.randint(1_000_000, 9_999_999)}",
                    rnd.choice(["SaaS", "Retail", "Energy", "Logistics"]),
                    rnd.choice(NOTES),
                ]
            )
    return path


def baseline_root(ref: str) -> Path:
    """The app's code at ``ref``, unpacked once."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    root = WORK / f"code-{sha}"
    if not (root / "enrichment_app").is_dir():
        archive = subprocess.run(
            ["git", "archive", sha, "enrichment_app"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(root, filter="data")
    return root


def commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()


def child(code: Path, mode: str, url: str, path: Path, table: int = 0) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(code), "SEED_DEMO": "false"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, url, str(path), str(table)],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def databases(postgres: bool) -> Iterator[dict[str, Any]]:
    """Makers of fresh, empty databases by name: SQLite files, and PostgreSQL if wanted."""
    makers: dict[str, Any] = {}

    def sqlite(name: str) -> str:
        path = WORK / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"

    makers["SQLite"] = sqlite
    if not postgres:
        yield makers
        return
    try:
        postgres_bindir()
    except ServerUnavailable:
        yield makers
        return
    with postgres_cluster(durable=True) as admin_url:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")

        def postgresql(name: str) -> str:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
            return admin_url.rsplit("/", 1)[0] + f"/{name}"

        makers["PostgreSQL"] = postgresql
        try:
            yield makers
        finally:
            admin.dispose()


def measure(code: Path, make_db: Any, name: str, rows: int, runs: int) -> dict[str, Any]:
    """``runs`` imports of the ``rows``-row file into fresh databases, each exported after."""
    source = make_file(rows)
    imports, exports = [], []
    for n in range(runs):
        url = make_db(f"{name}_{rows}_{n}")
        imported = child(code, "import", url, source)
        imports.append(imported)
        exported = child(code, "export", url, WORK / f"out-{name}.csv", imported["table_id"])
        exports.append(exported)
        print(
            name,
            rows,
            "import",
            round(imported["seconds"], 2),
            "s, export",
            round(exported["seconds"], 2),
            "s",
            flush=True,
        )
    return {
        "rows": rows,
        "file_bytes": source.stat().st_size,
        "imports": imports,
        "exports": exports,
        "import": summary(imports),
        "export": summary(exports),
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(r["seconds"] for r in runs), 2),
        "median_cpu_s": round(statistics.median(r["cpu_seconds"] for r in runs), 2),
        "median_peak_rss_mib": round(statistics.median(r["peak_rss_mib"] for r in runs), 1),
        "median_added_rss_mib": round(
            statistics.median(r["peak_rss_mib"] - r["rss_before_mib"] for r in runs), 1
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    machine = describe()
    versions = {"ours": ROOT, "before": baseline_root(args.baseline_ref)}
    raw: dict[str, Any] = {"commit": commit(), "baseline_ref": args.baseline_ref, "runs": {}}
    sizes = [args.rows // 4, args.rows // 2, args.rows]
    with databases(not args.no_postgres) as makers:
        for database, make_db in makers.items():
            for version, code in versions.items():
                for rows in sizes:
                    key = f"{database} {version} {rows}"
                    runs = args.runs if rows == args.rows or version == "ours" else 1
                    raw["runs"][key] = measure(code, make_db, f"{version}_{database}", rows, runs)
    raw["load_average_at_end"] = os.getloadavg()
    write_result(
        "csv_io",
        label=args.label,
        machine=machine,
        rows=rows_of(raw, args.rows),
        raw=raw,
        code=code_state(),
    )


def rows_of(raw: dict[str, Any], full: int) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    runs = raw["runs"]
    megabytes = runs[f"SQLite ours {full}"]["file_bytes"] / 1e6
    for database in ("SQLite", "PostgreSQL"):
        if f"{database} ours {full}" not in runs:
            continue
        ours, before = runs[f"{database} ours {full}"], runs[f"{database} before {full}"]
        sqlite = database == "SQLite"
        for step, target in (("import", IMPORT_TARGET_S), ("export", EXPORT_TARGET_S)):
            value = ours[step]["median_s"]
            out.append(
                figure(
                    f"{full:,} rows x 8 columns ({megabytes:.1f} MB): {step}, {database}, ours"
                    f" (before: {before[step]['median_s']} s)",
                    value,
                    "s",
                    target=f"<= {target:g} s" + ("" if sqlite else " (SQLite's target)"),
                    met=value <= target if sqlite else None,
                )
            )
        for step in ("import", "export"):
            grown = [
                runs[f"{database} ours {rows}"][step]["median_added_rss_mib"]
                for rows in (full // 4, full // 2, full)
            ]
            then = [
                runs[f"{database} before {rows}"][step]["median_added_rss_mib"]
                for rows in (full // 4, full // 2, full)
            ]
            out.append(
                figure(
                    f"{step} memory (peak RSS over the process's start) for {full // 4:,} /"
                    f" {full // 2:,} / {full:,} rows, {database}, ours (before: "
                    + " / ".join(f"{m:g}" for m in then)
                    + " MiB)",
                    " / ".join(f"{m:g}" for m in grown),
                    "MiB",
                    target="flat as the file doubles" if sqlite else "",
                    met=(grown[-1] <= grown[0] * 1.5 + 5) if sqlite else None,
                )
            )
    return out


if __name__ == "__main__":
    main()
