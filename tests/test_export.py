"""ONNX export: one graph and the split pair, onnxruntime parity, the dead encoder tail, the ONNX backend."""
import os

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from ddrsr.export import count_ops, export_onnx, export_split, verify_onnx
from ddrsr.inference import Upsampler
from ddrsr.inference.onnx_backend import cached_split_pair

from tiny_models import tiny_ddr_net, tiny_plain_net

RRDB_CONVS = 36  # tiny RRDBNet: 2 RRDB x 3 RDB x 5 convs + conv_first/body/up1/up2/hr/last
ENCODER_LIVE_CONVS = 5  # SRResNet conv_first + body.0 (2 convs) + body.1 (2 convs); read at body.1
ENCODER_DEAD_CONVS = 4  # upconv1, upconv2, conv_hr, conv_last: after body.1, must not be exported


@pytest.fixture(scope='module')
def model():
    return tiny_ddr_net()


@pytest.fixture(scope='module')
def one_graph(model, tmp_path_factory):
    return export_onnx(model, str(tmp_path_factory.mktemp('onnx') / 'tiny.onnx'))


def _photo(height, width, seed=0):
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 0.05, (height, width, 3))
    noise[:, width // 2:] *= 4
    return np.clip(0.5 + noise, 0, 1).astype(np.float32)


def test_one_graph_matches_torch_at_odd_sizes(model, one_graph):
    report = verify_onnx(model, one_graph, sizes=((37, 53), (64, 48)))
    assert set(report) == {'37x53', '64x48'}
    for size, diff in report.items():
        assert diff['max_abs'] < 1e-4, size
    # Dynamic batch: two different images in one call, each equal to its own torch result.
    session = ort.InferenceSession(one_graph, providers=['CPUExecutionProvider'])
    lq = torch.rand(2, 3, 21, 30)
    with torch.inference_mode():
        expected = torch.cat([model(lq[:1]), model(lq[1:])]).numpy()
    got = session.run(None, {'lq': lq.numpy()})[0]
    assert got.shape == (2, 3, 84, 120) and np.abs(got - expected).max() < 1e-4


def test_verify_detects_a_different_model(one_graph):
    other = tiny_ddr_net(seed=1)
    assert verify_onnx(other, one_graph, sizes=((37, 53),))['37x53']['max_abs'] > 1e-2


def test_dead_encoder_tail_is_not_exported(model, one_graph, tmp_path):
    all_convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    assert all_convs == RRDB_CONVS + ENCODER_LIVE_CONVS + ENCODER_DEAD_CONVS
    assert count_ops(one_graph, 'Conv') == RRDB_CONVS + ENCODER_LIVE_CONVS
    encoder, generator = export_split(model, str(tmp_path / 'enc.onnx'), str(tmp_path / 'gen.onnx'))
    assert count_ops(encoder, 'Conv') == ENCODER_LIVE_CONVS
    assert count_ops(generator, 'Conv') == RRDB_CONVS  # the embedding is an input: no encoder inside


def test_split_generator_takes_the_embedding(model, tmp_path):
    encoder, generator = export_split(model, str(tmp_path / 'enc.onnx'), str(tmp_path / 'gen.onnx'))
    report = verify_onnx(model, generator, sizes=((37, 53),))  # feeds model.encode(lq) as the embedding
    assert report['37x53']['max_abs'] < 1e-4
    session = ort.InferenceSession(generator, providers=['CPUExecutionProvider'])
    assert [i.name for i in session.get_inputs()] == ['lq', 'embedding']
    lq = torch.rand(1, 3, 16, 16)
    e = ort.InferenceSession(encoder, providers=['CPUExecutionProvider']).run(None, {'lq': lq.numpy()})[0]
    with torch.inference_mode():
        np.testing.assert_allclose(e, model.encode(lq).numpy(), atol=1e-5)


def test_split_backend_matches_torch_backend(model, tmp_path):
    photo = _photo(45, 70)
    torch_out = Upsampler(model=model, device='cpu', tile=24, backend='torch').enhance(photo)
    onnx_up = Upsampler(model=model, device='cpu', tile=24, backend='onnx', onnx_dir=str(tmp_path / 'cache'))
    onnx_out = onnx_up.enhance(photo)
    assert onnx_out.shape == torch_out.shape == (180, 280, 3)
    assert np.abs(onnx_out - torch_out).mean() < 1e-3
    assert np.abs(onnx_out - torch_out).max() < 1e-3


def test_onnx_cache_is_reused_and_keyed_by_weights(tmp_path):
    net = tiny_ddr_net()
    cache = str(tmp_path / 'cache')
    _, generator = cached_split_pair(net, cache)
    stamp = os.stat(generator).st_mtime_ns
    cached_split_pair(net, cache)
    assert os.stat(generator).st_mtime_ns == stamp  # reused
    with torch.no_grad():
        net.conv_last.bias.add_(0.1)
    cached_split_pair(net, cache)
    assert os.stat(generator).st_mtime_ns != stamp  # other weights: exported again


def test_plain_model_exports_without_encoder(tmp_path):
    plain = tiny_plain_net()
    encoder, generator = export_split(plain, str(tmp_path / 'enc.onnx'), str(tmp_path / 'gen.onnx'))
    assert encoder is None and not os.path.exists(tmp_path / 'enc.onnx')
    assert count_ops(generator, 'Conv') == RRDB_CONVS
    assert verify_onnx(plain, generator, sizes=((37, 53),))['37x53']['max_abs'] < 1e-4
    photo = _photo(30, 41)
    expected = Upsampler(model=plain, device='cpu', tile=16, backend='torch').enhance(photo)
    got = Upsampler(model=plain, device='cpu', tile=16, backend='onnx', onnx_dir=str(tmp_path / 'c')).enhance(photo)
    assert np.abs(got - expected).max() < 1e-3


def test_fp16_export(model, tmp_path):
    path = export_onnx(model, str(tmp_path / 'tiny_fp16.onnx'), fp16=True)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    assert session.get_inputs()[0].type == 'tensor(float16)'
    report = verify_onnx(model, path, sizes=((37, 53),))
    assert report['37x53']['mean_abs'] < 5e-3


def test_corrupt_onnx_file_is_a_clear_error(tmp_path):
    from ddrsr.errors import DDRSRError
    from ddrsr.inference.onnx_backend import OnnxBackend

    bad = tmp_path / 'generator.onnx'
    bad.write_bytes(b'not an onnx model')
    with pytest.raises(DDRSRError, match='not a valid ONNX model'):
        OnnxBackend(None, str(bad))


def test_bicubic_global_residual_exports_and_matches_torch(tmp_path):
    from tiny_models import TINY_ENCODER

    from ddrsr.archs import RRDBNetDDR

    torch.manual_seed(0)
    net = RRDBNetDDR(num_feat=8, num_block=2, num_grow_ch=4, encoder=TINY_ENCODER, global_residual='bicubic').eval()
    with torch.no_grad():
        net.conv_residual.weight.normal_(std=0.05)
        for style_mod in net.style_mods:
            style_mod.to_gamma.weight.normal_(std=0.3)
    path = export_onnx(net, str(tmp_path / 'residual.onnx'))
    for size, diff in verify_onnx(net, path, sizes=((21, 30), )).items():
        assert diff['max_abs'] < 1e-4, size  # ONNX Resize(cubic) computes torch's bicubic
