#!/usr/bin/env python
"""Benchmarks (not tests): measure every figure of docs/BENCHMARKS.md in one run and write the doc.

    python scripts/benchmark.py --threads 2                 # full run (about 15 min on 2 idle cores)
    python scripts/benchmark.py --quick --output /tmp/B.md     # tiny sizes, seconds: checks that it runs

Sections (``--sections``, default all): ``inference`` (torch eager / onnxruntime / torch.compile, GFLOP/s
against the measured matmul rate), ``synthesis`` (kornia pipeline against BasicSR per image, and on CUDA
when a GPU is there), ``tiling`` (tile sizes against none, peak RSS each, and the 8K-output RSS check),
``training`` (s/iter of each lite option file), ``train_step`` (BasicSR's step against ddrsr's: ms/iter and
host syncs per iteration, ``--device cuda`` on a GPU) and ``analysis`` (``ddrsr analyze`` wall time).
Each figure is the median of ``--repeats`` runs after ``--warmup`` warm-up runs. The results go to stdout
as JSON (and to ``--json``); progress goes to stderr. The run itself is ``benchmarks.suite.run_benchmarks``.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/ is not installed

from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from benchmarks.suite import build_parser, run  # noqa: E402


def main(argv=None):
    """Run the benchmark; returns the exit status (2 with one ``ddrsr: error:`` line for a bad setting)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = add_hidden_aliases(build_parser(__doc__)).parse_args(argv)
    args.argv = argv
    from ddrsr.errors import DDRSRError

    try:
        results = run(args)
    except DDRSRError as error:
        print(f'ddrsr: error: {error}', file=sys.stderr)
        return 2
    print(json.dumps(results, indent=2))
    print(f'wrote {args.output}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
