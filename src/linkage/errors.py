"""Exceptions that the CLI turns into exit codes.

Messages must never carry a plaintext identifier, a key or a passphrase: they name files, rows,
columns and reasons only.
"""


class LinkageError(Exception):
    """Refused or failed work (exit code 1)."""

    exit_code = 1


class ConfigError(LinkageError):
    """Bad usage or an invalid configuration file (exit code 2)."""

    exit_code = 2


class KeyFileError(LinkageError):
    """A key file that cannot be read or decrypted (wrong passphrase, tampered, wrong kind)."""


class InputError(LinkageError):
    """An input that cannot be processed at all (unreadable, missing required columns)."""


class VerificationError(LinkageError):
    """An extract that fails verification (signature, hash, counts, key or spec mismatch)."""
