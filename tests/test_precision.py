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
    """A model declares bf16 for ``auto`` exactly when docs/BENCHMARKS_PRECISION.md measured its torch bf16 within
    budget; no model declares int8 (the lite one is within budget there, but no faster than onnxruntime fp32)."""
    from conftest import ROOT
    from ddrsr.loader import load
    from ddrsr.zoo import DEFAULT_MODEL, MODELS

    declared = {name: entry.get('cpu_precision', 'fp32') for name, entry in MODELS.items()}
    with open(f'{ROOT}/docs/BENCHMARKS_PRECISION.md', encoding='utf-8') as handle:
        rows = [[cell.strip() for cell in line.strip().strip('|').split('|')] for line in handle
                if line.startswith('| rrdb_') or line.startswith('| realesrgan')]
    measured = {row[0]: row[-1] == 'within' for row in rows  # the precision table's rows end with the budget
                if row[1:3] == ['torch', 'bf16'] and row[-1] in ('within', '**outside**')}
    assert DEFAULT_MODEL in measured and 'rrdb_ddr_real_x4' in measured
    for name, within in measured.items():
        assert (declared[name] == 'bf16') == within, name
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


def test_int8_recipe_keeps_the_end_convolutions_in_fp32(tmp_path):
    """The shipped recipe quantizes the convolutions only, and not the first and last ones: their weights reach
    the graph through no DequantizeLinear; every other convolution's do."""
    import onnx

    from ddrsr.inference.precision_ends import FULL_PRECISION_ENDS
    from ddrsr.inference.quantize import DEFAULT_RECIPE, fp32_nodes

    _int8(tiny_ddr_net(), tmp_path)
    quantized = onnx.load(str(next(tmp_path.glob('generator.int8.*.onnx'))))
    made_by = {output: node for node in quantized.graph.node for output in node.output}
    convolutions = [node for node in quantized.graph.node if node.op_type == 'Conv']
    first, last = DEFAULT_RECIPE.fp32_ends
    assert DEFAULT_RECIPE.op_types == ('Conv',) and (first, last) == FULL_PRECISION_ENDS

    def weight_is_int8(conv):
        producer = made_by.get(conv.input[1])
        return producer is not None and producer.op_type == 'DequantizeLinear'

    kept = convolutions[:first] + convolutions[-last:]
    assert not any(weight_is_int8(conv) for conv in kept)
    assert all(weight_is_int8(conv) for conv in convolutions[first:-last])
    readers = {}
    for node in quantized.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    for node in quantized.graph.node:  # only convolutions are quantized: each activation Q/DQ pair is at one
        if node.op_type != 'QuantizeLinear' or node.input[0] not in made_by:
            continue
        dequantized = [d for d in readers.get(node.output[0], []) if d.op_type == 'DequantizeLinear']
        around_conv = made_by[node.input[0]].op_type == 'Conv' or any(
            r.op_type == 'Conv' for d in dequantized for r in readers.get(d.output[0], []))
        assert around_conv, node.name
    assert DEFAULT_RECIPE.float_residuals
    fp32_graph = str(next(tmp_path.glob('generator.onnx')))
    assert sorted(fp32_nodes(fp32_graph, DEFAULT_RECIPE)) == sorted(conv.name for conv in kept)


def test_float_residuals_rewires_only_activation_reads_of_residual_ops():
    from onnx import helper

    from ddrsr.inference.quantize import float_residual_inputs

    nodes = [helper.make_node('QuantizeLinear', ['x', 's', 'z'], ['x_q'], name='q'),
             helper.make_node('DequantizeLinear', ['x_q', 's', 'z'], ['x_dq'], name='dq'),
             helper.make_node('DequantizeLinear', ['w_q', 's', 'z'], ['w_dq'], name='wdq'),
             helper.make_node('Conv', ['x_dq', 'w_dq'], ['y'], name='conv'),
             helper.make_node('Add', ['x_dq', 'y'], ['out'], name='add'),
             helper.make_node('Mul', ['w_dq', 'y'], ['out2'], name='mul'),
             helper.make_node('QuantizeLinear', ['y', 's', 'z'], ['y_q'], name='yq'),
             helper.make_node('DequantizeLinear', ['y_q', 's', 'z'], ['y_dq'], name='ydq'),
             helper.make_node('Mul', ['y_dq', 's'], ['out3'], name='scale')]
    graph = helper.make_graph(nodes, 'g', [], [])
    assert float_residual_inputs(graph) == 1
    by_name = {node.name: node for node in graph.node}
    assert list(by_name['add'].input) == ['x', 'y']  # the skip connection reads fp32
    assert list(by_name['conv'].input) == ['x_dq', 'w_dq']  # the convolution keeps its int8 input
    assert list(by_name['mul'].input) == ['w_dq', 'y']  # a weight's dequantization is not an activation
    assert list(by_name['scale'].input) == ['y_dq', 's']  # an int8 convolution's output stays int8 for its kernel


