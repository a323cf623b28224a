"""One spelling per command-line flag, with the old spellings still accepted but left out of ``--help``.

The house convention, for ``ddrsr``, ``python inference.py`` and the scripts:

* multi-word flags use underscores, as BasicSR's and Real-ESRGAN's do (``--tile_pad``, ``--auto_resume``);
* the model is ``-n/--model``, a checkpoint for it ``--weights``, and where the results go ``-o/--output``
  (a file or a folder, as the command says).

:func:`add_hidden_aliases` registers, for every flag of a parser and of its subparsers, the hyphenated spelling
(``--tile-pad``) and the older names in :data:`RENAMED` (``--model_name``, Real-ESRGAN's ``--model_path``, ...),
so commands written before the convention keep working.
"""
import argparse
from typing import Set

#: Older spellings -> the house spelling they stand for.
RENAMED = {
    '--model_name': '--model',      # Real-ESRGAN's inference script; `ddrsr upscale` before the convention
    '--model_path': '--weights',    # Real-ESRGAN's inference script
    '--out': '--output',
    '--markdown': '--output',
    '--doc': '--output',
}


def is_house_spelling(flag: str) -> bool:
    """Whether long flag ``flag`` follows the convention (no hyphen inside, not a renamed one).

    >>> is_house_spelling('--tile_pad'), is_house_spelling('--tile-pad'), is_house_spelling('--model_name')
    (True, False, False)
    """
    return flag not in RENAMED and '-' not in flag[2:]


def _aliases(option: str) -> Set[str]:
    if not option.startswith('--'):
        return set()
    spellings = {option} | {old for old, new in RENAMED.items() if new == option}
    return (spellings | {'--' + spelling[2:].replace('_', '-') for spelling in spellings}) - {option}


def add_hidden_aliases(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Accept the hyphenated and the :data:`RENAMED` spellings of ``parser``'s flags (recursively); returns it.

    An alias is registered only where the parser has no flag of that name already, and never appears in the
    help. Call it once the parser is complete.

    >>> parser = add_hidden_aliases(argparse.ArgumentParser())
    >>> _ = parser.add_argument('--tile_pad', type=int)  # added after the call: no alias
    >>> parser = argparse.ArgumentParser(); _ = parser.add_argument('-n', '--model')
    >>> add_hidden_aliases(parser).parse_args(['--model_name', 'x']).model
    'x'
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in {id(sub): sub for sub in action.choices.values()}.values():
                add_hidden_aliases(subparser)
            continue
        for option in list(action.option_strings):
            for alias in _aliases(option):
                # argparse's own table of option strings: the alias parses into the same action, while the help
                # lists action.option_strings only. (Public API would need a second, suppressed action per alias.)
                parser._option_string_actions.setdefault(alias, action)
    return parser


__all__ = ['RENAMED', 'add_hidden_aliases', 'is_house_spelling']
