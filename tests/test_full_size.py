"""The full-size RRDBNet-DDR on Real-ESRGAN's x4plus trunk: identity at init, the delta file, the detail knob,
and the training options that fine-tune it (frozen trunk, per-part learning rates)."""
import glob
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from conftest import DATA, ROOT
from ddrsr import zoo
from ddrsr.archs import RRDBNetDDR
from ddrsr.errors import DDRSRError
from ddrsr.loader import build_generator, load
from ddrsr.weights.checkpoint import load_state_dict_file
from ddrsr.weights.delta import compose_state, delta_state
from tiny_models import TINY_ENCODER


def _x(seed=0, size=(16, 12)):
    return torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(seed))


def test_a_fresh_rrdbnet_ddr_on_the_x4plus_trunk_computes_x4plus_exactly():
    """What training starts from: the x4plus state loaded non-strictly, StyleMods at zero, any embedding."""
    x4plus = load('realesrgan_x4plus').network
    fresh = build_generator(zoo.MODELS['rrdb_ddr_real_x4']['arch']).eval()
    missing, unexpected = fresh.load_state_dict(x4plus.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(('style_mods.', 'encoder.', 'clean_embedding')) for k in missing)
    x = _x()
    with torch.no_grad():
        assert torch.equal(fresh(x), x4plus(x))
        assert torch.equal(fresh(x, embedding=torch.randn(1, 64)), x4plus(x))


def test_detail_1_is_x4plus_and_detail_0_is_the_fine_tuned_model():
    x4plus = load('realesrgan_x4plus').network
    x = _x(1)
    with torch.no_grad():
        reference = x4plus(x)
        at_one = load('rrdb_ddr_real_x4', detail=1).network(x)
        at_zero = load('rrdb_ddr_real_x4', detail=0).network(x)
    assert torch.equal(at_one, reference)  # StyleMods faded to the identity, x4plus's own head
    assert (at_zero - reference).abs().mean() > 1e-3  # the fine-tune did move it


def _high_frequency_energy(image):
    """Mean squared Laplacian of the luma: what sharpening and painted texture raise."""
    luma = image[:, 0] * 0.299 + image[:, 1] * 0.587 + image[:, 2] * 0.114
    kernel = torch.tensor([[0., 1., 0.], [1., -4., 1.], [0., 1., 0.]])[None, None]
    return float(F.conv2d(luma[:, None], kernel).pow(2).mean())


def test_high_frequency_energy_rises_monotonically_with_detail():
    from ddrsr.inference import read_image

    # A 96 px crop (about 20 s on one thread). On a 48 px crop of the same photo the first step, 0 -> 0.25, dipped by
    # 0.7 % (1.600e-4 -> 1.589e-4) while the rest rose: the property holds for photo-sized regions, not every patch.
    rgb = read_image(os.path.join(ROOT, 'inputs', 'seeding_detail.jpg')).rgb[32:128, 32:128]
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    energies = []
    with torch.no_grad():
        for detail in (0, 0.25, 0.5, 0.75, 1):
            energies.append(_high_frequency_energy(load('rrdb_ddr_real_x4', detail=detail).network(x).clamp(0, 1)))
    assert all(b > a for a, b in zip(energies, energies[1:])), energies


def test_the_delta_file_holds_only_what_differs_from_x4plus():
    from safetensors import safe_open

    path = zoo.shipped_file('rrdb_ddr_real_x4')
    with safe_open(path, framework='pt') as f:
        keys, meta = set(f.keys()), f.metadata()
    assert meta['ddrsr.base_model'] == 'realesrgan_x4plus'
    assert not any(k.startswith(('body.', 'conv_first.', 'conv_body.')) for k in keys)  # the frozen trunk
    assert any(k.startswith('style_mods.') for k in keys) and any(k.startswith('encoder.') for k in keys)
    assert os.path.getsize(path) < 4 * 2 ** 20


