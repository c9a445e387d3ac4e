"""`linkage run`: the click command over `run_linkage` (registered on the main group by cli.py)."""

from __future__ import annotations

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
from linkage.ui import Output, output_options, table

if TYPE_CHECKING:  # the engine (splink, duckdb) is imported only when the command runs
    from linkage.link.run import RunResult

Dir = click.Path(file_okay=False, path_type=Path)


def _with_backend(config: LinkageConfig, **overrides) -> LinkageConfig:
    """The config with command-line backend settings applied (validated like the file)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return config
    try:
        backend = Backend.model_validate({**config.backend.model_dump(), **given})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid backend option: {problems}") from None
    return config.model_copy(update={"backend": backend})


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
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
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
        config = load_config(config_path, LinkageConfig)
        config = _with_backend(config, engine=backend, threads=threads, memory_limit=memory_limit)
        result = run_linkage(
            config,
            config_path,
            out_dir,
            extracts_dir=extracts_dir,
            trusted_keys_dir=trusted_keys_dir,
            overwrite=overwrite,
            step=step,
        )
        entry.key_fingerprint = result.key_fingerprint
        for path in result.inputs:
            entry.add_input(path)
        for path in result.outputs:
            entry.add_output(path)
    data = {"run_dir": str(result.out_dir), **result.metrics.model_dump(mode="json")}
    ui.result(data, _render(result))
