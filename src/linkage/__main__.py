"""`python -m linkage` runs the CLI."""

from linkage.cli import main

main()
