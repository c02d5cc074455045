"""Subcommands of the ``memloss`` command line (one module each)."""
