"""The `linkage` command line: a thin layer over the stage functions.

Exit codes: 0 success, 1 refused or failed work, 2 bad usage or configuration. Every command takes
--quiet and --json. Secrets come from environment variables or a hidden prompt, never from options.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

import click

from linkage import __version__
from linkage.audit.command import audit
from linkage.commands_synth import evaluate_cmd, synth_cmd
from linkage.errors import ConfigError, LinkageError
from linkage.journeys.command import journeys_cmd
from linkage.link.command import model_cmd, recluster_cmd, run_cmd
from linkage.release.command import release_cmd
from linkage.runlog import logged
from linkage.ui import AnyPath, ExistingFile, output_options

PASSPHRASE_ENV = "LINKAGE_KEY_PASSPHRASE"
SIGNING_PASSPHRASE_ENV = "LINKAGE_SIGNING_PASSPHRASE"


def _passphrase(env: str, *, confirm: bool, what: str, fallback_env: str | None = None) -> str:
    """Passphrase from the environment, else a hidden prompt (never a command-line option)."""
    for name in (env, fallback_env):
        if name and os.environ.get(name):
            return os.environ[name]
    if not sys.stdin.isatty():
        raise ConfigError(f"no passphrase for the {what}: set {env} or run interactively")
    return click.prompt(f"Passphrase for the {what}", hide_input=True, confirmation_prompt=confirm)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="linkage")
def cli() -> None:
    """justice-linkage: privacy-preserving linkage of police, prosecution, court and prison records.

    \b
    Agency zone:   keys, pseudonymise
    Secure zone:   verify, run, journeys, evaluate
    Publication:   release
    Governance:    audit (config review, JSON Schemas, run-log check)
    Anyone:        synth (synthetic extracts with ground truth)
    """


cli.add_command(synth_cmd)
cli.add_command(evaluate_cmd)
cli.add_command(audit)
cli.add_command(run_cmd)
cli.add_command(model_cmd)
cli.add_command(recluster_cmd)
cli.add_command(journeys_cmd)
cli.add_command(release_cmd)


# --- keys ----------------------------------------------------------------------------------------


@cli.group()
def keys() -> None:
    """Create and inspect the project key and agency signing keys."""


@keys.command("new")
@click.option("--project", required=True, help="Project name recorded in the key file.")
@click.option("--out", "out_path", required=True, type=AnyPath, help="Key file to write (mode 0600).")
@click.option("--force", is_flag=True, help="Overwrite an existing key file (the old key is lost).")
@output_options
def keys_new(project: str, out_path: Path, force: bool, ui) -> None:
    """Make a new 256-bit project key, encrypted with a passphrase.

    The passphrase comes from LINKAGE_KEY_PASSPHRASE or a prompt. Prints the key fingerprint, which
    agencies and the analyst use to check they share one key; the key itself is never printed.
    """
    from linkage.keys import format_fingerprint, new_project_key

    passphrase = _passphrase(PASSPHRASE_ENV, confirm=True, what="new project key")
    key = new_project_key(project, out_path, passphrase, force=force)
    data = {"project": project, "file": str(out_path), "fingerprint": key.fingerprint}
    ui.result(
        data,
        lambda c: c.print(
            f"project key written to {out_path}\nfingerprint: [bold]{format_fingerprint(key.fingerprint)}[/]"
        ),
    )


@keys.command("show")
@click.argument("key_file", type=ExistingFile)
@output_options
def keys_show(key_file: Path, ui) -> None:
    """Show a project key file's project, creation time and fingerprint (needs the passphrase)."""
    from linkage.keys import format_fingerprint, load_project_key

    key = load_project_key(key_file, _passphrase(PASSPHRASE_ENV, confirm=False, what="project key"))
    data = {"project": key.project, "created_at": key.created_at.isoformat(), "fingerprint": key.fingerprint}
    ui.result(
        data,
        lambda c: c.print(
            f"project:     {key.project}\ncreated at:  {key.created_at:%Y-%m-%d %H:%M:%S %Z}"
            f"\nfingerprint: {format_fingerprint(key.fingerprint)}"
        ),
    )