def test_delta_and_compose_round_trip_on_a_tiny_network():
    torch.manual_seed(0)
    base = RRDBNetDDR(num_feat=8, num_block=2, num_grow_ch=4, use_ddr=False).state_dict()
    tuned = RRDBNetDDR(num_feat=8, num_block=2, num_grow_ch=4, use_ddr=True, encoder=TINY_ENCODER)
    tuned.load_state_dict(base, strict=False)
    with torch.no_grad():
        tuned.conv_last.weight.add_(1)
        tuned.style_mods[0].to_beta.bias.fill_(0.5)
    full = tuned.state_dict()
    delta = delta_state(full, base)
    assert 'conv_last.weight' in delta and 'conv_first.weight' not in delta and 'style_mods.0.to_beta.bias' in delta
    for key, value in compose_state(delta, base, 0.0).items():
        torch.testing.assert_close(value, full[key].float(), rtol=0, atol=0, equal_nan=True)  # NaN: clean_embedding
    halfway = compose_state(delta, base, 0.5, fade=['style_mods'], style='fade')
    assert torch.allclose(halfway['conv_last.weight'], (full['conv_last.weight'] + base['conv_last.weight']) / 2)
    assert torch.allclose(halfway['style_mods.0.to_beta.bias'], torch.full((8,), 0.25))
    kept = compose_state(delta, base, 1.0, fade=['style_mods'], style='keep')
    assert torch.equal(kept['style_mods.0.to_beta.bias'], full['style_mods.0.to_beta.bias'])
    with pytest.raises(DDRSRError, match='between 0'):
        compose_state(delta, base, 1.5)


def test_detail_is_refused_where_there_is_no_knob(capsys):
    from ddrsr.cli.upscale import main
    from ddrsr.inference import Upsampler

    with pytest.raises(DDRSRError, match='no detail knob'):
        Upsampler('rrdb_ddr_real_x4_lite', detail=0.5, device='cpu', backend='torch')
    assert main(['-n', 'rrdb_clean_x4_lite', '--detail', '0.3', '-i', os.path.join(ROOT, 'inputs')]) == 2
    assert 'no detail knob' in capsys.readouterr().err


def _smoke_options(tmp_path, train_overrides):
    with open(os.path.join(DATA, 'train_rrdb_ddr_smoke.yml')) as f:
        opt = yaml.safe_load(f)
    for dataset in opt['datasets'].values():
        dataset['dataroot_gt'] = os.path.join(DATA, 'hr')
    from ddrsr.archs import SRResNet
    from basicsr.archs.rrdbnet_arch import RRDBNet

    torch.manual_seed(0)
    torch.save({'params_ema': SRResNet(num_feat=8, num_block=2).state_dict()}, tmp_path / 'encoder.pth')
    plain = RRDBNet(3, 3, scale=4, num_feat=8, num_block=2, num_grow_ch=4).state_dict()
    torch.save({'params_ema': plain}, tmp_path / 'trunk.pth')
    opt['path'].update(pretrain_network_encoder=str(tmp_path / 'encoder.pth'),
                       pretrain_network_g=str(tmp_path / 'trunk.pth'))
    opt['train'].update(train_overrides)
    opt['val']['val_freq'] = 100
    path = tmp_path / 'opt.yml'
    path.write_text(yaml.safe_dump(opt))
    return str(path), opt['name'], plain


def test_frozen_trunk_stays_put_while_stylemods_and_head_train(tmp_path):
    from ddrsr.training.pipeline import train

    opt_path, name, plain = _smoke_options(tmp_path, {
        'frozen': ['conv_first', 'body', 'conv_body'], 'lr_scale': {'conv_up1': 0.5, 'conv_last': 0.5},
        'optim_g': {'type': 'Adam', 'lr': 1e-2}, 'ema_decay': 0})
    train(root_path=tmp_path, argv=['-opt', opt_path])
    experiment = tmp_path / 'experiments' / name
    params = load_state_dict_file(str(experiment / 'models' / 'net_g_latest.pth'), 'params')
    for key in ('conv_first.weight', 'body.1.rdb3.conv5.weight', 'conv_body.bias'):
        assert torch.equal(params[key], plain[key]), key
    assert not torch.equal(params['conv_up1.weight'], plain['conv_up1.weight'])
    assert not torch.equal(params['conv_hr.weight'], plain['conv_hr.weight'])
    logs = ''.join(open(p).read() for p in glob.glob(str(experiment / '*.log')))
    assert 'in 2 group(s) (lr 1.00e-02, 5.00e-03)' in logs or 'in 2 group(s) (lr 5.00e-03, 1.00e-02)' in logs


