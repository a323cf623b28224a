"""Crash-safe training: atomic checkpoints, a stop on NaN/Inf losses, and kill -9 then --auto_resume."""
import glob
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from conftest import DATA, ROOT
from ddrsr.weights.checkpoint import atomic_save
from ddrsr.errors import DDRSRError
from ddrsr.models import DDRSRModel, SRGANEncoderModel
from ddrsr.models.crash_safe import CrashSafeMixin

TIMEOUT = 300  # s per training process; a loaded 2-core machine is slow to import torch and basicsr


def smoke_options(tmp_path, **train):
    """The SRGAN-encoder smoke file with absolute data paths, no mid-run validation and ``train`` overrides."""
    with open(os.path.join(DATA, 'train_srgan_encoder_smoke.yml')) as f:
        opt = yaml.safe_load(f)
    for dataset in opt['datasets'].values():
        dataset['dataroot_gt'] = os.path.join(DATA, 'hr')
    opt['val']['val_freq'] = 10 ** 6  # only the final validation
    opt['logger'].update(print_freq=1, save_checkpoint_freq=train.pop('save_checkpoint_freq', 2))
    opt['train'].update(train)
    path = tmp_path / 'smoke.yml'
    path.write_text(yaml.safe_dump(opt))
    return str(path), opt


