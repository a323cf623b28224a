"""One Markdown-table and one report-writing helper (ddrsr.utils.markdown), used by every report."""
import ast
import glob
import os

import pytest

from conftest import ROOT
from ddrsr.utils.markdown import markdown_table, write_text


def test_table_lines_and_alignment():
    assert markdown_table(['a', 'b', 'c'], [[1, 2.5, '`x`']], align='lrc') == [
        '| a | b | c |', '|---|---:|:---:|', '| 1 | 2.5 | `x` |']
    assert markdown_table(['only'], []) == ['| only |', '|---|']


def test_table_refuses_ragged_rows_and_bad_alignment():
    with pytest.raises(ValueError, match='2 cells for 3 columns'):
        markdown_table(['a', 'b', 'c'], [[1, 2]])
    with pytest.raises(ValueError, match='one of l/r/c per column'):
        markdown_table(['a', 'b'], [], align='l')
    with pytest.raises(ValueError, match='one of l/r/c per column'):
        markdown_table(['a'], [], align='x')


def test_write_text_makes_the_folder_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / 'deep' / 'report.md'
    assert write_text(str(path), 'ΔY ≤ 1.10\n') == str(path)
    assert path.read_text(encoding='utf-8') == 'ΔY ≤ 1.10\n'
    assert os.listdir(path.parent) == ['report.md']


def test_a_failed_write_keeps_the_old_report(tmp_path):
    path = tmp_path / 'report.md'
    write_text(str(path), 'old')
    with pytest.raises(AttributeError):
        write_text(str(path), None)  # not text: fails before the rename
    assert path.read_text() == 'old' and os.listdir(tmp_path) == ['report.md']


def test_no_report_builds_a_table_rule_by_hand():
    """Every Markdown table in the package, the scripts and the benchmarks comes from markdown_table."""
    sources = glob.glob(os.path.join(ROOT, 'ddrsr', '**', '*.py'), recursive=True)
    sources += glob.glob(os.path.join(ROOT, 'scripts', '*.py')) + glob.glob(os.path.join(ROOT, 'benchmarks', '*.py'))
    found = []
    for path in sources:
        if path.endswith(os.path.join('utils', 'markdown.py')):
            continue
        for node in ast.walk(ast.parse(open(path, encoding='utf-8').read())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if any(line.lstrip().startswith(('|---', '|:--')) for line in node.value.splitlines() or ['']) \
                        or node.value.startswith(('---|', '---:|')):
                    found.append(f'{os.path.relpath(path, ROOT)}:{node.lineno}')
    assert not found, found
