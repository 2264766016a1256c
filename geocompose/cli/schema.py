"""geocompose schema: print the JSON Schema of blueprints, for editors.

The schema is derived from the registry at run time, so blocks registered by user
code imported before this command runs are valid ``type:`` values in it. Point an
editor's YAML language server at the output, e.g. with a first line
``# yaml-language-server: $schema=blueprint.schema.json``::

    geocompose schema > blueprint.schema.json
"""

from __future__ import annotations

import argparse
import json
import sys

from geocompose.blueprint import json_schema
from geocompose.cli.common import EXIT_OK

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--indent", type=int, default=2, help="JSON indentation (default 2)")


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(json.dumps(json_schema(), indent=args.indent, ensure_ascii=False) + "\n")
    return EXIT_OK
