#!/usr/bin/env python
"""The DDR analysis of the release models: docs/ANALYSIS_RELEASE.md and its figures.

    python scripts/analyze_release.py                          # measure what is missing, then write the report
    python scripts/analyze_release.py --stages report          # rewrite the report from the cache only
    python scripts/analyze_release.py --redo generalization    # measure a stage again (e.g. after re-shipping)

Stages: ``evolution`` (``ddrsr evolution`` over the blind encoder's checkpoints, from the shipped clean encoder),
``generalization`` (``ddrsr generalization`` of the shipped RRDBs and the default) and ``report``. Every number
comes from a ddrsr CLI run as a subprocess. The work is done by ddrsr.analysis.reproduction.release.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # the repository's ddrsr, also when it is not installed
    sys.path.append(ROOT)
from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from ddrsr.analysis.reproduction import release  # noqa: E402
from ddrsr.analysis.reproduction.commands import add_report_arguments  # noqa: E402
from ddrsr.analysis.reproduction.sections import ReportPaths  # noqa: E402
from ddrsr.analysis.reproduction.stages import Cache  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_report_arguments(parser, release.STAGES, work='results/analyze_release', doc='docs/ANALYSIS_RELEASE.md')
    return add_hidden_aliases(parser).parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    cache = Cache(args.work, args.redo)
    release.run_stages(args.stages, cache)
    if 'report' in args.stages:
        paths = ReportPaths(args.work, args.output, args.figures)
        print(json.dumps({'doc': release.write_report(paths, cache, sys.argv[1:] if argv is None else argv)}))


if __name__ == '__main__':
    from ddrsr.errors import DDRSRError

    try:
        main()
    except DDRSRError as error:  # a failed ddrsr command: its own output said why
        sys.exit(f'analyze_release: error: {error}')
