"""The SQL engine under Splink: everything backend-specific lives here.

Two engines, one surface (`Backend`), used by run.py in this order:

1. ``load_record_index`` and ``load_extract``: the record index and each extract's model columns as
   tables; ``load_extract`` returns the Splink table the `Linker` is built on, so training and
   scoring run on the configured engine.
2. ``localise(linker, predictions)``: after scoring, the linker and the scored pairs that every
   later step (clustering, metrics, model.json, quality report) works on. Those steps are written
   for DuckDB and run in ``con``, whichever engine scored.
3. leaving ``open_backend`` removes the working files (they hold tokens).

**duckdb** (the default) runs embedded with an on-disk database file and a spill folder, so a run
larger than RAM pages to disk instead of failing; threads and the memory limit come from the
config. ``localise`` returns its arguments unchanged.

**spark** (Splink's SparkAPI, the optional ``spark`` extra) does the work that grows with the
number of comparisons: term-frequency tables, u sampling, EM, blocking and scoring. The local
DuckDB connection still holds the record index and the extracts' model columns (read from the same
verified files), and ``localise`` brings back only the scored pairs above the report's floor, as
ids and weights, with a DuckDB linker loaded from the trained model. Clustering, metrics and the
report then run exactly as in a DuckDB run, so the run folder is the same whichever engine scored
it (docs/scaling.md).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow.parquet as pq
from splink import DuckDBAPI, Linker

from linkage.config.linkage import PARTY_COLUMNS, VICTIM_MENTION, WEAK_MARKERS, BackendEngine, BlockingRule
from linkage.config.linkage import Backend as BackendConfig
from linkage.config.linkage import Spark as SparkConfig
from linkage.errors import ConfigError
from linkage.link.model import NODE_ID, cap_column
from linkage.link.splink_adapter import SplinkDataFrame
from linkage.runfolder import work_area
from linkage.tokens.spec import MENTION_OF, RECORD_KEY, ROLE, SEX, SOURCE_DATASET, SOURCE_ROW, VICTIM_INDEX
from linkage.util import PRIVATE_FILE

if TYPE_CHECKING:  # pyspark is an optional extra
    from pyspark.sql import SparkSession

SPARK_HINT = (
    "install the extra: pip install -e '.[spark]' (or pip install 'pyspark>=4.3.0'); Java 17+ is needed"
)
# The columns of the scored pairs that later steps read (no tokens: ids and weights only).
ONE_TABLE = "input_all"  # every agency's records in one table, for scoring (model.one_table)
PREDICTION_COLUMNS = (
    f"{SOURCE_DATASET}_l",
    f"{RECORD_KEY}_l",
    f"{SOURCE_DATASET}_r",
    f"{RECORD_KEY}_r",
    "match_weight",
    "match_probability",
    "match_key",  # the blocking rule (its index) that found the pair first: links per rule in metrics
)


@dataclass
class Backend:
    """A connected engine: Splink's database API plus a SQL connection for our own steps.

    ``db_api``/``con`` are always the local DuckDB (record index, clustering, metrics, report);
    ``spark`` is set when Splink trains and scores on Spark.
    """

    db_api: DuckDBAPI
    con: duckdb.DuckDBPyConnection
    engine: str = BackendEngine.duckdb.value
    spark: SparkSession | None = None
    spark_api: Any = None  # splink.backends.spark.SparkAPI
    work_dir: Path | None = None
    _spark_inputs: dict[str, str] = field(default_factory=dict)  # agency -> view
    _spark_started: bool = False  # we started the session (not spark-submit/Databricks), so we stop it

    def sql(self, query: str) -> list[tuple]:
        """Run a query and fetch its rows (our own steps: loading, clustering, metrics)."""
        return self.con.execute(query).fetchall()

    def columns(self, table: str) -> set[str]:
        """The column names of a table in the local database."""
        return {r[0] for r in self.sql(f"DESCRIBE {table}")}

    def training_sql(self, query: str) -> list[tuple]:
        """Run a query on the engine Splink trains and scores on (Spark when set): the input tables
        and Splink's own tables live there until the scored pairs are brought home (``localise``)."""
        if self.spark is not None:
            return [tuple(r) for r in self.spark.sql(query).collect()]
        return self.sql(query)

    def count_per_rule(self, blocked_pairs: str) -> dict[int, int]:
        """Pairs each blocking rule adds (by rule index), from Splink's table of blocked pairs, on the
        engine that holds it. Splink tags each pair with the first rule that found it (match_key)."""
        query = f"SELECT CAST(match_key AS INTEGER), count(*) FROM {blocked_pairs} GROUP BY 1"
        rows = self.training_sql(query)
        return {int(key): int(n) for key, n in rows}

    @staticmethod
    def input_table(agency: str) -> str:
        """The database table holding an agency's model columns."""
        return f"input_{agency}"

    def load_common_values(self, extracts: dict[str, Path], rules: list[BlockingRule]) -> None:
        """For each capped blocking rule, the table ``common_<rule>`` of its over-common values.

        A value (the rule's columns together) is over-common when more than ``max_block_size``
        records of all the extracts hold it. Counted here in SQL straight from the verified Parquet
        files (Splink has no cap of its own), so every source counts whichever engine scores.
        """
        schemas = {p: set(pq.read_schema(p).names) for p in extracts.values()}  # read once, not per rule
        for rule in rules:
            keys = _cap_keys(rule)
            cols = ", ".join(keys)
            held = [p for p, names in schemas.items() if set(keys) <= names]
            union = " UNION ALL ".join(f"SELECT {cols} FROM read_parquet('{_quote(p)}')" for p in held)
            empty = ", ".join(f"NULL::{column_type(k)} AS {k}" for k in keys)
            self.con.execute(f"""
                CREATE OR REPLACE TABLE common_{rule.name} AS
                SELECT {cols} FROM ({union or f"SELECT {empty} WHERE false"})
                WHERE {" AND ".join(f"{k} IS NOT NULL" for k in keys)}
                GROUP BY ALL
                HAVING count(*) > {rule.max_block_size}  -- more records than the cap: no pair from this rule
            """)

    def load_extract(
        self, agency: str, parquet: Path, columns: list[str], caps: list[BlockingRule] | None = None
    ) -> SplinkDataFrame:
        """Copy the model's columns of one extract into the database and register it with Splink.

        Only the columns the model reads are copied (attributes never enter the linkage), in
        record-key order so the physical order, and hence every sampled step, is reproducible.
        Each capped rule in ``caps`` adds its flag column (model.cap_column): true unless the
        record's value is in ``common_<rule>`` (load_common_values first). On Spark the same
        columns (the DuckDB table itself when it carries flags) also become a Spark view of the same
        name, which is what the returned table (and so the linker) reads.
        """
        table = self.input_table(agency)
        held = set(pq.read_schema(parquet).names)
        flags, joins = _cap_sql(caps or [], held)
        # the other party on the crime (victim mentions only): joined within the extract
        party = any(c in PARTY_COLUMNS for c in columns) and {MENTION_OF, VICTIM_INDEX} <= held
        file = f"read_parquet('{_quote(Path(parquet))}')"
        if party:
            joins += f" LEFT JOIN ({party_sql(file, held)}) AS p ON p.{RECORD_KEY} = t.{RECORD_KEY}"

        def select(null: str) -> str:
            # a column this extract lacks (a generic id another agency declared, the other party on an
            # extract without victims) is NULL: missing evidence
            def column(c: str) -> str:
                if c in PARTY_COLUMNS:
                    return f"p.{c}" if party else null.format(t=column_type(c), c=c)
                if c == ROLE:  # an extract without victim mentions holds subjects only
                    return (
                        f"coalesce(t.{ROLE}, 'subject') AS {ROLE}" if ROLE in held else f"'subject' AS {ROLE}"
                    )
                if c == VICTIM_MENTION:
                    if ROLE not in held:
                        return null.format(t=column_type(c), c=c)
                    return f"CASE WHEN t.{ROLE} = 'victim' THEN true END AS {VICTIM_MENTION}"
                return f"t.{c}" if c in held else null.format(t=column_type(c), c=c)

            cols = (column(c) for c in columns)
            # the agency as a column of its own: Splink takes it from the table rather than adding it
            # itself, which it does only when there are two tables or more (one extract: a dedupe)
            return (
                f"SELECT '{agency}' AS {SOURCE_DATASET}, t.{RECORD_KEY}, {', '.join([*cols, *flags])} "
                f"FROM {{source}} AS t {joins}"
            )

        self.con.execute(
            f"CREATE OR REPLACE TABLE {table} AS {select('NULL::{t} AS {c}').format(source=file)} "
            f"ORDER BY t.{RECORD_KEY}"
        )
        if self.spark is None:
            return self.db_api.register(table, dataset_display_name=agency, table_name=agency)
        # (Splink samples by hashing ids, so row order does not matter to Spark's results)
        if caps or party:
            # the flags and the other party are computed once, above: Spark reads that table as a plain
            # file (in the work folder, deleted after the run) instead of re-joining in every query
            if self.work_dir is None:
                raise ConfigError("capped rules and the other party on Spark need the run's work folder")
            handover = self.work_dir / "exchange" / f"{table}.parquet"
            handover.parent.mkdir(parents=True, exist_ok=True)
            self.con.execute(f"COPY {table} TO '{_quote(handover)}' (FORMAT parquet)")
            frame = self.spark.read.parquet(handover.resolve().as_uri())
        else:
            self.spark.read.parquet(Path(parquet).resolve().as_uri()).createOrReplaceTempView(f"{table}_file")
            frame = self.spark.sql(select("CAST(NULL AS {t}) AS {c}").format(source=f"{table}_file"))
        frame.createOrReplaceTempView(table)
        self._spark_inputs[agency] = table
        return self.spark_api.register(table, dataset_display_name=agency, table_name=agency)

    def one_table(self, agencies: list[str], record_index: str) -> SplinkDataFrame | None:
        """Every agency's loaded records in one table keyed by ``node_id`` (model.one_table), or None
        on Spark, which scores over the agencies' tables."""
        if self.spark is not None:
            return None
        union = " UNION ALL ".join(
            f"SELECT i.{NODE_ID}, t.* FROM {self.input_table(agency)} AS t "
            f"JOIN {record_index} AS i ON i.{SOURCE_DATASET} = '{agency}' AND i.{RECORD_KEY} = t.{RECORD_KEY}"
            for agency in agencies
        )
        # unsorted: the pairs found do not depend on row order (sorting cost 2.4 s at 10 M records)
        self.con.execute(f"CREATE OR REPLACE TABLE {ONE_TABLE} AS {union}")
        return self.db_api.register(ONE_TABLE, table_name=ONE_TABLE)

    def load_record_index(self, extracts: dict[str, Path]) -> str:
        """A table of every input record: (source_dataset, record_key, source_row, role, victim_index,
        node_id).

        ``node_id`` numbers the records in (agency order, source_row, victim_index) order: a stable
        integer id for clustering, independent of how the engine schedules its threads (a victim
        mention shares its subject's source_row). Extracts without victim mentions give role
        'subject' and a NULL victim_index.
        """

        def select(i: int, agency: str, path: Path) -> str:
            held = set(pq.read_schema(path).names)
            role = ROLE if ROLE in held else "'subject'"
            index = VICTIM_INDEX if VICTIM_INDEX in held else "NULL::TINYINT"
            return (
                f"SELECT {i} AS dataset_order, '{agency}' AS {SOURCE_DATASET}, {RECORD_KEY}, {SOURCE_ROW}, "
                f"{role} AS {ROLE}, {index} AS {VICTIM_INDEX} FROM read_parquet('{_quote(path)}')"
            )

        selects = " UNION ALL ".join(
            select(i, agency, path) for i, (agency, path) in enumerate(extracts.items())
        )
        self.con.execute(f"""
            CREATE OR REPLACE TABLE record_index AS
            SELECT {SOURCE_DATASET}, {RECORD_KEY}, {SOURCE_ROW}, {ROLE}, {VICTIM_INDEX},
                   row_number() OVER (ORDER BY dataset_order, {SOURCE_ROW}, {VICTIM_INDEX} NULLS FIRST)
                       AS node_id
            FROM ({selects})
        """)
        return "record_index"

    def localise(self, linker: Linker, predictions: SplinkDataFrame) -> tuple[Linker, SplinkDataFrame]:
        """The linker and scored pairs for the steps after scoring, as DuckDB objects.

        DuckDB: unchanged. Spark: the pairs (ids and weights only) are copied into ``con`` and a
        DuckDB linker is loaded from the trained model over the local copies of the extracts, so
        clustering, metrics, model.json and the report are computed as in a DuckDB run.
        """
        if self.spark is None:
            return linker, predictions
        model = portable_model(linker.misc.save_model_to_json())
        name = "predictions"
        pairs = self.spark.table(predictions.physical_name).select(*PREDICTION_COLUMNS)
        if self.work_dir is not None and self._local_files():  # (_local_files checks work_dir too)
            # stream through Parquet in the work folder: the pairs never sit in the driver's memory
            exchange = self.work_dir / "exchange" / name
            pairs.write.mode("overwrite").parquet(exchange.as_uri())
            files = f"{_quote(exchange)}/*.parquet"
            self.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_parquet('{files}')")
            shutil.rmtree(exchange, ignore_errors=True)
        else:  # a cluster: executors' files are not ours to read; collect through the driver
            arrow = pairs.toArrow()
            self.con.register("predictions_arrow", arrow)
            self.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM predictions_arrow")
            self.con.unregister("predictions_arrow")
        tables = [
            self.db_api.register(table, dataset_display_name=agency, table_name=agency)
            for agency, table in self._spark_inputs.items()
        ]
        local = Linker(tables, model, log_level=None)
        return local, self.db_api.register(name, table_name="__splink__df_predict")

    def _local_files(self) -> bool:
        master = self.spark.sparkContext.master if self.spark is not None else None
        return self.work_dir is not None and (master or "").startswith("local")


