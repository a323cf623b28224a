"""scripts/train_release.py: sizing, a tiny budgeted run killed with kill -9 and resumed, shipping, packing."""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
import yaml

from conftest import DATA, ROOT
from ddrsr.errors import DDRSRError
from ddrsr.models.ema import check_ema_horizon, resolve_ema_decay
from ddrsr.training.options import check_options
from ddrsr.release import publish
from ddrsr.release.plan import make_plan, resize_stages
from ddrsr.release.stages import STAGE_BY_KEY, derive_options, load_template
from ddrsr.weights.manifest import sha256_file, verify_shipped

TINY = os.path.join(DATA, 'release_tiny')
SCRIPT = os.path.join(ROOT, 'scripts', 'train_release.py')
TIMEOUT = 240


def calibration(gain=1.0, threads=2):
    rates = {'encoder': 10.0, 'encoder_gan': 4.0, 'encoder_blind': 8.0, 'rrdb_clean': 5.0, 'rrdb_bn': 5.0,
             'rrdb_ddr_bn': 4.0, 'rrdb_ddr_real': 3.0}
    half = gain / 2
    return {'rates': rates, 'startup_s': {k: 0.5 for k in STAGE_BY_KEY}, 'threads': threads,
            'side_by_side': {'encoder': 10.0 * half, 'rrdb_clean': 5.0 * half}, 'gain': gain,
            'lanes': 2 if gain >= 1.1 else 1}


# ------------------------------------------------------------------------------------------------ sizing
@pytest.mark.parametrize('gain', [1.0, 1.6])
def test_plan_fits_the_budget_and_gives_the_pair_equal_iterations(gain):
    plan = make_plan(calibration(gain), 1000.0, gan_share=1 / 6)
    assert plan['lanes'] == (2 if gain > 1.1 else 1) and plan['threads'] == 2 // plan['lanes']
    stages = plan['stages']
    assert stages['rrdb_bn']['iterations'] == stages['rrdb_ddr_bn']['iterations'] > 100
    for phase, seconds in zip(plan['phases'], plan['phase_s']):
        for lane in phase:  # every lane's stages fit in its phase
            assert sum(stages[k]['seconds'] for k in lane) <= seconds + 1e-6
    rate = calibration(gain)['rates']
    slow = gain / 2 if plan['lanes'] == 2 else 1.0
    encoder = stages['encoder']['iterations']
    assert encoder * (5 / 6) / (rate['encoder'] * slow) + encoder / 6 / (rate['encoder_gan'] * slow) \
        == pytest.approx(stages['encoder']['seconds'], rel=0.01)
    assert plan['train_s'] + plan['reserve_s'] == pytest.approx(1000.0)
    first = [key for lane in plan['phases'][0] for key in lane]
    assert first.index('encoder') < first.index('encoder_blind')  # in one lane: the blind one is fine-tuned from it
    assert stages['encoder_blind']['iterations'] == int(stages['encoder_blind']['seconds'] * stages['encoder_blind']['rate'])
    capped = make_plan(calibration(gain), 1000.0, gan_share=1 / 6, max_iterations=7)['stages']
    assert {s['iterations'] for s in capped.values()} == {7}
    resize_stages(plan, ['rrdb_bn', 'rrdb_ddr_bn', 'rrdb_ddr_real'], 0.5)
    assert stages['rrdb_bn']['iterations'] == stages['rrdb_ddr_bn']['iterations']
    with pytest.raises(DDRSRError, match='larger --budget'):
        make_plan(calibration(gain), 4.0, gan_share=1 / 6)
    with pytest.raises(DDRSRError, match='used the whole budget'):
        make_plan(calibration(gain), -3.0, gan_share=1 / 6)


