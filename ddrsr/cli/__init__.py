"""``ddrsr <subcommand>``: one entry point with argparse subparsers.

Machine-readable results go to stdout as JSON; progress and messages go to stderr. Errors that users
can fix print one ``ddrsr: error: ...`` line and exit with status 2, with no traceback.

Each command group is one module of this package (``upscale``, ``train``, ``data``, ``export``, ``evaluate``,
``analysis``, ``identify``, ``faig``, ``inspect``, ``serve``), sharing ``_common``'s helpers;
``python inference.py`` and ``python ddrsr/train.py`` are shims over ``upscale`` and ``train``.
"""
import argparse
import json
import shlex
import sys
from typing import Optional, Sequence

from ddrsr.errors import DDRSRError
from ddrsr.utils.cli_flags import add_hidden_aliases


# One module per command group; each registers its subcommands with add_subcommands(subparsers).
COMMAND_MODULES = ('upscale', 'train', 'data', 'export', 'evaluate', 'analysis', 'identify', 'faig', 'inspect', 'serve')


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog='ddrsr', description='Blind SR guided by deep degradation representations.')
    subparsers = parser.add_subparsers(dest='command', metavar='<subcommand>')
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f'ddrsr.cli.{name}').add_subcommands(subparsers)
    return add_hidden_aliases(parser)  # one spelling per flag in --help; the old ones still parse


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Reports that quote the command which produced them (e.g. `ddrsr evaluate --output`) read this.
    args.command_line = shlex.join(['ddrsr'] + list(sys.argv[1:] if argv is None else argv))
    try:
        import ddrsr

        ddrsr.register()  # basicsr's registries, for commands that build from option files
        result = args.func(args)
    except DDRSRError as error:
        print(f'ddrsr: error: {error}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('ddrsr: interrupted', file=sys.stderr)
        return 130
    if isinstance(result, int) and not isinstance(result, bool):  # an exit status (ddrsr upscale, ddrsr train)
        return result
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0

