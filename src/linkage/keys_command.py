"""`linkage keys`: create and inspect the project key and agency signing keys (agency zone)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from linkage.ui import (
    PASSPHRASE_ENV,
    SIGNING_PASSPHRASE_ENV,
    AnyPath,
    ExistingFile,
    output_options,
    read_passphrase,
)

log = logging.getLogger(__name__)


@click.group()
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

    passphrase = read_passphrase(PASSPHRASE_ENV, confirm=True, what="new project key")
    with ui.status("encrypting the key (scrypt: slow on purpose)"):
        key = new_project_key(project, out_path, passphrase, force=force)
    log.info("project key for %s written to %s (fingerprint %s)", project, out_path, key.fingerprint)
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

    passphrase = read_passphrase(PASSPHRASE_ENV, confirm=False, what="project key")
    with ui.status("decrypting the key (scrypt: slow on purpose)"):
        key = load_project_key(key_file, passphrase)
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

    passphrase = read_passphrase(
        SIGNING_PASSPHRASE_ENV, confirm=True, what="signing key", fallback_env=PASSPHRASE_ENV
    )
    with ui.status("encrypting the key (scrypt: slow on purpose)"):
        key_path, pub_path, key_id = new_signing_key(agency, out_dir, passphrase, force=force)
    data = {"agency": agency, "private_key": str(key_path), "public_key": str(pub_path), "key_id": key_id}
    ui.result(
        data,
        lambda c: c.print(
            f"signing key pair for {agency}: {key_path} (keep in the agency), "
            f"{pub_path} (give to the secure environment); key id {key_id}"
        ),
    )