def test_derived_options_scale_the_schedule_and_pass_the_checks():
    stage = STAGE_BY_KEY['encoder']
    template = load_template(stage, os.path.join(ROOT, 'options'))
    opt = derive_options(template, stage, 600, 'cuda', {}, 75, 30)
    train = opt['train']
    assert train['total_iter'] == 600 and train['gan_start_iter'] == 500  # 2500/3000 of the run
    assert train['scheduler']['milestones'] == [400] and opt['num_gpu'] == 1
    assert list(opt['datasets']) == ['train'] and 'val' not in opt
    loader = opt['datasets']['train']
    assert loader['prefetch_mode'] == 'cuda' and loader['pin_memory'] and loader['persistent_workers']
    assert derive_options(template, stage, 600, 'cpu', {}, 75, 30)['datasets']['train']['persistent_workers']
    assert os.path.isabs(opt['datasets']['train']['dataroot_gt'])
    assert resolve_ema_decay(train) < 0.99  # `auto`: a horizon of 5% of 600 iterations
    check_ema_horizon(opt)
    weights = {'rrdb_clean': '/new/rrdb_clean.pth', 'encoder': '/new/encoder.pth', 'encoder_blind': '/new/blind.pth'}
    blind = STAGE_BY_KEY['encoder_blind']
    template = load_template(blind)
    assert template['path']['pretrain_network_g'] == 'weights/ddr_encoder_srgan_x4_lite.pth'  # the shipped file
    opt = derive_options(template, blind, 90, 'cpu', weights, 5, 2)
    assert opt['path']['pretrain_network_g'] == '/new/encoder.pth' and opt['path']['param_key_g'] == 'params_ema'
    assert opt['train']['gan_start_iter'] == opt['train']['total_iter'] == 90  # pixel loss only, as the template
    assert opt['degradation']['jpeg_prob'] > 0 and opt['model_type'] == 'SRGANEncoderModel'
    check_options(opt)
    real = STAGE_BY_KEY['rrdb_ddr_real']
    template = load_template(real)
    assert template['path']['pretrain_network_g'].startswith('experiments/') and template['path']['param_key_g_exclude']
    opt = derive_options(template, real, 40, 'cpu', weights, 5, 2)
    assert opt['path']['pretrain_network_g'] == '/new/rrdb_clean.pth' and opt['path']['param_key_g'] == 'params_ema'
    assert 'param_key_g_exclude' not in opt['path']  # it named keys of the template's own start, not rrdb_clean's
    assert opt['path']['pretrain_network_encoder'] == '/new/blind.pth'
    assert opt['network_g']['global_residual'] == 'bicubic' and opt['num_gpu'] == 0
    assert all(0 < m < 40 for m in opt['train']['scheduler']['milestones'])
    check_options(opt)
    assert STAGE_BY_KEY['rrdb_ddr_bn'].encoder_from == 'encoder_blind'
    scratch = STAGE_BY_KEY['rrdb_clean']  # no init_from: from scratch, whatever the template starts from
    template = load_template(scratch)
    template['path'].update(pretrain_network_g='experiments/old/net_g_10.pth', param_key_g_exclude=['conv_last'])
    path = derive_options(template, scratch, 40, 'cpu', weights, 5, 2)['path']
    assert path['pretrain_network_g'] is None and 'param_key_g_exclude' not in path


# ---------------------------------------------------------------------------------- run, kill -9, resume
def _alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return not f.read().split(') ')[-1].startswith('Z')
    except OSError:
        return False


