"""``python -m wattwise`` runs the CLI."""

from wattwise.cli import main

main()
