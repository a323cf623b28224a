"""The one way ddrsr's reports are made: Markdown tables from cells, and text files written atomically."""
import os
from typing import Iterable, List, Optional, Sequence

from ddrsr.utils.atomic_file import AtomicFile

_RULES = {'l': '---|', 'r': '---:|', 'c': ':---:|'}


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]],
                   align: Optional[str] = None) -> List[str]:
    """The lines of a GitHub Markdown table: the header, the rule, one line per row.

    Args:
        header (sequence): column titles.
        rows (iterable of sequences): cells, one per column; anything ``str()`` can turn into text (format numbers
            before, as the column needs).
        align (str, optional): one letter per column, ``l`` (default), ``r`` or ``c``.

    Raises ValueError for a row or an ``align`` whose length differs from the header's.

    >>> markdown_table(['model', 'PSNR'], [['bicubic', '28.10']], align='lr')
    ['| model | PSNR |', '|---|---:|', '| bicubic | 28.10 |']
    """
    titles = [str(cell) for cell in header]
    align = align or 'l' * len(titles)
    if len(align) != len(titles) or set(align) - set(_RULES):
        raise ValueError(f'align needs one of l/r/c per column ({len(titles)}), got {align!r}')
    lines = [_line(titles), '|' + ''.join(_RULES[letter] for letter in align)]
    for row in rows:
        cells = [str(cell) for cell in row]
        if len(cells) != len(titles):
            raise ValueError(f'a row has {len(cells)} cells for {len(titles)} columns: {cells}')
        lines.append(_line(cells))
    return lines


def _line(cells: Sequence[str]) -> str:
    return '| ' + ' | '.join(cells) + ' |'


def write_text(path: str, text: str) -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically, making its folder first: a reader, or a report that a later
    step links to, never sees half a file. Returns ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with AtomicFile(path) as f:
        f.write(text.encode('utf-8'))
    return path


__all__ = ['markdown_table', 'write_text']
