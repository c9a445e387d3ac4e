"""The SQL engine under Splink: everything backend-specific lives here.

DuckDB (the default) runs embedded with an on-disk database file and a spill folder, so a run
larger than RAM pages to disk instead of failing; threads and the memory limit come from the
config. A Spark variant (Splink's SparkAPI) would implement the same `Backend` surface: load the
extracts into tables, hand Splink a database API, and run plain SQL for our own steps.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
from splink import DuckDBAPI
from splink.internals.splink_dataframe import SplinkDataFrame

from linkage.config.linkage import Backend as BackendConfig
from linkage.tokens.spec import RECORD_KEY, SOURCE_DATASET, SOURCE_ROW


@dataclass
class Backend:
    """A connected engine: Splink's database API plus a SQL connection for our own steps."""

    db_api: DuckDBAPI
    con: duckdb.DuckDBPyConnection

    def sql(self, query: str) -> list[tuple]:
        """Run a query and fetch its rows (our own steps: loading, clustering, metrics)."""
        return self.con.execute(query).fetchall()

    @staticmethod
    def input_table(agency: str) -> str:
        """The database table holding an agency's model columns."""
        return f"input_{agency}"

    def load_extract(self, agency: str, parquet: Path, columns: list[str]) -> SplinkDataFrame:
        """Copy the model's columns of one extract into the database and register it with Splink.

        Only the columns the model reads are copied (attributes never enter the linkage), in
        record-key order so the physical order, and hence every sampled step, is reproducible.
        """
        table = self.input_table(agency)
        cols = ", ".join([RECORD_KEY, *columns])
        self.con.execute(
            f"CREATE OR REPLACE TABLE {table} AS SELECT {cols} FROM read_parquet(?) ORDER BY {RECORD_KEY}",
            [str(parquet)],
        )
        return self.db_api.register(table, dataset_display_name=agency, table_name=agency)

    def load_record_index(self, extracts: dict[str, Path]) -> str:
        """A table of every input record: (source_dataset, record_key, source_row, node_id).

        ``node_id`` numbers the records in (agency order, source_row) order: a stable integer id
        for clustering, independent of how the engine schedules its threads.
        """
        selects = " UNION ALL ".join(
            f"SELECT {i} AS dataset_order, '{agency}' AS {SOURCE_DATASET}, {RECORD_KEY}, {SOURCE_ROW} "
            f"FROM read_parquet('{_quote(path)}')"
            for i, (agency, path) in enumerate(extracts.items())
        )
        self.con.execute(f"""
            CREATE OR REPLACE TABLE record_index AS
            SELECT {SOURCE_DATASET}, {RECORD_KEY}, {SOURCE_ROW},
                   row_number() OVER (ORDER BY dataset_order, {SOURCE_ROW}) AS node_id
            FROM ({selects})
        """)
        return "record_index"


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


@contextmanager
def open_backend(config: BackendConfig, work_dir: Path) -> Iterator[Backend]:
    """Connect the configured engine with its working files under ``work_dir``; remove them after.

    Only DuckDB exists so far (the config model refuses any other engine); a Spark variant would
    branch here on ``config.engine``.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(work_dir / "linkage.duckdb"))
    try:
        # Splink 5 still emits some `x -> ...` lambdas, which DuckDB 2 rejects by default.
        con.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")
        con.execute(f"SET threads = {config.threads}")
        con.execute(f"SET memory_limit = '{config.memory_limit}'")
        con.execute(f"SET temp_directory = '{_quote(work_dir / 'spill')}'")
        # Row order of intermediate tables does not matter to us (outputs are sorted): freeing
        # DuckDB from keeping it saves memory on large joins.
        con.execute("SET preserve_insertion_order = false")
        yield Backend(DuckDBAPI(con), con)
    finally:
        con.close()
        if not config.keep_database:
            shutil.rmtree(work_dir, ignore_errors=True)