def portable_model(model: dict[str, Any]) -> dict[str, Any]:
    """A trained model that any engine reloads: the comparisons and rules are plain SQL equalities
    (the same text in every dialect), so only the dialect label differs; it is set to DuckDB's, the
    engine later stages (journeys, the quality report) reload it with."""

    def relabel(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: ("duckdb" if k == "sql_dialect" and v is not None else relabel(v))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [relabel(v) for v in value]
        return value

    return json.loads(json.dumps(relabel(model)))


def _cap_keys(rule: BlockingRule) -> list[str]:
    """The columns whose values together a capped rule counts (its terms are plain)."""
    return sorted({t.left for t in rule.equal})


def _cap_sql(caps: list[BlockingRule], held: set[str]) -> tuple[list[str], str]:
    """Flag expressions and LEFT JOINs (to ``common_<rule>``) over the extract aliased ``t``."""
    flags, joins = [], []
    for i, rule in enumerate(caps):
        keys, flag = _cap_keys(rule), cap_column(rule)
        if not set(keys) <= held:  # the extract lacks a column: its records never pair by this rule
            flags.append(f"false AS {flag}")
            continue
        on = " AND ".join(f"t.{k} = c{i}.{k}" for k in keys)
        joins.append(f"LEFT JOIN common_{rule.name} AS c{i} ON {on}")
        flags.append(f"c{i}.{keys[0]} IS NULL AS {flag}")
    return flags, " ".join(joins)


def party_sql(file: str, held: set[str]) -> str:
    """Each record's other party (config.linkage.PARTY_COLUMNS) within one extract.

    A victim mention's other party is the suspect on its crime's row (``mention_of``); a suspect's is
    the first victim named on the row. Who offended against whom is evidence in domestic abuse: most
    repeat victims are harmed again by the same person, and a counter-allegation names the same two
    people the other way round. Tokens only; the extract already holds them all.
    """
    party = ", ".join(
        f"o.{b} AS {p}" if b in held else f"NULL::BIGINT AS {p}" for p, b in PARTY_COLUMNS.items()
    )
    return f"""
        WITH extract AS (SELECT * FROM {file}),
        first_victim AS (  -- the victim named first on each row
            SELECT * FROM extract WHERE {MENTION_OF} IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY {MENTION_OF} ORDER BY {VICTIM_INDEX}) = 1
        )
        -- the two parts are disjoint (a mention, or a subject): one row per record even when a
        -- malformed mention names another mention as its row
        SELECT v.{RECORD_KEY}, {party}
        FROM extract AS v JOIN extract AS o ON o.{RECORD_KEY} = v.{MENTION_OF}
        UNION ALL
        SELECT o.{MENTION_OF}, {party}
        FROM first_victim AS o
        JOIN extract AS s ON s.{RECORD_KEY} = o.{MENTION_OF} AND s.{MENTION_OF} IS NULL"""


def column_type(column: str) -> str:
    """SQL type of a model column (for NULL columns an extract lacks): tokens are 64-bit integers."""
    if column in WEAK_MARKERS or column == VICTIM_MENTION:
        return "BOOLEAN"
    return "VARCHAR" if column in (SEX, ROLE) else "BIGINT"


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


@contextmanager
def open_backend(config: BackendConfig, work_dir: Path) -> Iterator[Backend]:
    """Connect the configured engine with its working files under ``work_dir``; remove them after.

    Spark is imported only here, so a machine without the ``spark`` extra runs DuckDB unchanged
    and is told how to install it (ConfigError, exit 2) if asked for Spark.
    """
    spark = BackendEngine(config.engine) is BackendEngine.spark
    if spark:
        _require_pyspark()
    with work_area(work_dir, keep=config.keep_database):  # owner-only, removed on failure too
        yield from _connected(config, work_dir, spark)


def _connected(config: BackendConfig, work_dir: Path, spark: bool) -> Iterator[Backend]:
    con = duckdb.connect(str(work_dir / "linkage.duckdb"))
    # DuckDB creates files with the umask's mode; its folder (0700) is what keeps them private, and
    # the database file itself is made owner-only as soon as it exists
    (work_dir / "linkage.duckdb").chmod(PRIVATE_FILE)
    checkpoints: str | None = None
    backend = None
    try:
        # Splink 5 still emits some `x -> ...` lambdas, which DuckDB 2 rejects by default.
        con.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")
        con.execute(f"SET threads = {config.threads}")
        con.execute(f"SET memory_limit = '{config.memory_limit}'")
        con.execute(f"SET temp_directory = '{_quote(work_dir / 'spill')}'")
        # Row order of intermediate tables does not matter to us (outputs are sorted): freeing
        # DuckDB from keeping it saves memory on large joins.
        con.execute("SET preserve_insertion_order = false")
        backend = Backend(DuckDBAPI(con), con, engine=BackendEngine(config.engine).value, work_dir=work_dir)
        if spark:
            checkpoints = _checkpoint_dir(config.spark, work_dir)
            backend.spark, backend._spark_started = spark_session(config.spark, checkpoints)
            backend.spark_api = _spark_api(backend.spark, config.spark)
        yield backend
    finally:
        con.close()
        if backend is not None and backend.spark is not None:
            _close_spark(backend, checkpoints, delete=not config.keep_database)


# --- Spark ---------------------------------------------------------------------------------------------


def _require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ConfigError(f"backend 'spark' needs pyspark, which is not installed: {SPARK_HINT}") from None


def _checkpoint_dir(config: SparkConfig, work_dir: Path) -> str:
    """A folder of this run's own (deleted afterwards): <checkpoint_dir>/<run folder name>."""
    if config.checkpoint_dir is None:
        return (work_dir / "spark-checkpoints").resolve().as_uri()
    base = config.checkpoint_dir.rstrip("/")
    if "://" not in base and not base.startswith("dbfs:"):
        base = Path(base).resolve().as_uri()
    return f"{base}/{work_dir.name}"


def spark_conf(config: SparkConfig) -> dict[str, str]:
    """The Spark settings a run asks for, in the order they apply (``conf`` last, so it wins)."""
    conf: dict[str, str] = {"spark.app.name": config.app_name}
    if config.master:
        conf["spark.master"] = config.master
    if config.driver_memory:
        conf["spark.driver.memory"] = config.driver_memory
    if config.executor_memory:
        conf["spark.executor.memory"] = config.executor_memory
    conf["spark.sql.shuffle.partitions"] = str(config.shuffle_partitions)
    conf["spark.default.parallelism"] = str(config.shuffle_partitions)
    # Small jobs: skip the UI and let adaptive execution coalesce tiny shuffles.
    conf["spark.ui.enabled"] = "false"
    conf["spark.ui.showConsoleProgress"] = "false"
    conf["spark.sql.adaptive.enabled"] = "true"
    # Tokens are 64-bit integers: Arrow moves them to and from Python without boxing.
    conf["spark.sql.execution.arrow.pyspark.enabled"] = "true"
    conf.update(config.conf)
    return conf


def spark_session(config: SparkConfig, checkpoints: str) -> tuple[SparkSession, bool]:
    """Start (or join, under spark-submit/Databricks) the Spark session with the run's settings;
    also says whether this call started it."""
    from pyspark.sql import SparkSession

    started = SparkSession.getActiveSession() is None
    builder = SparkSession.builder
    for key, value in spark_conf(config).items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # py4j/pyspark raise plain exceptions when Java is missing or broken
        raise ConfigError(
            f"could not start Spark ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); "
            f"check `java -version` (17 or later) and JAVA_HOME; {SPARK_HINT}"
        ) from None
    spark.sparkContext.setCheckpointDir(checkpoints)
    spark.sparkContext.setLogLevel("ERROR")
    return spark, started


def _spark_api(spark: SparkSession, config: SparkConfig) -> Any:
    from splink import SparkAPI

    # Our comparisons are equalities on tokens: Splink's Scala UDF jar (string similarity) is not
    # needed, and not loading it keeps the run free of extra jars on the cluster.
    # Splink cuts Spark's lineage at each intermediate table: in memory on one machine, through
    # Parquet in the checkpoint folder on a cluster (survives a lost executor).
    local = (spark.sparkContext.master or "").startswith("local")
    return SparkAPI(
        spark_session=spark,
        break_lineage_method=config.break_lineage or ("persist" if local else "parquet"),
        num_partitions_on_repartition=config.shuffle_partitions,
        register_udfs_automatically=False,
    )


def _close_spark(backend: Backend, checkpoints: str | None, *, delete: bool) -> None:
    """Drop our views, delete the checkpoint folder (it holds tokens), stop a session we started."""
    spark = backend.spark
    if spark is None:
        raise RuntimeError("closing Spark on a backend that has no Spark session")
    try:
        for view in backend._spark_inputs.values():
            spark.catalog.dropTempView(view)
        spark.catalog.clearCache()
        if delete and checkpoints:
            jvm = spark.sparkContext._jvm
            if jvm is None:  # pyspark types it optional; a live session always has its gateway
                raise RuntimeError("the Spark session has no JVM gateway")
            path = jvm.org.apache.hadoop.fs.Path(checkpoints)
            path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(path, True)
    finally:
        if backend._spark_started:
            spark.stop()