def test_int8_recipes_have_their_own_cache_files_and_a_misspelt_node_is_an_error(tmp_path):
    from ddrsr.inference import quantize

    recipe = quantize.Int8Recipe(method='minmax', keep_fp32=('/model/no_such_layer/*',))
    assert recipe.key() != quantize.DEFAULT_RECIPE.key()
    assert quantize.Int8Recipe().key() == quantize.Int8Recipe().key()
    _int8(tiny_ddr_net(), tmp_path)
    with pytest.raises(DDRSRError, match='no_such_layer'):
        quantize.fp32_nodes(str(next(tmp_path.glob('generator.onnx'))), recipe)
    with pytest.raises(DDRSRError, match='calibration method'):
        quantize.Int8Recipe(method='entropy')


def test_precision_ends_are_the_first_and_last_convolutions_in_execution_order():
    from torch import nn

    from ddrsr.inference.precision_ends import convolutions_in_execution_order, end_convolutions

    class Backwards(nn.Module):  # registered in the reverse of the order it runs them
        def __init__(self):
            super().__init__()
            self.late, self.middle, self.early = (nn.Conv2d(3, 3, 3, padding=1) for _ in range(3))

        def forward(self, x):
            return self.late(self.middle(self.early(x)))

    net = Backwards()
    assert convolutions_in_execution_order(net) == [net.early, net.middle, net.late]
    assert end_convolutions(net, (1, 1)) == [net.early, net.late]
    ddr = tiny_ddr_net()
    ends = end_convolutions(ddr)
    assert ends[0] is ddr.conv_first and all(not any(m is e for m in ddr.encoder.modules()) for e in ends)
    assert len(ends) == 3


@needs_bf16
def test_bf16_runs_the_end_convolutions_in_fp32_and_the_rest_in_bf16(photo):
    from ddrsr.inference.precision_ends import end_convolutions

    net = tiny_ddr_net()
    up = Upsampler(model=LoadedModel.from_module(net), device='cpu', backend='torch', precision='bf16')
    dtypes = {}
    convolutions = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and
                    not any(m is e for e in net.encoder.modules())]
    def record(module, args, output):
        dtypes.setdefault(module, output.dtype)  # returns None: a hook's return value would replace the output

    hooks = [m.register_forward_hook(record) for m in convolutions]
    up.enhance(photo)
    for hook in hooks:
        hook.remove()
    ends = end_convolutions(net)
    assert all(dtypes[m] == torch.float32 for m in ends)
    assert all(dtypes[m] == torch.bfloat16 for m in convolutions if not any(m is e for e in ends))
    with torch.no_grad():  # outside autocast the same layers are untouched: an fp32 caller sees fp32 throughout
        assert net.conv_first(torch.rand(1, 3, 8, 8)).dtype == torch.float32


@needs_bf16
def test_a_model_that_declares_no_bf16_ends_runs_every_convolution_in_bf16(photo):
    import dataclasses

    net = tiny_ddr_net()
    loaded = dataclasses.replace(LoadedModel.from_module(net), bf16_fp32_ends=(0, 0))
    up = Upsampler(model=loaded, device='cpu', backend='torch', precision='bf16')
    dtypes = []
    hooks = [m.register_forward_hook(lambda module, args, output: dtypes.append(output.dtype))
             for m in net.modules() if isinstance(m, torch.nn.Conv2d) and
             not any(m is e for e in net.encoder.modules())]
    up.enhance(photo)
    for hook in hooks:
        hook.remove()
    assert dtypes and set(dtypes) == {torch.bfloat16}


@needs_bf16
def test_bf16_leaves_the_embedding_as_fp32_computes_it(photo):
    from ddrsr.inference.torch_backend import TorchBackend

    net = tiny_ddr_net()
    lq = torch.rand(1, 3, 24, 24)
    fp32 = TorchBackend(net, torch.device('cpu'), 'fp32').encode(lq)
    bf16 = TorchBackend(net, torch.device('cpu'), 'bf16').encode(lq)
    assert bf16.dtype == torch.float32 and torch.equal(bf16, fp32)


def test_zoo_models_declare_their_bf16_ends():
    from ddrsr.defaults import FULL_PRECISION_ENDS
    from ddrsr.loader import load

    # the lite default was measured without them (docs/BENCHMARKS_PRECISION.md); an unmeasured model keeps them
    assert load('rrdb_ddr_real_x4_lite', device='cpu').bf16_fp32_ends == (0, 0)
    assert load('rrdb_ddr_real_x4', device='cpu').bf16_fp32_ends == (0, 2)
    assert LoadedModel.from_module(tiny_ddr_net()).bf16_fp32_ends == FULL_PRECISION_ENDS
