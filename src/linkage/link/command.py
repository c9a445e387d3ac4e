"""`linkage run`: the click command over `run_linkage` (registered on the main group by cli.py)."""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from pydantic import ValidationError
from rich.console import Console

from linkage.config import load_config
from linkage.config.linkage import Backend, LinkageConfig
from linkage.errors import ConfigError
from linkage.ui import ExistingFile, Output, output_options, table

if TYPE_CHECKING:  # the engine (splink, duckdb) is imported only when the command runs
    from linkage.link.run import RunResult

Dir = click.Path(file_okay=False, path_type=Path)


SPARK_HINT = "pip install -e '.[spark]' (or: pip install 'pyspark>=4.3.0'); Spark also needs Java 17+"


def pyspark_installed() -> bool:
    return importlib.util.find_spec("pyspark") is not None


def _spark_conf(pairs: tuple[str, ...]) -> dict[str, str]:
    """`--spark-conf key=value` options as a dict (later ones win)."""
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not key.strip().startswith("spark."):
            raise ConfigError(f"--spark-conf {pair!r}: expected spark.some.key=value")
        conf[key.strip()] = value.strip()
    return conf


def _with_backend(config: LinkageConfig, spark_conf: tuple[str, ...] = (), **overrides) -> LinkageConfig:
    """The config with command-line backend settings applied (validated like the file).

    ``--spark-conf`` entries are added to ``backend.spark.conf`` and win over the file's settings
    (``spark.master=yarn`` replaces ``backend.spark.master``).
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    if spark_conf:
        spark = config.backend.spark.model_dump()
        given["spark"] = {**spark, "conf": {**spark["conf"], **_spark_conf(spark_conf)}}
    backend = config.backend
    if given:
        try:
            backend = Backend.model_validate({**config.backend.model_dump(), **given})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"invalid backend option: {problems}") from None
    # refuse before verifying anything: the install hint is the whole answer
    if backend.engine == "spark" and not pyspark_installed():
        raise ConfigError(f"backend 'spark' needs pyspark, which is not installed: {SPARK_HINT}")
    return config.model_copy(update={"backend": backend}) if given else config


def _render(result: RunResult) -> Callable[[Console], None]:
    m = result.metrics

    def render(c: Console) -> None:
        c.print(table("Records", ["agency", "records"], [[a, f"{n:,}"] for a, n in m.records.items()]))
        c.print(
            f"compared {m.comparisons_total:,} pairs; linked {m.pairs_linked:,} at match probability "
            f">= {m.threshold_match_probability}; {m.clusters.clusters:,} people "
            f"({m.clusters.linked_across_agencies:,} across agencies, largest "
            f"{m.clusters.largest[0].size if m.clusters.largest else 0} records)"
        )
        c.print(
            f"{m.timings_seconds['total']:.1f} s, peak memory {m.peak_rss_bytes / 2**30:.2f} GiB; "
            f"outputs in {result.out_dir} (open quality.html in a browser)"
        )

    return render


@click.command("run")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=ExistingFile,
    help="Linkage config (YAML), e.g. configs/linkage.yaml.",
)
@click.option("--extracts", "extracts_dir", type=Dir, help="Folder of extracts (default: the config's).")
@click.option(
    "--trusted-keys",
    "trusted_keys_dir",
    type=Dir,
    envvar="LINKAGE_TRUSTED_KEYS",
    help="Folder of the agencies' *.signing.pub (default: the config's) [env LINKAGE_TRUSTED_KEYS].",
)
@click.option("--out", "out_dir", required=True, type=Dir, help="Run folder to create, e.g. runs/2024-06.")
@click.option("--backend", type=click.Choice(["duckdb", "spark"]), help="SQL engine (default: the config's).")
@click.option("--threads", type=click.IntRange(min=1), help="Threads (default: the config's).")
@click.option("--memory-limit", help="Engine memory limit, e.g. 6GB (default: the config's).")
@click.option(
    "--spark-conf",
    "spark_conf",
    multiple=True,
    metavar="KEY=VALUE",
    help="Spark setting for --backend spark (repeatable), e.g. spark.master=yarn, "
    "spark.executor.memory=8g; wins over the config's backend.spark.",
)
@click.option(
    "--model",
    "model_path",
    type=ExistingFile,
    help="A trained model.json (of an earlier run): score with it instead of training.",
)
@click.option("--overwrite", is_flag=True, help="Replace the outputs of an existing run folder.")
@output_options
def run_cmd(
    config_path: Path,
    extracts_dir: Path | None,
    trusted_keys_dir: Path | None,
    out_dir: Path,
    backend: str | None,
    threads: int | None,
    memory_limit: str | None,
    spark_conf: tuple[str, ...],
    model_path: Path | None,
    overwrite: bool,
    ui: Output,
) -> None:
    """Link the verified pseudonymised extracts: train a Splink model, score pairs, cluster people.

    Verifies every extract first (signatures, hashes, one key fingerprint, one token spec) and
    refuses with the reasons otherwise. Writes clusters.parquet, model.json, metrics.json,
    quality.html and inputs/ (copies of the config and manifests) to --out.
    """
    from linkage.link.run import run_linkage
    from linkage.runlog import logged

    # Splink's own warnings (e.g. a level never seen in training) are useful at a terminal only.
    logging.getLogger("splink").setLevel(logging.WARNING if ui.chatty else logging.ERROR)
    started = time.perf_counter()

    def step(message: str) -> None:
        ui.info(f"[dim]{time.perf_counter() - started:7.1f}s[/] {message}")

    with logged("run", configs=[config_path]) as entry:
        if model_path is not None:
            entry.add_input(model_path)
        config = load_config(config_path, LinkageConfig)
        config = _with_backend(config, spark_conf, engine=backend, threads=threads, memory_limit=memory_limit)
        result = run_linkage(
            config,
            config_path,
            out_dir,
            extracts_dir=extracts_dir,
            trusted_keys_dir=trusted_keys_dir,
            model_path=model_path,
            overwrite=overwrite,
            step=step,
            log=entry,  # the run's outputs and completion marker are logged in this entry
        )
        entry.key_fingerprint = result.key_fingerprint
        for path in result.inputs:
            entry.add_input(path)
    data = {"run_dir": str(result.out_dir), **result.metrics.model_dump(mode="json")}
    ui.result(data, _render(result))


@click.command("model")
@click.option("--extracts", "extracts_dir", required=True, type=Dir, help="Folder of pseudonymised extracts.")
@click.option(
    "--config",
    "config_path",
    type=ExistingFile,
    help="Linkage config whose sections override the derived model (default: none, all derived).",
)
@click.option(
    "--trusted-keys",
    "trusted_keys_dir",
    type=Dir,
    envvar="LINKAGE_TRUSTED_KEYS",
    help="Verify the extracts first against these public keys [env LINKAGE_TRUSTED_KEYS].",
)
@output_options
def model_cmd(
    extracts_dir: Path, config_path: Path | None, trusted_keys_dir: Path | None, ui: Output
) -> None:
    """Print the model derived from the extracts as a commented linkage config (YAML).

    Comparisons, blocking rules (chosen under the comparison budget), training and conflict rules
    come from the token families the extracts hold; keep the output as a config to fix the model.
    """
    import tempfile

    from linkage.link.run import describe_model

    logging.getLogger("splink").setLevel(logging.ERROR)
    config = load_config(config_path, LinkageConfig) if config_path else LinkageConfig()
    with tempfile.TemporaryDirectory(prefix="linkage-model-") as work:
        text = describe_model(config, config_path or Path("."), extracts_dir, trusted_keys_dir, Path(work))
    ui.result({"model_yaml": text}, lambda c: c.print(text, markup=False, highlight=False, soft_wrap=True))


@click.command("recluster")
@click.option("--run", "run_dir", required=True, type=Dir, help="A run folder (with pairs.parquet).")
@click.option("--out", "out_dir", required=True, type=Dir, help="New run folder to create.")
@click.option("--threshold", type=float, help="Match probability, e.g. 0.95 (strictly between 0 and 1).")
@click.option(
    "--match-weight", "match_weight", type=float, help="Or the threshold as a match weight, e.g. 8."
)
@click.option("--overwrite", is_flag=True, help="Replace the outputs of an existing run folder.")
@output_options
def recluster_cmd(
    run_dir: Path,
    out_dir: Path,
    threshold: float | None,
    match_weight: float | None,
    overwrite: bool,
    ui: Output,
) -> None:
    """Cluster a run's scored pairs again at another threshold, without retraining (seconds).

    Any threshold at or above the run's pair floor (report.pair_floor_match_weight) is accepted.
    Writes a complete run folder to --out, as `linkage run --model RUN/model.json` would.
    """
    from linkage.link.recluster import recluster
    from linkage.runlog import logged

    started = time.perf_counter()

    def step(message: str) -> None:
        ui.info(f"[dim]{time.perf_counter() - started:7.1f}s[/] {message}")

    with logged("recluster", configs=[]) as entry:
        result = recluster(
            run_dir,
            out_dir,
            threshold=threshold,
            threshold_weight=match_weight,
            overwrite=overwrite,
            step=step,
            log=entry,  # the run's outputs and completion marker are logged in this entry
        )
        entry.key_fingerprint = result.key_fingerprint
        for path in result.inputs:
            entry.add_input(path)
    data = {"run_dir": str(result.out_dir), **result.metrics.model_dump(mode="json")}
    ui.result(data, _render(result))