def test_a_misspelt_frozen_prefix_fails_before_training(tmp_path):
    from ddrsr.training.pipeline import train

    opt_path, _, _ = _smoke_options(tmp_path, {'frozen': ['trunk']})
    with pytest.raises(DDRSRError, match=r"train.frozen: \['trunk'\] match no parameter"):
        train(root_path=tmp_path, argv=['-opt', opt_path])


def test_frozen_is_refused_where_the_model_would_ignore_it():
    from ddrsr.training.options import check_options

    with open(os.path.join(DATA, 'train_srgan_encoder_smoke.yml')) as f:
        opt = yaml.safe_load(f)
    opt['train']['frozen'] = ['body']
    with pytest.raises(DDRSRError, match='read by DDRSRModel only'):
        check_options(opt, 'encoder.yml')


def test_ship_weights_refuses_to_write_a_pth_over_a_safetensors_only_model(tmp_path):
    from ddrsr.weights.companions import ship_checkpoint

    torch.save({'params_ema': {'w': torch.zeros(1)}}, tmp_path / 'ckpt.pth')
    with pytest.raises(DDRSRError, match='--delta rrdb_ddr_real_x4'):
        ship_checkpoint(str(tmp_path / 'ckpt.pth'), str(tmp_path / 'rrdb_ddr_real_x4.safetensors'))
    with pytest.raises(DDRSRError, match='import script'):
        ship_checkpoint(str(tmp_path / 'ckpt.pth'), str(tmp_path / 'realesrgan_x4plus.safetensors'))


def test_strength_works_on_the_full_model_residual_noise_falls():
    """Its clean embedding is in the shipped file, and on a noise20 input the noise left in the output falls as the
    strength rises (0 treats the photo as clean, 1.5 restores harder)."""
    from ddrsr.analysis.strength import residual_noise_std
    from ddrsr.data.degradations import degrade_with_spec
    from ddrsr.inference import read_image

    loaded = load('rrdb_ddr_real_x4')
    assert loaded.has_clean_embedding
    rgb = read_image(os.path.join(ROOT, 'inputs', 'seeding_small.png')).rgb[16:144, 40:168]
    hr = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].float()
    lq = degrade_with_spec(hr, 'noise20', scale=4, seed=0)
    residual = []
    with torch.no_grad():
        embedding = loaded.network.encode(lq)
        for strength in (0.0, 0.5, 1.0, 1.5):
            sr = loaded.network(lq, embedding=loaded.network.steer(embedding, strength)).clamp(0, 1)
            residual.append(residual_noise_std(sr, hr))
    assert all(b < a for a, b in zip(residual, residual[1:])), residual


def test_the_full_model_shares_the_lite_defaults_encoder_bit_for_bit():
    """So the inspect regressors fit it: --strength auto and ddrsr serve work on it."""
    from ddrsr.inspection.regressors import encoder_fingerprint

    assert (encoder_fingerprint(load('rrdb_ddr_real_x4').network.encoder)
            == encoder_fingerprint(load('rrdb_ddr_real_x4_lite').network.encoder))


def test_strength_auto_has_a_table_for_the_full_model_at_its_default_detail():
    """The shipped regressors carry a strength table for these weights (at the default detail), so --strength auto
    applies it instead of falling back to 1; another detail composes other weights and falls back, saying so."""
    from ddrsr.inspection import DEFAULT_REGRESSORS, recommend_strength
    from ddrsr.inspection.regressors import DDRRegressors

    regressors = DDRRegressors.load(DEFAULT_REGRESSORS)
    strength, basis = recommend_strength({'jpeg30': 1.0}, regressors, load('rrdb_ddr_real_x4').network)
    table = regressors.heads['strength@rrdb_ddr_real_x4']
    assert basis.startswith('confidence-weighted')
    assert strength == dict(zip((str(s) for s in table['specs']), table['best']))['jpeg30']
    _, basis = recommend_strength({'jpeg30': 1.0}, regressors, load('rrdb_ddr_real_x4', detail=0).network)
    assert basis.startswith('default 1: no strength table')
