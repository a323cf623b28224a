"""--strength: the embedding moved along e_clean + s (e - e_clean), the clean_embedding buffer and its loading."""
import math

import numpy as np
import pytest
import torch

from ddrsr.cli import upscale
from tiny_models import tiny_ddr_net, tiny_plain_net
from ddrsr.weights.checkpoint import load_into
from ddrsr.errors import DDRSRError
from ddrsr.inference import Upsampler


def _with_clean(seed=0):
    model = tiny_ddr_net(seed)
    model.clean_embedding.copy_(torch.linspace(-1, 1, model.clean_embedding.numel()))
    return model


@pytest.fixture
def photo():
    return np.random.RandomState(0).randint(0, 256, (40, 44, 3)).astype(np.uint8)


def test_checkpoint_without_clean_embedding_loads_and_keeps_nan(tmp_path):
    state = tiny_ddr_net().state_dict()
    del state['clean_embedding']
    torch.save({'params_ema': state}, tmp_path / 'old.pth')
    model = load_into(tiny_ddr_net(seed=1), str(tmp_path / 'old.pth'), 'hint')
    assert torch.isnan(model.clean_embedding).all() and not model.has_clean_embedding
    assert torch.equal(model.conv_first.weight, state['conv_first.weight'])
    del state['conv_first.bias']  # any other missing key is still an error
    torch.save({'params_ema': state}, tmp_path / 'broken.pth')
    with pytest.raises(DDRSRError, match='conv_first.bias'):
        load_into(tiny_ddr_net(), str(tmp_path / 'broken.pth'), 'hint')


def test_saved_clean_embedding_round_trips(tmp_path):
    torch.save({'params_ema': _with_clean().state_dict()}, tmp_path / 'new.pth')
    model = load_into(tiny_ddr_net(seed=1), str(tmp_path / 'new.pth'), 'hint')
    assert torch.equal(model.clean_embedding, _with_clean().clean_embedding) and model.has_clean_embedding


def test_unknown_clean_embedding_allows_only_strength_one(photo):
    model = tiny_ddr_net()
    default = Upsampler(model=model, device='cpu').enhance(photo)
    assert np.array_equal(Upsampler(model=model, device='cpu', strength=1).enhance(photo), default)
    with pytest.raises(DDRSRError, match='compute_clean_embedding.py'):
        Upsampler(model=model, device='cpu', strength=0.5)
    with pytest.raises(DDRSRError, match='compute_clean_embedding.py'):
        model.steer(torch.zeros(1, 8), 0.0)


@pytest.mark.parametrize('strength', [-0.1, 1.6, math.nan, 'strong'])
def test_strength_out_of_range_is_a_user_error(strength):
    with pytest.raises(DDRSRError, match='strength'):
        Upsampler(model=_with_clean(), device='cpu', strength=strength)


def test_plain_network_refuses_other_strengths():
    with pytest.raises(DDRSRError, match='no DDR embedding'):
        Upsampler(model=tiny_plain_net(), device='cpu', strength=0.5)


@pytest.mark.parametrize('strength', [0.0, 0.5, 1.5])
def test_tiles_share_one_steered_embedding(photo, strength, monkeypatch):
    model = _with_clean()
    upsampler = Upsampler(model=model, device='cpu', tile=16, tile_pad=4, strength=strength, channels_last=False,
                          backend='torch')
    seen = []
    forward = type(model).forward
    monkeypatch.setattr(type(model), 'forward', lambda self, x, embedding=None: seen.append(embedding) or
                        forward(self, x, embedding=embedding))
    upsampler.enhance(photo)
    lq = torch.from_numpy(photo.transpose(2, 0, 1).astype(np.float32) / 255)[None]
    with torch.no_grad():
        e_photo = model.encode(lq)
    expected = model.clean_embedding + strength * (e_photo - model.clean_embedding)
    assert len(seen) == 9  # 3 x 3 tiles
    for embedding in seen:
        assert torch.allclose(embedding, expected, atol=1e-5)


def test_strength_changes_the_output_and_one_is_unchanged(photo):
    model = _with_clean()
    upsampler = Upsampler(model=model, device='cpu')
    outputs = {}
    for strength in (0.0, 1.0, 1.5):
        upsampler.strength = strength
        outputs[strength] = upsampler.enhance(photo).astype(float)
    assert np.array_equal(outputs[1.0], Upsampler(model=tiny_ddr_net(), device='cpu').enhance(photo))
    assert np.abs(outputs[0.0] - outputs[1.0]).mean() > 1 and np.abs(outputs[1.5] - outputs[1.0]).mean() > 1


def test_onnx_backend_applies_the_same_strength(photo, tmp_path):
    model = _with_clean()
    torch_out = Upsampler(model=model, device='cpu', strength=0.25, tile=24, backend='torch').enhance(photo)
    onnx_out = Upsampler(model=model, device='cpu', strength=0.25, tile=24, backend='onnx',
                         onnx_dir=str(tmp_path / 'onnx')).enhance(photo)
    assert np.abs(torch_out.astype(int) - onnx_out.astype(int)).max() <= 1
    assert np.abs(torch_out.astype(int) - Upsampler(model=model, device='cpu', tile=24, backend='torch').enhance(photo)).mean() > 1


