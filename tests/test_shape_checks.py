"""Shape checks at the public tensor entry points: a wrong shape or dtype is one DDRSRError that names the
argument, the expected ``(B, 3, H, W)`` and the shape got; tracing, exporting and compiling skip the check."""
import doctest
import io

import numpy as np
import pytest
import torch

import ddrsr.errors
from ddrsr.analysis import analyze_layer, extract_features
from ddrsr.archs import SRResNet
from ddrsr.data.degradations import degrade, degrade_with_spec, parse_spec
from ddrsr.data.random_degradation import RandomDegradation
from ddrsr.errors import DDRSRError, check_image_batch
from ddrsr.faig import attribute, masking_table
from ddrsr.inference.upsampler import Upsampler
from ddrsr.loader import LoadedModel
from tiny_models import tiny_ddr_net, tiny_plain_net


def test_helper_doctests_run():
    result = doctest.testmod(ddrsr.errors)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize('value, expected', [
    (torch.zeros(3, 8, 8), r'hr must have shape \(B, 3, H, W\), got \(3, 8, 8\); add the batch dimension with hr\[None\]'),
    (torch.zeros(8, 8, 3), r'got \(8, 8, 3\); channels come first.*permute\(2, 0, 1\)\[None\]'),
    (torch.zeros(2, 8, 8, 3), r'got \(2, 8, 8, 3\); channels come first.*permute\(0, 3, 1, 2\)'),
    (torch.zeros(2, 1, 8, 8), r'hr must have shape \(B, 3, H, W\), got \(2, 1, 8, 8\)$'),
    (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), r'hr must be a float tensor in \[0, 1\], got dtype torch.uint8'),
    (np.zeros((1, 3, 8, 8), np.float32), r'hr must be a \(B, 3, H, W\) torch tensor, got ndarray'),
])
def test_messages_name_the_argument_the_expected_and_the_got_shape(value, expected):
    with pytest.raises(DDRSRError, match=expected):
        check_image_batch(value, 'hr')


def test_options_channels_and_multiples():
    assert check_image_batch(torch.zeros(1, 5, 8, 8), 'x', channels=None).shape[1] == 5
    assert check_image_batch(torch.zeros(1, 3, 8, 8, dtype=torch.int64), 'x', floating=False) is not None
    with pytest.raises(DDRSRError, match=r'x must have H and W multiples of 4, got 8x6'):
        check_image_batch(torch.zeros(1, 3, 8, 6), 'x', multiple_of=4)


BAD = torch.zeros(3, 16, 16)


@pytest.mark.parametrize('call, name', [
    (lambda: degrade(BAD, parse_spec('blur2').params(3), 4), 'degrade: hr'),
    (lambda: degrade_with_spec(BAD, 'noise20', 4), 'degrade_with_spec: hr'),
    (lambda: RandomDegradation()(BAD, 4, torch.Generator()), 'RandomDegradation: hr'),
    (lambda: tiny_plain_net()(BAD), 'RRDBNetDDR: x'),
    (lambda: tiny_ddr_net().encode(BAD), 'DDREncoder: lq'),
    (lambda: tiny_ddr_net().encoder(BAD), 'DDREncoder: lq'),
    (lambda: Upsampler(model=LoadedModel.from_module(tiny_plain_net()), device='cpu', backend='torch')
     .enhance_tensor(BAD), 'Upsampler.enhance_tensor: lq'),
    (lambda: extract_features(SRResNet(num_feat=4, num_block=1), 'body.0', BAD, progress=False),
     'extract_features: patches'),
    (lambda: attribute(SRResNet(num_feat=4, num_block=1), SRResNet(num_feat=4, num_block=1), BAD,
                       method='absdiff', progress=False), 'attribute: hr'),
])
def test_entry_points_refuse_a_missing_batch_dimension(call, name):
    with pytest.raises(DDRSRError) as caught:
        call()
    assert str(caught.value).startswith(f'{name} must have shape (B, 3, H, W), got (3, 16, 16)')


def test_degrade_refuses_integer_images():
    hr = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    with pytest.raises(DDRSRError, match='degrade_with_spec: hr must be a float tensor'):
        degrade_with_spec(hr, 'clean', 4)


def test_analysis_names_the_bad_set():
    sets = {'clean': torch.rand(4, 3, 8, 8), 'noisy': torch.rand(4, 8, 8, 3)}
    with pytest.raises(DDRSRError, match=r"set 'noisy' must have shape \(B, 3, H, W\), got \(4, 8, 8, 3\)"):
        analyze_layer(SRResNet(num_feat=4, num_block=1), 'body.0', sets, runs=1, progress=False)


def test_faig_refuses_crops_off_the_scale_grid():
    base, target = SRResNet(num_feat=4, num_block=1), SRResNet(num_feat=4, num_block=1)
    with pytest.raises(DDRSRError, match=r'attribute: hr must have H and W multiples of 4, got 16x18'):
        attribute(base, target, torch.rand(2, 3, 16, 18), method='absdiff', progress=False)
    with pytest.raises(DDRSRError, match=r'masking_table: hr must have shape'):
        masking_table(base, target, [attribute(base, target, torch.rand(2, 3, 16, 16), method='random',
                                               progress=False)], torch.rand(3, 16, 16), progress=False)


def test_ddr_network_checks_its_embedding():
    net = tiny_ddr_net()
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(DDRSRError, match=r'embedding must have shape \(B, 8\) with B = 2 .*got \(2, 5\)'):
        net(x, embedding=torch.zeros(2, 5))
    with pytest.raises(DDRSRError, match=r'got \(8,\)'):
        net(x, embedding=torch.zeros(8))
    with torch.no_grad():  # (1, D) is shared by the batch, as tiles share the photo's embedding
        assert net(x, embedding=net.encode(x[:1])).shape == (2, 3, 32, 32)


def test_encode_without_an_encoder_says_so():
    with pytest.raises(DDRSRError, match='use_ddr: false'):
        tiny_plain_net().encode(torch.rand(1, 3, 8, 8))


def test_enhance_tensor_equals_enhance_per_photo():
    net = tiny_ddr_net()
    upsampler = Upsampler(model=LoadedModel.from_module(net), device='cpu', backend='torch', tile=0)
    lq = torch.rand(2, 3, 10, 12)
    out = upsampler.enhance_tensor(lq)
    assert out.shape == (2, 3, 40, 48) and out.dtype == torch.float32
    for photo, sr in zip(lq, out):  # each photo has its own embedding, as in enhance
        expected = upsampler.enhance(photo.permute(1, 2, 0).numpy())
        assert np.abs(sr.permute(1, 2, 0).numpy() - expected).max() < 1e-5


def test_tracing_and_compiling_skip_the_check():
    """The checks stay out of recorded graphs: jit.trace, ONNX export and a whole-graph torch.compile of the
    network still work and match eager mode."""
    import warnings

    net = tiny_ddr_net()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        expected = net(x)
    with warnings.catch_warnings():
        warnings.simplefilter('error', torch.jit.TracerWarning)
        traced = torch.jit.trace(net, x, check_trace=False)
    assert torch.allclose(traced(x), expected, atol=1e-6)
    torch.onnx.export(net, (x,), io.BytesIO(), dynamo=False, opset_version=17)
    plain = tiny_plain_net()
    compiled = torch.compile(plain, backend='eager', fullgraph=True)
    with torch.no_grad():
        assert torch.allclose(compiled(x), plain(x), atol=1e-6)
