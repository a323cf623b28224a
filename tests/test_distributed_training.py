"""torchrun on the CPU (gloo): two processes train the tiny RRDBNet-DDR exactly like one with the doubled batch.

The two runs see the same data by construction:

* every HR image is exactly one ``gt_size`` patch, so the random crop has one choice, and flips and
  rotations are off (each rank seeds Python's ``random`` with ``manual_seed + rank``);
* the option file has no ``degradation:`` block, so the LQ is clean bicubic, which is deterministic (the
  on-device degradation draws from a generator seeded per rank, so random degradations would differ).

BasicSR's ``EnlargedSampler`` then gives rank r, in batch k, samples ``perm[4k + r]`` and ``perm[4k + r + 2]``
of the permutation whose ``perm[4k:4k + 4]`` is the 1-process batch k; DDP averages the two ranks' mean
gradients, which is the 4-sample mean gradient, so Adam takes the same step up to float rounding.
"""
import glob
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import DATA, ROOT
from ddrsr.archs import SRResNet
from ddrsr.training.pipeline import train
from train_instrument import instrument

TIMEOUT = 600  # s: a hang (a collective that one rank never joins) fails the test instead of blocking CI
PATCH = 32
ITERS, RESUMED_ITERS = 3, 5
DRIVER = '''import os, sys
sys.path[:0] = [{root!r}, {tests!r}]
from train_instrument import instrument
from ddrsr.training.pipeline import train
instrument({dumps!r}, int(os.environ['RANK']))
train(root_path=os.getcwd(), argv=sys.argv[1:])
'''


def _tiny_hr_folder(folder):
    """Four HR images of exactly PATCH x PATCH pixels, cut from the two test photos."""
    os.makedirs(folder)
    for index, path in enumerate(sorted(glob.glob(os.path.join(DATA, 'hr', '*.png')))):
        image = np.asarray(Image.open(path).convert('RGB'))
        for corner in range(2):
            top = left = 16 + corner * 48
            Image.fromarray(image[top:top + PATCH, left:left + PATCH]).save(f'{folder}/hr_{index}_{corner}.png')


def _options(base, batch):
    """The DDR smoke options, made deterministic (see the module docstring), in ``base/train.yml``."""
    encoder = base / 'encoder.pth'
    torch.manual_seed(1)
    torch.save({'params_ema': SRResNet(num_feat=8, num_block=2).state_dict()}, encoder)
    _tiny_hr_folder(base / 'hr')
    with open(os.path.join(DATA, 'train_rrdb_ddr_smoke.yml')) as f:
        opt = yaml.safe_load(f)
    del opt['degradation']
    opt['name'] = 'dist_smoke'
    train_set = opt['datasets']['train']
    train_set.update(dataroot_gt=str(base / 'hr'), gt_size=PATCH, use_hflip=False, use_rot=False,
                     batch_size_per_gpu=batch, dataset_enlarge_ratio=2)  # 8 samples: 2 iterations an epoch
    opt['datasets'] = {'train': train_set, 'val': {**opt['datasets']['val_1'], 'dataroot_gt': os.path.join(DATA, 'hr')}}
    opt['path']['pretrain_network_encoder'] = str(encoder)
    # ema_decay 0: validation (rank 0 alone) runs net_g itself, the path where a DDP forward would hang.
    opt['train'].update(ema_decay=0, total_iter=ITERS)
    opt['logger']['save_checkpoint_freq'] = 2
    path = base / 'train.yml'
    path.write_text(yaml.safe_dump(opt))
    return str(path)


