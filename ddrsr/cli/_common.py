"""What every ``ddrsr`` subcommand shares: the parser with an example, ``--device``, the error line, progress."""
import argparse
import sys


def add_device(parser):
    """``--device auto|cpu|cuda`` (resolved by :func:`ddrsr.utils.device.resolve_device`)."""
    parser.add_argument('--device', default='auto', help='auto | cpu | cuda (default: auto)')


def parser_with_example(subparsers, name, help_text, example):
    """A subcommand parser whose ``--help`` ends with ``example``."""
    return subparsers.add_parser(name, help=help_text, description=f'{help_text}\n\nexample:\n  {example}',
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


def error_line(message, path=None):
    """One ``ddrsr: error:`` line on stderr, naming ``path`` unless the message starts with it.

    Written through tqdm, so that it does not land on a progress bar's line.
    """
    from tqdm import tqdm

    prefix = '' if path is None or message.startswith(str(path)) else f'{path}: '
    tqdm.write(f'ddrsr: error: {prefix}{message}', file=sys.stderr)


def progress(iterable, desc, unit='img', **kwargs):
    """A tqdm bar on stderr (stdout is for JSON results)."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit=unit, file=sys.stderr, **kwargs)


def script_main(prog):
    """Decorator for a script's ``main(argv)``: a DDRSRError becomes one ``PROG: error: ...`` line and status 2.

    >>> @script_main('demo')
    ... def main(argv=None):
    ...     from ddrsr.errors import DDRSRError
    ...     raise DDRSRError('no photos')
    >>> main()  # doctest: +SKIP
    2
    """
    import functools

    def wrap(main):
        @functools.wraps(main)
        def run(*args, **kwargs):
            from ddrsr.errors import DDRSRError

            try:
                return main(*args, **kwargs)
            except DDRSRError as error:
                print(f'{prog}: error: {error}', file=sys.stderr)
                return 2
        return run
    return wrap
