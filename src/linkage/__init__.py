"""justice-linkage: privacy-preserving record linkage for the criminal justice system."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("justice-linkage")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