@keys.command("signing-new")
@click.option("--agency", required=True, help="Agency name, as in its config (agency.name).")
@click.option(
    "--out", "out_dir", required=True, type=AnyPath, help="Directory for <agency>.signing.key/.pub."
)
@click.option("--force", is_flag=True, help="Overwrite an existing key pair.")
@output_options
def keys_signing_new(agency: str, out_dir: Path, force: bool, ui) -> None:
    """Make an Ed25519 key pair for signing an agency's manifests.

    The private key (<agency>.signing.key) is encrypted with a passphrase from
    LINKAGE_SIGNING_PASSPHRASE (or LINKAGE_KEY_PASSPHRASE, or a prompt) and stays in the agency. The
    public key (<agency>.signing.pub) goes to the secure environment's trusted keys.
    """
    from linkage.keys import new_signing_key

    passphrase = _passphrase(
        SIGNING_PASSPHRASE_ENV, confirm=True, what="signing key", fallback_env=PASSPHRASE_ENV
    )
    key_path, pub_path, key_id = new_signing_key(agency, out_dir, passphrase, force=force)
    data = {"agency": agency, "private_key": str(key_path), "public_key": str(pub_path), "key_id": key_id}
    ui.result(
        data,
        lambda c: c.print(
            f"signing key pair for {agency}: {key_path} (keep in the agency), "
            f"{pub_path} (give to the secure environment); key id {key_id}"
        ),
    )


# --- agency zone ---------------------------------------------------------------------------------


@cli.command()
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
@output_options
def pseudonymise(
    config_path, key_path, input_path, out_dir, rejects_dir, signing_key, workers, chunk_mib, ui
) -> None:
    """Turn a raw agency extract into a tokens-only Parquet file with a signed manifest.

    Identifiers are standardised and replaced by keyed HMAC tokens (token spec v1); only the
    attributes the config whitelists pass; every other column is dropped. Rows that cannot be
    processed go to the rejects file with file, line, column and reason, and read = written + rejected.
    """
    from linkage.config import load_config
    from linkage.config.agency import AgencyConfig
    from linkage.extract.manifest import signature_path
    from linkage.extract.pseudonymise import pseudonymise as run
    from linkage.keys import load_project_key, load_signing_key

    with logged("pseudonymise", configs=[config_path]) as entry:
        config = load_config(config_path, AgencyConfig)
        key = load_project_key(key_path, _passphrase(PASSPHRASE_ENV, confirm=False, what="project key"))
        entry.key_fingerprint = key.fingerprint
        signer = None
        if signing_key:
            passphrase = _passphrase(
                SIGNING_PASSPHRASE_ENV, confirm=False, what="signing key", fallback_env=PASSPHRASE_ENV
            )
            signer = load_signing_key(signing_key, passphrase)
        else:
            ui.warn("no --signing-key: the manifest will be unsigned and `linkage verify` will refuse it")
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
            )
        entry.add_input(input_path, result.manifest_data.source.sha256)
        for path in (result.parquet, result.manifest, signature_path(result.manifest), result.rejects):
            entry.add_output(path)
    seconds = time.perf_counter() - started
    m = result.manifest_data
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
        if m.dropped_columns:
            c.print(f"  dropped columns: {', '.join(m.dropped_columns)}")

    ui.result(data, render)


# --- secure zone ---------------------------------------------------------------------------------


@cli.command()
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
def verify(paths, trusted, expect_fingerprint, ui) -> None:
    """Check pseudonymised extracts: signatures, file hashes, row counts, one key, one token spec.

    PATHS are manifest files or directories holding them. Exits 1 with the reasons if anything fails.
    """
    from linkage.extract.verify import verify_extracts
    from linkage.keys import load_trusted_keys

    with logged("verify", inputs=list(paths)) as entry:
        report = verify_extracts(
            list(paths), load_trusted_keys(list(trusted)), expected_fingerprint=expect_fingerprint
        )
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
    data = {"ok": report.ok, "extracts": rows, "problems": report.problems}

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

    ui.result(data, render)


def main() -> None:
    """Entry point: run the CLI and map errors to exit codes without tracebacks."""
    json_mode = "--json" in sys.argv
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:  # usage errors: exit 2
        exc.show()
        sys.exit(exc.exit_code)
    except LinkageError as exc:
        if json_mode:
            sys.stdout.write(json.dumps({"error": str(exc), "exit_code": exc.exit_code}) + "\n")
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        # An unexpected error's message may quote a data value (many library errors do), so only
        # its type and location are shown; LINKAGE_DEBUG=1 shows the traceback in a safe setting.
        if os.environ.get("LINKAGE_DEBUG") == "1":
            raise
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{Path(tb.filename).name}:{tb.lineno}"
        click.echo(
            f"internal error: {type(exc).__name__} at {where} (message withheld: it may contain "
            "data; rerun with LINKAGE_DEBUG=1 inside the agency zone for details)",
            err=True,
        )
        sys.exit(1)
    sys.exit(0)
