"""Inference precision: bf16 autocast on CPUs with native bf16, its closeness to fp32, seamless tiles in every
precision, and one clear error (or an fp32 fallback under auto) where a precision does not apply."""
import numpy as np
import pytest
import torch

from ddrsr.cli.upscale import main as upscale_main
from ddrsr.errors import DDRSRError
from ddrsr.inference import Upsampler
from ddrsr.inference import torch_backend
from ddrsr.inference.torch_backend import resolve_precision
from ddrsr.loader import LoadedModel
from tiny_models import tiny_ddr_net

needs_bf16 = pytest.mark.skipif(not torch_backend.cpu_supports_bf16(), reason='this CPU has no native bf16')
ONE_LEVEL = 1 / 255


@pytest.fixture(scope='module')
def photo():
    rng = np.random.default_rng(1)
    return rng.random((44, 52, 3)).astype(np.float32)


def _up(precision, **kwargs):
    return Upsampler(model=LoadedModel.from_module(tiny_ddr_net()), device='cpu', backend='torch', precision=precision,
                     **kwargs)


@needs_bf16
def test_bf16_is_close_to_fp32_and_runs_in_bf16(photo):
    up = _up('bf16')
    assert up.precision_name == 'bf16' and up.backend_name == 'torch'
    fp32 = _up('fp32').enhance(photo)
    bf16 = up.enhance(photo)
    assert fp32.shape == bf16.shape
    difference = np.abs(bf16.astype(np.float32) - fp32.astype(np.float32))
    assert 0 < difference.mean() < 3  # uint8 levels: bf16 does change the arithmetic, a little


@pytest.mark.parametrize('precision', ['fp32', pytest.param('bf16', marks=needs_bf16), 'fp16'])
def test_tiles_are_seamless_in_every_precision(photo, precision):
    whole = _up(precision).enhance(photo)
    tiled = _up(precision, tile=24).enhance(photo)
    assert np.abs(tiled.astype(np.int16) - whole.astype(np.int16)).max() <= 1


def test_auto_picks_bf16_only_for_models_that_declare_it(monkeypatch):
    cpu = torch.device('cpu')
    monkeypatch.setattr(torch_backend, 'cpu_supports_bf16', lambda: True)
    assert resolve_precision('auto', cpu, 'bf16') == 'bf16'
    assert resolve_precision('auto', cpu, 'fp32') == 'fp32'
    monkeypatch.setattr(torch_backend, 'cpu_supports_bf16', lambda: False)
    assert resolve_precision('auto', cpu, 'bf16') == 'fp32'  # no native bf16: auto stays in fp32
    with pytest.raises(DDRSRError, match='no native bf16'):
        resolve_precision('bf16', cpu)
    with pytest.raises(DDRSRError, match='unknown precision'):
        resolve_precision('int4', cpu)


@needs_bf16
def test_bf16_needs_the_torch_backend():
    loaded = LoadedModel.from_module(tiny_ddr_net())
    with pytest.raises(DDRSRError, match='onnx backend runs fp32'):
        Upsampler(model=loaded, device='cpu', backend='onnx', precision='bf16')
    assert Upsampler(model=loaded, device='cpu', backend='auto', precision='bf16').backend_name == 'torch'


def test_cli_precision_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch_backend, 'cpu_supports_bf16', lambda: False)
    status = upscale_main(['-n', 'rrdb_clean_x4_lite', '--precision', 'bf16', '-i', 'inputs', '-o', str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2 and 'no native bf16' in err and 'Traceback' not in err
