"""Inference precision: bf16 autocast on CPUs with native bf16, its closeness to fp32, seamless tiles in every
precision, and one clear error (or an fp32 fallback under auto) where a precision does not apply."""
import dataclasses

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


@pytest.mark.parametrize('precision', ['fp32', pytest.param('bf16', marks=needs_bf16), 'fp16', 'int8'])
def test_tiles_are_seamless_in_every_precision(photo, precision, tmp_path):
    if precision == 'int8':  # the quantized graph: same weights, both Upsamplers share one cached graph
        net = tiny_ddr_net()
        whole = _int8(net, tmp_path).enhance(photo)
        tiled = _int8(net, tmp_path, tile=24).enhance(photo)
    else:
        whole = _up(precision).enhance(photo)
        tiled = _up(precision, tile=24).enhance(photo)
    assert np.abs(tiled.astype(np.int16) - whole.astype(np.int16)).max() <= 1


def _int8(net, onnx_dir, **kwargs):
    return Upsampler(model=LoadedModel.from_module(net), device='cpu', backend='auto', precision='int8',
                     onnx_dir=str(onnx_dir), **kwargs)


def test_int8_runs_a_quantized_graph_close_to_fp32(photo, tmp_path):
    net = tiny_ddr_net()
    up = _int8(net, tmp_path)
    assert up.precision_name == 'int8' and up.backend_name == 'onnx'
    quantized = list(tmp_path.glob('generator.int8.*.onnx'))
    assert len(quantized) == 1 and quantized[0].with_suffix('.json').is_file()
    import onnx

    ops = {node.op_type for node in onnx.load(str(quantized[0])).graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops  # QDQ: the convolutions run on int8
    fp32 = Upsampler(model=LoadedModel.from_module(net), device='cpu', backend='torch', precision='fp32')
    difference = np.abs(up.enhance(photo) - fp32.enhance(photo))
    assert 0 < difference.mean() < 0.02  # float output in [0, 1]: int8 changes it, a little


def test_int8_graph_is_reused_across_processes(tmp_path):
    import subprocess
    import sys

    net = tiny_ddr_net()
    torch.save(net.state_dict(), tmp_path / 'net.pth')
    _int8(net, tmp_path / 'onnx')
    quantized = next((tmp_path / 'onnx').glob('generator.int8.*.onnx'))
    stamp = quantized.stat().st_mtime_ns
    script = (
        'import sys, torch; sys.path.insert(0, "tests")\n'
        'from tiny_models import tiny_ddr_net\n'
        'import ddrsr.inference.quantize as quantize\n'
        'def refuse(*args, **kwargs): raise SystemExit("quantized again")\n'
        'quantize.quantize_generator = refuse\n'
        'from ddrsr.inference import Upsampler\n'
        'from ddrsr.loader import LoadedModel\n'
        f'net = tiny_ddr_net(); net.load_state_dict(torch.load({str(tmp_path / "net.pth")!r}))\n'
        f'up = Upsampler(model=LoadedModel.from_module(net), device="cpu", precision="int8", onnx_dir={str(tmp_path / "onnx")!r})\n'
        'print(up.precision_name)\n')
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == 'int8' and quantized.stat().st_mtime_ns == stamp


def test_int8_is_cpu_and_onnx_only(tmp_path):
    cpu = torch.device('cpu')
    assert resolve_precision('auto', cpu, 'int8') == 'int8'  # a model measured within budget in int8
    assert resolve_precision('int8', cpu) == 'int8'
    with pytest.raises(DDRSRError, match='int8 runs on the CPU'):
        resolve_precision('int8', torch.device('cuda'))
    with pytest.raises(DDRSRError, match='int8 runs on the onnx backend'):
        Upsampler(model=LoadedModel.from_module(tiny_ddr_net()), device='cpu', backend='torch', precision='int8')


def test_auto_int8_falls_back_to_torch_fp32_with_one_warning(monkeypatch, tmp_path):
    from ddrsr.inference import quantize
    from ddrsr.inference.upsampler import BackendFallbackWarning

    def broken(*args, **kwargs):
        raise RuntimeError('no quantizer here')

    monkeypatch.setattr(quantize, 'cached_int8_generator', broken)
    loaded = LoadedModel.from_module(tiny_ddr_net())
    loaded = dataclasses.replace(loaded, cpu_precision='int8')
    with pytest.warns(BackendFallbackWarning, match='no quantizer here'):
        up = Upsampler(model=loaded, device='cpu', precision='auto', onnx_dir=str(tmp_path))
    assert (up.backend_name, up.precision_name) == ('torch', 'fp32')
    with pytest.raises(RuntimeError, match='no quantizer here'):  # asked for int8 by name: no silent fallback
        Upsampler(model=loaded, device='cpu', precision='int8', onnx_dir=str(tmp_path))


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
    with pytest.raises(DDRSRError, match="onnx backend runs fp32 or int8"):
        Upsampler(model=loaded, device='cpu', backend='onnx', precision='bf16')
    assert Upsampler(model=loaded, device='cpu', backend='auto', precision='bf16').backend_name == 'torch'


def test_cli_precision_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch_backend, 'cpu_supports_bf16', lambda: False)
    status = upscale_main(['-n', 'rrdb_clean_x4_lite', '--precision', 'bf16', '-i', 'inputs', '-o', str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2 and 'no native bf16' in err and 'Traceback' not in err


def test_calibration_crops_come_from_the_given_photos_degraded(tmp_path):
    from PIL import Image

    from conftest import ROOT
    from ddrsr.inference.quantize import make_calibration, read_calibration

    rng = np.random.default_rng(0)
    for index in range(3):
        Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)).save(tmp_path / f'{index}.png')
    option_file = f'{ROOT}/options/train_rrdb_ddr_real_x4_lite_v3.yml'
    output = make_calibration(str(tmp_path), None, option_file, str(tmp_path / 'calibration.npz'), count=3, lr_size=16)
    lq = read_calibration(output)
    assert lq.shape == (3, 3, 16, 16) and lq.dtype == np.float32 and 0 <= lq.min() and lq.max() <= 1
    with pytest.raises(DDRSRError, match='the calibration needs 4'):
        make_calibration(str(tmp_path), None, option_file, str(tmp_path / 'more.npz'), count=4, lr_size=16)
    with pytest.raises(DDRSRError, match='int8 cannot be calibrated'):
        read_calibration(str(tmp_path / 'missing.npz'))


