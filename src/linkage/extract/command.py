"""`linkage pseudonymise` (agency zone) and `linkage verify` (secure zone): thin click commands over
``extract.pseudonymise.pseudonymise`` and ``extract.verify.verify_extracts``."""

from __future__ import annotations

import logging
import re
import time
from datetime import date
from pathlib import Path

import click

from linkage.errors import LinkageError
from linkage.runlog import logged
from linkage.ui import (
    PASSPHRASE_ENV,
    SIGNING_PASSPHRASE_ENV,
    AnyPath,
    ExistingFile,
    output_options,
    read_passphrase,
)

log = logging.getLogger(__name__)


@click.command("pseudonymise")
@click.option("--config", "config_path", required=True, type=ExistingFile, help="Agency config (YAML).")
@click.option("--key", "key_path", required=True, type=ExistingFile, help="Encrypted project key file.")
@click.option("--input", "input_path", required=True, type=ExistingFile, help="Raw extract (CSV or Parquet).")
@click.option(
    "--out", "out_dir", required=True, type=AnyPath, help="Directory for <agency>.parquet + manifest."
)
@click.option(
    "--rejects",
    "rejects_dir",
    type=AnyPath,
    help="Directory for the rejects file [default: beside the input]. Never inside --out.",
)
@click.option("--signing-key", type=ExistingFile, help="Agency's encrypted Ed25519 key; signs the manifest.")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes [default: number of cores].")
@click.option(
    "--chunk-mib",
    type=click.IntRange(1, 256),
    default=2,
    show_default=True,
    help="Input read per unit of work; memory grows with it times the workers.",
)
@click.option(
    "--max-reject-rate",
    type=click.FloatRange(0, 1),
    default=0.01,
    show_default=True,
    help="Refuse (exit 1, no extract) above this share of rows rejected (from 100 rows up).",
)
@click.option(
    "--max-blank-rate",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Refuse (exit 1, no extract) above this share of a field's present values blanked.",
)
@click.option(
    "--period",
    metavar="YYYY-MM-DD/YYYY-MM-DD",
    help="Period the extract covers, for the manifest [default: agency.extraction_period in the config].",
)
@output_options
def pseudonymise_cmd(
    config_path,
    key_path,
    input_path,
    out_dir,
    rejects_dir,
    signing_key,
    workers,
    chunk_mib,
    max_reject_rate,
    max_blank_rate,
    period,
    ui,
) -> None:
    """Turn a raw agency extract into a tokens-only Parquet file with a signed manifest.

    Identifiers are standardised and replaced by keyed HMAC tokens (token spec v2); only the
    attributes the config whitelists pass; every other column is dropped. A value that cannot be used
    is blanked, an id failing only its check is kept unverified; a row is rejected only when it cannot
    be parsed or keeps no usable identifier. Rejected rows and field problems go to the rejects file
    with file, line, column and reason, and read = written + rejected.
    """
    from linkage.config import load_config
    from linkage.config.agency import AgencyConfig
    from linkage.extract.manifest import signature_path
    from linkage.extract.pseudonymise import pseudonymise as run
    from linkage.keys import load_project_key, load_signing_key

    with logged("pseudonymise", configs=[config_path]) as entry:
        config = load_config(config_path, AgencyConfig)
        key = load_project_key(key_path, read_passphrase(PASSPHRASE_ENV, confirm=False, what="project key"))
        entry.key_fingerprint = key.fingerprint
        signer = None
        if signing_key:
            passphrase = read_passphrase(
                SIGNING_PASSPHRASE_ENV, confirm=False, what="signing key", fallback_env=PASSPHRASE_ENV
            )
            signer = load_signing_key(signing_key, passphrase)
        else:
            ui.warn("no --signing-key: the manifest will be unsigned and `linkage verify` will refuse it")
        from linkage.tokens.hmac64 import describe

        log.info(
            "pseudonymising %s for agency %s (%s bytes, %s workers; %s)",
            input_path,
            config.agency.name,
            input_path.stat().st_size,
            workers or "all cores",
            describe(),
        )
        started = time.perf_counter()
        with ui.progress(input_path.stat().st_size, f"pseudonymising {config.agency.name}") as advance:
            result = run(
                config,
                config_path,
                key,
                input_path,
                out_dir,
                rejects_dir=rejects_dir,
                signing_key=signer,
                workers=workers,
                chunk_bytes=chunk_mib << 20,
                progress=advance,
                max_reject_rate=max_reject_rate,
                max_blank_rate=max_blank_rate,
                period=_period(period),
            )
        entry.add_input(input_path, result.manifest_data.source.sha256)
        for path in (result.parquet, result.manifest, signature_path(result.manifest), result.rejects):
            entry.add_output(path)
    seconds = time.perf_counter() - started
    m = result.manifest_data
    log.info(
        "%s: read %d, written %d, rejected %d in %.1f s; rejects by reason %s",
        m.agency,
        m.counts.read,
        m.counts.written,
        m.counts.rejected,
        seconds,
        m.rejects_by_reason,
    )
    data = {
        "agency": m.agency,
        "parquet": str(result.parquet),
        "manifest": str(result.manifest),
        "rejects": str(result.rejects),
        "read": m.counts.read,
        "written": m.counts.written,
        "rejected": m.counts.rejected,
        "seconds": round(seconds, 3),
        "rows_per_second": round(m.counts.read / seconds) if seconds else None,
        "victim_mentions": m.counts.victim_mentions,
        "values_blanked": m.values_blanked,
        "values_unverified": m.values_unverified,
        "dropped_columns": m.dropped_columns,
        "key_fingerprint": m.key_fingerprint,
        "signed": m.signer is not None,
    }

    def render(c) -> None:
        c.print(
            f"[bold]{m.agency}[/]: read {m.counts.read:,}, written {m.counts.written:,}, "
            f"rejected {m.counts.rejected:,} in {seconds:.1f}s → {result.parquet}"
        )
        if m.counts.rejected:
            c.print(f"  rejected rows are in {result.rejects} (keep it inside the agency)")
            for reason, n in m.rejects_by_reason.items():
                c.print(f"    {n:>8,}  {reason}")
        for title, values in (("blanked", m.values_blanked), ("kept unverified", m.values_unverified)):
            total = sum(n for reasons in values.values() for n in reasons.values())
            c.print(f"  values {title}: {total:,}")
            for name, reasons in values.items():
                for reason, n in reasons.items():
                    c.print(f"    {n:>8,}  {name}: {reason}")
        if m.dropped_columns:
            c.print(f"  dropped columns: {', '.join(m.dropped_columns)}")

    ui.result(data, render)


