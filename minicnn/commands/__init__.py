"""Subcommands of the `minicnn` console script: one module each, with add_parser(subparsers)."""
COMMANDS = ["demo", "train", "explain", "summary", "check", "course", "precompile"]
