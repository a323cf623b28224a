"""A seeded fuzz corpus (ddrsr.testing.bad_inputs.make_fuzz_corpus; scripts/make_bad_inputs.py --fuzz): 300 damaged PNG, JPEG, WebP and TIFF files.

One ``inference.py`` process runs over the whole folder, in a subprocess with a timeout (a hang fails the
test). Every file must give an output or exactly one ``ddrsr: error:`` line naming it, with no traceback,
no error that calls itself a bug, and no input changed.
"""
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from ddrsr.testing.bad_inputs import make_fuzz_corpus
from test_bad_inputs import ARCH, DRIVER, error_lines, snapshot
from tiny_models import tiny_ddr_net

COUNT, SEED = 300, 0
TIMEOUT = 240  # s; the run takes seconds, the margin is for a loaded machine


@pytest.fixture(scope='module')
def fuzz_run(tmp_path_factory):
    base = tmp_path_factory.mktemp('fuzz')
    folder, out = base / 'fuzz', base / 'out'
    names = make_fuzz_corpus(str(folder), COUNT, SEED)
    checkpoint = base / 'tiny.pth'
    torch.save({'params_ema': tiny_ddr_net().state_dict()}, checkpoint)
    driver = base / 'driver.py'
    driver.write_text(DRIVER.format(root=ROOT, tests=os.path.join(ROOT, 'tests'),
                                    script=os.path.join(ROOT, 'inference.py'),
                                    entry={'file': str(checkpoint), 'scale': 4, 'arch': ARCH}))
    before = snapshot(folder)
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONIOENCODING='utf-8')
    # --max_pixels bounds what an edited header may claim: a 65535 x 1 image is valid, just not fast.
    proc = subprocess.run([sys.executable, str(driver), '-i', str(folder), '-o', str(out), '-n', 'tiny_ddr',
                           '--backend', 'torch', '--max_pixels', '100000'],
                          capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=str(base))
    return {'names': names, 'folder': folder, 'out': out, 'before': before, 'after': snapshot(folder),
            'returncode': proc.returncode, 'stderr': proc.stderr}


def test_corpus_is_seeded_and_covers_formats_and_mutations(tmp_path):
    first, second = make_fuzz_corpus(str(tmp_path / 'a'), 30, SEED), make_fuzz_corpus(str(tmp_path / 'b'), 30, SEED)
    assert first == second
    assert all((tmp_path / 'a' / n).read_bytes() == (tmp_path / 'b' / n).read_bytes() for n in first)
    assert {os.path.splitext(n)[1] for n in first} == {'.png', '.jpg', '.webp', '.tif'}
    assert {n.split('_')[2].split('.')[0] for n in first} == {'bitflip', 'truncate', 'header'}


def test_every_file_gives_an_output_or_one_error_line(fuzz_run):
    stderr = fuzz_run['stderr']
    assert fuzz_run['returncode'] in (0, 1), stderr[-3000:]
    assert 'Traceback' not in stderr
    lines = error_lines(stderr)
    outputs = {os.path.splitext(n)[0] for n in os.listdir(fuzz_run['out'])}
    failed = []
    for name in fuzz_run['names']:
        path = os.path.join(str(fuzz_run['folder']), name)
        mentions = [line for line in lines if f'{path}:' in line]
        has_output = f'{os.path.splitext(name)[0]}_out' in outputs
        assert len(mentions) + has_output == 1, (name, mentions, has_output)
        failed += mentions
    assert len(lines) == len(failed)  # no error line about anything else
    assert not [line for line in lines if 'looks like a bug' in line], [l for l in lines if 'bug' in l][:5]
    assert 0 < len(failed) < len(fuzz_run['names'])  # the corpus has both kinds (else it tests nothing)
    assert not [n for n in os.listdir(fuzz_run['out']) if n.startswith('.')]  # no temporary files left


def test_no_input_is_modified(fuzz_run):
    assert fuzz_run['after'] == fuzz_run['before']
