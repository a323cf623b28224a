"""Section 5: wall time of ``ddrsr analyze`` (patches cut and degraded, features, PCA -> t-SNE runs, plot).

The command runs in this process through ``ddrsr.cli.main``, so each figure is the command's own work;
Python's start-up and imports, paid once per shell command, are measured separately in a fresh process.
"""
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.timing import timed


def import_seconds():
    """Wall time of ``python -c 'import ddrsr.cli, ddrsr'`` in a fresh interpreter (the start-up cost)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    start = time.perf_counter()
    subprocess.run([sys.executable, '-c', 'import ddrsr, ddrsr.cli'], check=True, capture_output=True, cwd=root)
    return time.perf_counter() - start


def bench_analyze(hr_dir, model='srgan_encoder_x4_lite', layer='body.7', patches=100, runs=5, patch=32,
                  specs=('clean', 'blur2', 'noise20'), repeats=5, warmup=1, startup=True, weights=None,
                  meta_info=None):
    """Median wall time of ``ddrsr analyze --patches N --runs R`` on ``hr_dir``.

    Returns:
        dict: the timing, the command line, the points t-SNE saw, the CHI it printed and the start-up cost.
    """
    from ddrsr.cli import main
    from ddrsr.errors import DDRSRError

    with tempfile.TemporaryDirectory(prefix='ddrsr_bench_') as folder:
        argv = ['analyze', '--model', model, '--layer', layer, '--hr', hr_dir, '--patches', str(patches),
                '--runs', str(runs), '--patch', str(patch), '--specs', *specs, '--device', 'cpu',
                '--plot', os.path.join(folder, 'analyze.png')]
        if weights:
            argv[1:1] = ['--weights', weights]
        if meta_info:
            argv[argv.index('--patches'):argv.index('--patches')] = ['--meta_info', meta_info]
        outputs = []

        def run():
            stdout, stderr = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                status = main(argv)
            if status != 0:  # its own `ddrsr: error:` line says why
                last = (stderr.getvalue().strip().splitlines() or ['no message'])[-1]
                raise DDRSRError(f'the analysis benchmark could not run ddrsr analyze: {last}')
            outputs.append(json.loads(stdout.getvalue()))

        timing = timed(run, repeats, warmup)
    summary = outputs[-1]
    shown = [os.path.relpath(a) if a in (hr_dir, meta_info) and os.path.isabs(a) else a for a in argv[:-1]]
    shown.append('PNG')
    return {'command': 'ddrsr ' + ' '.join(shown), 'model': model,
            'layer': layer, 'patches_per_set': summary['patches_per_set'], 'sets': summary['sets'],
            'points': summary['patches_per_set'] * len(summary['sets']), 'tsne_runs': runs,
            'chi': summary['chi'], 'startup_s': import_seconds() if startup else None, **timing}
