"""Run ddrsr's command line as a subprocess, exactly as a user would, and keep its figures beside a report.

Every number and figure in a report made this way comes from a command the reader can re-run.
"""
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

#: The repository checkout: commands run here, and the paths they are given are relative to it.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def run_cli(argv):
    """Run ``python -m ddrsr.cli ARGV``; returns (parsed stdout JSON, wall seconds). Progress passes through.

    Raises DDRSRError naming the command when it fails (the calling script prints it and exits).
    """
    command = [sys.executable, '-m', 'ddrsr.cli', *argv]
    print('$ ddrsr ' + shlex.join(argv), file=sys.stderr, flush=True)
    began = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - began
    if result.returncode != 0:
        from ddrsr.errors import DDRSRError

        raise DDRSRError(f'`ddrsr {shlex.join(argv)}` failed with status {result.returncode}')
    return json.loads(result.stdout), wall


def copy_figure(path, figures, doc, name):
    """Copy figure ``path`` to ``figures/name``; returns its path relative to the Markdown file ``doc``."""
    os.makedirs(figures, exist_ok=True)
    target = os.path.join(figures, name)
    shutil.copyfile(path, target)
    return os.path.relpath(target, os.path.dirname(os.path.abspath(doc)))


def add_report_arguments(parser, stages, work, doc, figures='docs/analysis'):
    """The options every cached-stages report script takes: which stages, which to redo, where the cache, the
    Markdown file and its figures go."""
    parser.add_argument('--stages', nargs='+', default=list(stages), choices=stages)
    parser.add_argument('--redo', nargs='*', default=[], choices=stages, help='measure these stages again')
    parser.add_argument('--work', default=work, help='cached results (and derived option files)')
    parser.add_argument('-o', '--output', default=doc)
    parser.add_argument('--figures', default=figures, help='folder for the figures the doc shows')
    return parser
