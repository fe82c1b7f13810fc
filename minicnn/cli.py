"""The `minicnn` console script; each subcommand lives in minicnn/commands/<name>.py."""
from __future__ import annotations

import argparse
import importlib
import sys

from .commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: one subparser per module of minicnn/commands."""
    parser = argparse.ArgumentParser(prog="minicnn", description="minicnn: CNNs one readable loop at a time")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"minicnn.commands.{name}").add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