def test_release_run_resumes_after_kill_9_and_writes_loadable_fp16_weights(tmp_path):
    out = tmp_path / 'release'
    # A budget that a loaded machine's calibration cannot use up, and short stages whatever the plan says.
    command = [sys.executable, SCRIPT, '--budget', '300', '--device', 'cpu', '--output', str(out), '--templates', TINY,
               '--lanes', '2', '--no_progress', '--max_iterations', '48', '--calibration_seconds', '0.2']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    states = out / 'experiments' / 'tiny_rrdb_clean' / 'training_states'
    with open(tmp_path / 'first.err', 'w') as err:
        first = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + TIMEOUT
        while not glob.glob(str(states / '*.state')) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert first.returncode == -signal.SIGKILL, (tmp_path / 'first.err').read_text()[-3000:]
    state = json.loads((out / 'release_state.json').read_text())
    planned = state['plan']['stages']
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in state['children']) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in state['children'])  # the stages died with the command
    resume_from = max(int(os.path.basename(p).split('.')[0]) for p in glob.glob(str(states / '*.state')))
    assert resume_from < planned['rrdb_clean']['iterations'], 'the stage finished before it could be killed'

    second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert second.returncode == 0, second.stderr[-3000:]
    assert 'continuing the plan' in second.stderr and 'calibrating' not in second.stderr
    log = (out / 'logs' / 'rrdb_clean.log').read_text()
    assert re.search(rf'Resuming training from epoch: \d+, iter: {resume_from}\.', log), log[-2000:]
    final = json.loads((out / 'release_state.json').read_text())
    assert final['plan']['stages'] == planned  # the same plan, continued
    assert final['stages']['rrdb_clean']['segments'] == 2
    assert all(final['stages'][k]['segments'] == 1 for k in ('rrdb_bn', 'rrdb_ddr_bn', 'rrdb_ddr_real'))
    paths = {key: yaml.safe_load((out / 'options' / STAGE_BY_KEY[key].template).read_text())['path']
             for key in ('encoder_blind', 'rrdb_ddr_bn', 'rrdb_ddr_real')}
    assert paths['encoder_blind']['pretrain_network_g'] == str(out / 'weights' / 'ddr_encoder_srgan_x4_lite.pth')
    for key in ('rrdb_ddr_bn', 'rrdb_ddr_real'):  # guided by the new blind encoder, started from the new RRDB (clean)
        assert paths[key]['pretrain_network_encoder'] == str(out / 'weights' / 'ddr_encoder_blind_x4_lite.pth')
        assert paths[key]['pretrain_network_g'] == str(out / 'weights' / 'rrdb_clean_x4_lite.pth')
        assert 'param_key_g_exclude' not in paths[key]

    manifest = json.loads(second.stdout)
    assert set(manifest['models']) == set(STAGE_BY_KEY)
    for key, model in manifest['models'].items():
        path = out / model['file']
        assert sha256_file(path) == model['sha256'] and os.path.getsize(path) == model['bytes'] <= 16 * 2 ** 20
        params = torch.load(path, weights_only=True)['params_ema']
        assert all(v.dtype == torch.float16 for v in params.values() if v.is_floating_point())
        opt = yaml.safe_load((out / model['option_file']).read_text())
        assert model['iterations'] == opt['train']['total_iter'] == planned[key]['iterations']
        network = publish.load_network(opt['network_g'], str(path))  # strict load through ddrsr.weights.checkpoint
        with torch.no_grad():
            assert network(torch.rand(1, 3, 16, 16)).shape == (1, 3, 64, 64)
        assert set(model['validation']) == {'clean', 'blur2', 'noise20', 'blur2_noise20', 'jpeg30'}
        assert all(np.isfinite(cell['psnr']) for cell in model['validation'].values())
    assert manifest['models']['rrdb_ddr_real']['option_file'] == 'options/train_rrdb_ddr_real_x4_lite_v3.yml'
    assert '| RRDB-DDR (b+n) |' in (out / 'validation.md').read_text()

    # Brought back to another machine: a finished run evaluates and ships there, whatever --budget/--device say.
    from ddrsr.release.runner import run_release
    from ddrsr.weights.manifest import write_manifest

    weights = tmp_path / 'weights'
    weights.mkdir()
    with pytest.raises(DDRSRError, match='no SHA256SUMS'):
        run_release(str(out), 999, 'cpu', ship=True, weights_dir=str(weights), templates_dir=TINY, progress=False)
    write_manifest(str(weights))
    shipped = run_release(str(out), 999, 'cpu', ship=True, weights_dir=str(weights), templates_dir=TINY,
                          progress=False)
    for model in shipped['models'].values():  # tiny networks are not the zoo's lite architectures
        assert not model['shipped']['shipped'] and 'ddrsr/zoo.py' in model['shipped']['reason']
    assert os.listdir(weights) == ['SHA256SUMS']


# ------------------------------------------------------------------------------------------------- ship
def _tiny_arch():
    return {'type': 'RRDBNetDDR', 'num_feat': 8, 'num_block': 1, 'num_grow_ch': 4, 'scale': 4, 'use_ddr': False,
            'global_residual': 'bicubic'}


def _save(path, bicubic):
    """A tiny model that is bicubic (zero residual), or one whose output is far off (a large residual)."""
    from basicsr.archs import build_network

    network = build_network(_tiny_arch())
    with torch.no_grad():
        for name, value in network.state_dict().items():
            if not bicubic and value.is_floating_point():
                value.fill_(0.05)
    torch.save({'params_ema': {k: v.half() for k, v in network.state_dict().items()}}, path)
    return str(path)


def test_ship_replaces_a_file_only_when_the_new_model_beats_it(tmp_path, monkeypatch):
    from ddrsr import zoo

    stage = STAGE_BY_KEY['rrdb_clean']
    monkeypatch.setitem(zoo.MODELS, stage.zoo_name, {**zoo.MODELS[stage.zoo_name], 'arch': _tiny_arch()})
    val = (os.path.join(DATA, 'hr'), None, 64, ['clean'])
    weights = tmp_path / 'weights'
    weights.mkdir()
    good, bad = _save(tmp_path / 'good.pth', True), _save(tmp_path / 'bad.pth', False)
    rows = {name: publish.evaluate_network(publish.load_network(_tiny_arch(), path), val, ['clean'], 'cpu', False)
            for name, path in (('good', good), ('bad', bad))}
    assert rows['good']['clean']['psnr'] > rows['bad']['clean']['psnr'] + 3

    first = publish.ship_stage(stage, bad, val, str(weights), 'cpu', False)
    assert first['shipped'] and first['shipped_before'] is None  # nothing shipped yet
    shipped = weights / stage.file
    verify_shipped(str(shipped), str(weights))  # SHA256SUMS rewritten by scripts/ship_weights.py
    better = publish.ship_stage(stage, good, val, str(weights), 'cpu', False)
    assert better['shipped'] and better['new'] > better['shipped_before']
    digest = sha256_file(shipped)
    worse = publish.ship_stage(stage, bad, val, str(weights), 'cpu', False)
    assert not worse['shipped'] and 'not above' in worse['reason'] and sha256_file(shipped) == digest
    verify_shipped(str(shipped), str(weights))

    monkeypatch.setitem(zoo.MODELS, stage.zoo_name, {**zoo.MODELS[stage.zoo_name],
                                                     'arch': {**_tiny_arch(), 'num_feat': 16}})
    other = publish.ship_stage(stage, good, val, str(weights), 'cpu', False)
    assert not other['shipped'] and 'ddrsr/zoo.py' in other['reason'] and sha256_file(shipped) == digest