def _torchrun(base, script, *args):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(script),
               *args]
    proc = subprocess.run(command, cwd=base, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def _assert_close(actual, expected, where, exact=False):
    """Equal within float tolerance (bit for bit when ``exact``); NaN equals NaN (an unset clean_embedding)."""
    assert actual.keys() == expected.keys()
    tolerance = {'rtol': 0, 'atol': 0} if exact else {'rtol': 1e-4, 'atol': 1e-6}
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], equal_nan=True, msg=f'{where}: {key}', **tolerance)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """Two processes (torchrun, batch 2 each) and one process (in-process, batch 4): 3 iterations, then
    ``--auto_resume`` to 5 (the 2-process resume through ddrsr/train.py itself)."""
    two, one = tmp_path_factory.mktemp('two_processes'), tmp_path_factory.mktemp('one_process')
    opt2, opt1 = _options(two, batch=2), _options(one, batch=4)
    driver = two / 'driver.py'
    driver.write_text(DRIVER.format(root=ROOT, tests=os.path.join(ROOT, 'tests'), dumps=str(two / 'dumps')))
    first = _torchrun(two, driver, '-opt', opt2, '--launcher', 'pytorch')
    resumed = _torchrun(two, os.path.join(ROOT, 'ddrsr', 'train.py'), '-opt', opt2, '--launcher', 'pytorch',
                        '--auto_resume', '--force_yml', f'train:total_iter={RESUMED_ITERS}')
    with pytest.MonkeyPatch.context() as patch:  # the first run only, as for the two processes
        instrument(str(one / 'dumps'), 0, setattr=patch.setattr)
        train(root_path=one, argv=['-opt', opt1])
    train(root_path=one, argv=['-opt', opt1, '--auto_resume', '--force_yml', f'train:total_iter={RESUMED_ITERS}'])
    return {'two': two, 'one': one, 'first': first, 'resumed': resumed}


def test_ranks_hold_identical_weights_after_every_step(runs):
    dumps = runs['two'] / 'dumps'
    for iteration in range(1, ITERS + 1):
        rank0, rank1 = _load(dumps / f'rank0_iter{iteration}.pt'), _load(dumps / f'rank1_iter{iteration}.pt')
        _assert_close(rank1, rank0, f'iteration {iteration}, rank 1 against rank 0', exact=True)


def test_two_processes_equal_one_process_with_the_doubled_batch(runs):
    for iteration in range(1, ITERS + 1):
        two = _load(runs['two'] / 'dumps' / f'rank0_iter{iteration}.pt')
        one = _load(runs['one'] / 'dumps' / f'rank0_iter{iteration}.pt')
        _assert_close(two, one, f'iteration {iteration}')
    # The weights moved between the steps compared (equal untrained networks would prove nothing).
    first = _load(runs['one'] / 'dumps' / 'rank0_iter1.pt')
    assert any(not torch.equal(first[key], one[key]) for key in first if first[key].is_floating_point())


def test_auto_resume_continues_the_group_from_the_last_state(runs):
    exp_two, exp_one = runs['two'] / 'experiments' / 'dist_smoke', runs['one'] / 'experiments' / 'dist_smoke'
    logs = ''.join(open(p).read() for p in glob.glob(str(exp_two / '*.log')))
    assert re.search(r'Resuming training from epoch: \d+, iter: 2\.', logs)
    assert (exp_two / 'training_states' / '4.state').exists()
    two, one = _load(exp_two / 'models' / 'net_g_latest.pth'), _load(exp_one / 'models' / 'net_g_latest.pth')
    _assert_close(two['params'], one['params'], f'iteration {RESUMED_ITERS} after the resume')


def test_only_rank_0_writes_checkpoints_and_logs(runs):
    dumps, exp = runs['two'] / 'dumps', runs['two'] / 'experiments' / 'dist_smoke'
    assert not (dumps / 'writes_rank1.txt').exists()
    written = [os.path.basename(p) for p in (dumps / 'writes_rank0.txt').read_text().split()]
    assert written == ['net_g_2.pth', '2.state', 'net_g_latest.pth']
    assert len(glob.glob(str(exp / '*.log'))) == 2  # one per run, both by rank 0
    logs = ''.join(open(p).read() for p in glob.glob(str(exp / '*.log')))
    assert "dist_backend: gloo" in logs and 'World size (gpu number): 2' in logs
    assert not glob.glob(str(runs['two'] / 'experiments' / '*_archived_*'))  # no rank renamed the folder