def _tiny_hr_folder(folder, count=3, size=32):
    import cv2

    folder.mkdir()
    rng = np.random.RandomState(0)
    for index in range(count):
        cv2.imwrite(str(folder / f'crop_s{index:03d}.png'), rng.randint(0, 256, (size, size, 3)).astype(np.uint8))
    return str(folder)


@pytest.mark.parametrize('fp16', [False, True])
def test_write_clean_embedding(tiny_zoo, tmp_path, fp16):
    from ddrsr.analysis.clean_embedding import clean_patches, write_clean_embedding

    source = tmp_path / 'source.pth'
    state = torch.load(tiny_zoo, weights_only=True)['params_ema']
    del state['clean_embedding']  # as in every file shipped before the buffer existed
    torch.save({'params_ema': {k: v.half() if fp16 else v for k, v in state.items()}}, source)
    hr = _tiny_hr_folder(tmp_path / 'hr')
    out = tmp_path / 'with_clean.pth'
    summary = write_clean_embedding('tiny_ddr', str(out), hr, hr_size=32, weights=str(source))
    assert summary['patches'] == 3 and summary['lr_size'] == 8 and summary['dtype'] == ('float16' if fp16 else 'float32')
    written = torch.load(out, weights_only=True)['params_ema']
    assert written['clean_embedding'].dtype == (torch.float16 if fp16 else torch.float32)
    assert set(written) == set(state) | {'clean_embedding'}
    model = load_into(tiny_ddr_net(), str(source), 'hint')
    patches = clean_patches(hr, None, 3, 32, 4)
    with torch.no_grad():
        expected = model.encode(patches).mean(0)
    assert torch.allclose(written['clean_embedding'].float(), expected, atol=1e-2 if fp16 else 1e-5)
    with pytest.raises(DDRSRError, match='must differ from the input'):
        write_clean_embedding('tiny_ddr', str(source), hr, weights=str(source))
    with pytest.raises(DDRSRError, match='at least 64 px'):
        write_clean_embedding('tiny_ddr', str(tmp_path / 'x.pth'), hr, hr_size=64, weights=str(source))


def test_inference_cli_strength_errors_are_one_line(tiny_zoo, tmp_path, capsys):
    inference = upscale  # what python inference.py runs
    image = tmp_path / 'in' / 'a.png'
    _tiny_hr_folder(tmp_path / 'in', count=1, size=20)
    assert inference.main(['-i', str(image.parent), '-o', str(tmp_path / 'out'), '-n', 'tiny_ddr',
                           '--strength', '0.5']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('ddrsr: error:') and 'compute_clean_embedding.py' in err[0]
    assert inference.main(['-i', str(image.parent), '-o', str(tmp_path / 'out'), '-n', 'tiny_ddr',
                           '--strength', '2']) == 2
    assert 'from 0' in capsys.readouterr().err


def test_strength_measurements_and_targets():
    from ddrsr.analysis.strength import STRENGTHS, measure, noise_transfer_std, residual_noise_std, targets

    model = _with_clean()
    rng = torch.Generator().manual_seed(0)
    gt = torch.rand(1, 3, 48, 48, generator=rng)
    lq = torch.nn.functional.interpolate(gt, scale_factor=0.25, mode='area')
    noisy = (lq + 0.08 * torch.randn(lq.shape, generator=rng)).clamp(0, 1)
    pairs = {'clean': [(lq, gt)], 'noise20': [(noisy, gt)]}
    table, noise, base, bicubic = measure(model, tiny_ddr_net(1), pairs, progress=False)
    assert set(table['noise20']) == set(STRENGTHS) and set(noise) == set(STRENGTHS)
    assert all(value > 0 for value in noise[0.0])
    with torch.no_grad():  # no input noise -> no noise in the output
        assert noise_transfer_std(model, lq, lq, model.encode(lq)) == 0
    assert residual_noise_std(gt, gt) == 0
    verdict = targets(table, noise, base)
    assert verdict['residual'] == [noise[s][0] for s in STRENGTHS]
    assert verdict['clean_gap'] == table['clean'][0.0] - base['clean']
    assert verdict['clean_met'] == (verdict['clean_gap'] >= -0.2)
    falling = {s: (3.0 - s, 0.0, 0.0) for s in STRENGTHS}
    assert targets(table, falling, base)['noise_falls']
    assert not targets(table, {**falling, 1.5: (9.0, 0.0, 0.0)}, base)['noise_falls']
    assert not targets({'clean': {0.0: 30.0}}, falling, {'clean': 30.25})['clean_met']


@pytest.mark.parametrize('name', ['ddrsr.analysis.strength', 'ddrsr.analysis.clean_embedding'])
def test_docstring_examples_run(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