# ------------------------------------------------------------------------------------------------- pack
def test_pack_resizes_photos_keeps_exact_validation_crops_and_stays_under_the_cap(tmp_path):
    from ddrsr.release.pack import pack

    root, templates = tmp_path / 'data_root', tmp_path / 'templates'
    photos = root / 'datasets' / 'set' / 'hr'
    photos.mkdir(parents=True)
    templates.mkdir()
    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.integers(0, 256, (1300, 2100, 3), dtype=np.uint8), (0, 0), 3)
    cv2.imwrite(str(photos / 'train_photo.png'), big)
    cv2.imwrite(str(photos / 'val_photo.png'), big[:301, :403])
    (root / 'val.txt').write_text('val_photo.png\n')
    for name in os.listdir(TINY):
        opt = yaml.safe_load(open(os.path.join(TINY, name)))
        for phase, dataset in opt['datasets'].items():
            dataset['dataroot_gt'] = str(root / 'datasets' / 'set' / ('train_sub' if phase == 'train' else 'hr'))
            if phase != 'train':
                dataset['meta_info'] = str(root / 'val.txt')
        (templates / name).write_text(yaml.safe_dump(opt))
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    (wheels / 'fake-1.0-py3-none-any.whl').write_bytes(b'wheel')

    with pytest.raises(DDRSRError, match='do not fit'):
        pack(str(tmp_path / 'too_small'), str(templates), str(wheels), max_bytes=2 ** 20, progress=False,
             data_root=str(root))
    summary = pack(str(tmp_path / 'bundle'), str(templates), str(wheels), progress=False, data_root=str(root))
    bundle = tmp_path / 'bundle'
    assert summary['bytes'] <= 40 * 2 ** 20 and summary['training_photos'] == 1
    train = cv2.imread(str(bundle / 'datasets' / 'set' / 'hr' / 'train_photo.jpg'))
    assert max(train.shape[:2]) == 1600 and train.shape[:2] == (990, 1600)
    crop = cv2.imread(str(bundle / 'datasets' / 'set' / 'hr' / 'val_photo.png'))
    assert crop.shape[:2] == (64, 64) and np.array_equal(crop, big[:301, :403][118:182, 169:233])
    for path in ('install.sh', 'ddrsr/release/runner.py', 'scripts/train_release.py', 'scripts/ship_weights.py',
                 'options/train_rrdb_ddr_real_x4_lite_v3.yml', 'options/train_srgan_encoder_x4_lite_blind.yml',
                 'wheels/fake-1.0-py3-none-any.whl'):
        assert (bundle / path).is_file(), path
    assert not glob.glob(str(bundle / '**' / '*.pth'), recursive=True)
    assert 'pip install --no-index --no-deps' in (bundle / 'install.sh').read_text()


def test_a_plan_that_does_not_fit_keeps_the_calibration_for_a_larger_budget(tmp_path, capsys):
    from ddrsr.release.runner import run_release
    from ddrsr.release.state import ReleaseState

    state = ReleaseState(str(tmp_path))
    state['calibration'] = {**calibration(1.6, threads=1), 'device': 'cpu'}
    state.save()
    with pytest.raises(DDRSRError, match='larger --budget'):
        run_release(str(tmp_path), 5, 'cpu', templates_dir=TINY, dry_run=True, progress=False)
    result = run_release(str(tmp_path), 500, 'cpu', templates_dir=TINY, dry_run=True, progress=False)
    err = capsys.readouterr().err
    assert 'reusing the calibration' in err and 'calibrating' not in err
    assert result['calibration']['gain'] == 1.6 and result['plan']['lanes'] == 2
    assert not glob.glob(str(tmp_path / 'calibration' / '*.json'))  # nothing was measured
    opt = yaml.safe_load((tmp_path / 'options' / 'train_rrdb_x4_lite.yml').read_text())
    assert opt['train']['total_iter'] == result['plan']['stages']['rrdb_bn']['iterations']
    assert opt['path']['pretrain_network_g'] == str(tmp_path / 'weights' / 'rrdb_clean_x4_lite.pth')