def _period(value: str | None) -> str | None:
    """`--period YYYY-MM-DD/YYYY-MM-DD`, checked."""
    if value is None:
        return None
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})/(\d{4}-\d{2}-\d{2})", value)
    try:
        start, end = (date.fromisoformat(d) for d in m.groups()) if m else (None, None)
    except ValueError:
        start = end = None
    if start is None or end is None or end < start:
        raise click.BadParameter("expected YYYY-MM-DD/YYYY-MM-DD with start <= end", param_hint="--period")
    return value


@click.command("verify")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--trusted-keys",
    "trusted",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    envvar="LINKAGE_TRUSTED_KEYS",
    help="Agency public key file(s) or a directory of *.signing.pub [env LINKAGE_TRUSTED_KEYS].",
)
@click.option(
    "--expect-fingerprint", help="Project key fingerprint the extracts must carry (from the custodian)."
)
@output_options
def verify_cmd(paths, trusted, expect_fingerprint, ui) -> None:
    """Check pseudonymised extracts: signatures, file hashes, row counts, one key, one token spec.

    PATHS are manifest files or directories holding them. Exits 1 with the reasons if anything fails.
    """
    from linkage.extract.verify import verify_extracts
    from linkage.keys import load_trusted_keys
    from linkage.runlog import log_path

    with logged("verify", inputs=list(paths)) as entry:
        log.info("verifying %d path(s) against %d trusted key location(s)", len(paths), len(trusted))
        with ui.status("verifying extracts"):
            report = verify_extracts(
                list(paths),
                load_trusted_keys(list(trusted)),
                expected_fingerprint=expect_fingerprint,
                run_log=log_path(),
            )
        for e in report.extracts:
            log.info("%s: %s", e.manifest_path, "ok" if e.ok else "; ".join(e.problems))
        fingerprints = {e.manifest.key_fingerprint for e in report.extracts if e.manifest}
        entry.key_fingerprint = fingerprints.pop() if len(fingerprints) == 1 else None
        _show_verify(report, ui)
        if not report.ok:
            raise LinkageError("verification failed: " + "; ".join(report.reasons()))


def _show_verify(report, ui) -> None:
    from linkage.ui import table

    rows = []
    for e in report.extracts:
        m = e.manifest
        rows.append(
            {
                "manifest": str(e.manifest_path),
                "agency": m.agency if m else None,
                "rows": m.counts.written if m else None,
                "key_fingerprint": m.key_fingerprint if m else None,
                "token_spec_version": m.token_spec_version if m else None,
                "ok": e.ok,
                "problems": e.problems,
            }
        )
    data = {"ok": report.ok, "extracts": rows, "problems": report.problems, "warnings": report.warnings}

    def render(c) -> None:
        c.print(
            table(
                "Extracts",
                ["agency", "rows", "key fingerprint", "spec", "status"],
                [
                    [
                        r["agency"] or r["manifest"],
                        f"{r['rows']:,}" if r["rows"] is not None else "-",
                        (r["key_fingerprint"] or "-")[:16],
                        r["token_spec_version"] or "-",
                        "[green]ok[/]" if r["ok"] else "[red]" + "; ".join(r["problems"]) + "[/]",
                    ]
                    for r in rows
                ],
            )
        )
        for p in report.problems:
            c.print(f"[red]{p}[/]")
        for w in report.warnings:
            c.print(f"[yellow]warning: {w}[/]")

    ui.result(data, render)