def test_declared_cpu_precisions_are_the_measured_ones(monkeypatch):
    """Only the lite default is within the bf16 budget (docs/BENCHMARKS_PRECISION.md); no model is within int8's."""
    from ddrsr.loader import load
    from ddrsr.zoo import DEFAULT_MODEL, MODELS

    declared = {name: entry.get('cpu_precision', 'fp32') for name, entry in MODELS.items()}
    assert declared[DEFAULT_MODEL] == 'bf16' and declared['rrdb_ddr_real_x4'] == 'fp32'
    assert 'int8' not in declared.values()
    loaded = load(DEFAULT_MODEL, device='cpu')
    assert loaded.cpu_precision == 'bf16'
    monkeypatch.setattr(torch_backend, 'cpu_supports_bf16', lambda: False)
    up = Upsampler(model=loaded, device='cpu', precision='auto', backend='torch')
    assert up.precision_name == 'fp32'  # on a CPU without native bf16 the default stays fp32


def test_the_descriptor_decides_half_and_tiling():
    """``LoadedModel.supports_half``/``supports_tiling`` are read: auto on CUDA keeps such a model in fp32, fp16 and
    tiles are refused with one line."""
    assert resolve_precision('auto', torch.device('cuda'), supports_half=False) == 'fp32'
    assert resolve_precision('auto', torch.device('cuda')) == 'fp16'
    with pytest.raises(DDRSRError, match='does not support fp16'):
        resolve_precision('fp16', torch.device('cpu'), supports_half=False)
    loaded = dataclasses.replace(LoadedModel.from_module(tiny_ddr_net()), supports_tiling=False)
    with pytest.raises(DDRSRError, match='does not support tiling'):
        Upsampler(model=loaded, device='cpu', backend='torch', tile=32)
    assert Upsampler(model=loaded, device='cpu', backend='torch', tile=0).enhance_tensor(
        torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)