# ------------------------------------------------------------------------------------------ atomic
def test_atomic_save_keeps_the_old_file_when_a_write_dies(tmp_path, monkeypatch):
    path = tmp_path / 'net_g_4.pth'
    atomic_save({'params': {'w': torch.ones(3)}}, path)
    good = path.read_bytes()

    def dies_half_way(obj, f, *args, **kwargs):
        f.write(good[:len(good) // 2])
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(torch, 'save', dies_half_way)
    with pytest.raises(OSError):
        atomic_save({'params': {'w': torch.zeros(3)}}, path)
    assert path.read_bytes() == good and os.listdir(tmp_path) == ['net_g_4.pth']


class _Bare:
    def get_bare_model(self, net):
        return net


class _Model(CrashSafeMixin, _Bare):
    pass


def test_models_write_basicsr_checkpoints_atomically(tmp_path, monkeypatch):
    for cls in (DDRSRModel, SRGANEncoderModel):  # BasicSR's writers are replaced in both models
        assert cls.save_network is CrashSafeMixin.save_network
        assert cls.save_training_state is CrashSafeMixin.save_training_state
    net = torch.nn.Conv2d(1, 1, 1)
    model = _Model()
    model.opt = {'path': {'models': str(tmp_path), 'training_states': str(tmp_path)}}
    model.optimizers = [torch.optim.Adam(net.parameters())]
    model.schedulers = [torch.optim.lr_scheduler.MultiStepLR(model.optimizers[0], [5])]
    net(torch.ones(1, 1, 2, 2)).sum().backward()
    model.optimizers[0].step()
    model.save_network([net, net], 'net_g', 6, param_key=['params', 'params_ema'])
    model.save_training_state(epoch=1, current_iter=6)
    assert sorted(os.listdir(tmp_path)) == ['6.state', 'net_g_6.pth']
    checkpoint = torch.load(tmp_path / 'net_g_6.pth', weights_only=True)
    assert set(checkpoint) == {'params', 'params_ema'} and torch.equal(checkpoint['params']['weight'], net.weight)
    state = torch.load(tmp_path / '6.state', weights_only=True)
    assert state['iter'] == 6 and state['optimizers'][0]['state'][0]['step'] == 1

    def interrupted(obj, f, *args, **kwargs):
        f.write(b'half a checkpoint')
        raise KeyboardInterrupt  # what a kill looks like from inside, as far as Python can see one

    monkeypatch.setattr(torch, 'save', interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.save_training_state(epoch=1, current_iter=8)
    with pytest.raises(KeyboardInterrupt):
        model.save_network(net, 'net_g', -1)
    assert sorted(os.listdir(tmp_path)) == ['6.state', 'net_g_6.pth']


# --------------------------------------------------------------------------------------------- NaN
def test_nan_loss_stops_before_saving(tmp_path, monkeypatch):
    from basicsr.losses.basic_loss import L1Loss

    from ddrsr.training.pipeline import train

    opt_path, opt = smoke_options(tmp_path, total_iter=4, save_checkpoint_freq=1)
    original, calls = L1Loss.forward, []

    def nan_from_the_third_iteration(self, *args, **kwargs):
        calls.append(1)
        loss = original(self, *args, **kwargs)
        return loss * float('nan') if len(calls) >= 3 else loss

    monkeypatch.setattr(L1Loss, 'forward', nan_from_the_third_iteration)
    with pytest.raises(DDRSRError, match=r'diverged at iteration 3: l_g_pix = nan.*--auto_resume'):
        train(root_path=tmp_path, argv=['-opt', opt_path])
    exp = tmp_path / 'experiments' / opt['name']
    assert sorted(os.listdir(exp / 'training_states')) == ['1.state', '2.state']
    assert sorted(os.listdir(exp / 'models')) == ['net_d_1.pth', 'net_d_2.pth', 'net_g_1.pth', 'net_g_2.pth']
    params = torch.load(exp / 'models' / 'net_g_2.pth', weights_only=True)['params']
    assert all(torch.isfinite(v).all() for v in params.values())


# ---------------------------------------------------------------------------------- kill -9, resume
def _iterations(log):
    return [int(n.replace(',', '')) for n in re.findall(r'iter:\s*([\d,]+), lr', log)]


def test_kill_9_then_auto_resume_continues_from_the_last_checkpoint(tmp_path):
    total, every, gan_start = 12, 2, 2
    opt_path, opt = smoke_options(tmp_path, total_iter=total, save_checkpoint_freq=every, gan_start_iter=gan_start)
    exp = tmp_path / 'experiments' / opt['name']
    states = exp / 'training_states'
    command = [sys.executable, os.path.join(ROOT, 'ddrsr', 'train.py'), '-opt', opt_path, '--auto_resume']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    with open(tmp_path / 'first.log', 'w') as log:
        first = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + TIMEOUT
        while not glob.glob(str(states / '*.state')) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
    first_log = (tmp_path / 'first.log').read_text()
    assert first.returncode == -signal.SIGKILL, first_log[-2000:]
    on_disk = sorted(int(os.path.splitext(n)[0]) for n in os.listdir(states) if n.endswith('.state'))
    resume_from, last_done = on_disk[-1], max(_iterations(first_log))
    assert resume_from < total, 'the first run finished before it could be killed'
    assert last_done - resume_from <= every  # at most one checkpoint interval is lost

    second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-3000:]
    assert re.search(rf'Resuming training from epoch: \d+, iter: {resume_from}\.', output), output[-3000:]
    assert _iterations(output) == list(range(resume_from + 1, total + 1))  # the same count, no repeats
    state = torch.load(states / f'{total}.state', weights_only=True, map_location='cpu')
    # Adam's step counts and the scheduler cover the whole run, so their state survived the kill: a fresh
    # optimizer would count only the iterations since the resume.
    g_steps = {int(s['step']) for s in state['optimizers'][0]['state'].values()}
    d_steps = {int(s['step']) for s in state['optimizers'][1]['state'].values()}
    assert g_steps == {total} and d_steps == {total - gan_start}
    assert state['schedulers'][0]['last_epoch'] == total - 1  # basicsr steps it from iteration 2 on
    for path in glob.glob(str(exp / 'models' / '*.pth')) + glob.glob(str(states / '*.state')):
        torch.load(path, weights_only=True, map_location='cpu')  # nothing half-written under a final name
    assert os.path.exists(exp / 'models' / 'net_g_latest.pth')
