import pytest
import torch
from basicsr.archs import build_network
from basicsr.archs.rrdbnet_arch import RRDBNet

from tiny_models import TINY_ENCODER, tiny_ddr_net
from ddrsr.archs import DDREncoder, RRDBNetDDR, SRResNet, StyleMod
from ddrsr.archs.module_utils import capture_layer_output, run_until
from ddrsr.errors import DDRSRError


@pytest.mark.parametrize('scale', [4, 2])
def test_rrdbnet_ddr_equals_rrdbnet_at_init(scale):
    torch.manual_seed(0)
    plain = RRDBNet(3, 3, scale=scale, num_feat=8, num_block=2, num_grow_ch=4).eval()
    ddr = RRDBNetDDR(scale=scale, num_feat=8, num_block=2, num_grow_ch=4, encoder=TINY_ENCODER).eval()
    result = ddr.load_state_dict(plain.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert all(k.startswith(('encoder.', 'style_mods.', 'clean_embedding')) for k in result.missing_keys)
    x = torch.rand(2, 3, 12, 14)
    with torch.no_grad():
        assert torch.equal(ddr(x), plain(x))
        assert ddr(x).shape == (2, 3, 12 * scale, 14 * scale)


def test_use_ddr_false_has_rrdbnet_keys():
    plain = RRDBNet(3, 3, scale=4, num_feat=8, num_block=2, num_grow_ch=4)
    baseline = RRDBNetDDR(scale=4, num_feat=8, num_block=2, num_grow_ch=4, use_ddr=False)
    assert baseline.state_dict().keys() == plain.state_dict().keys()


def test_embedding_changes_output_once_stylemod_is_trained():
    model = tiny_ddr_net()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        e = model.encode(x)
        assert e.shape == (1, 8)
        assert torch.equal(model(x), model(x, embedding=e))
        assert not torch.allclose(model(x), model(x, embedding=e + 1))


def test_stylemod_is_identity_at_init():
    mod = StyleMod(4, 6)
    x = torch.rand(2, 6, 5, 5)
    assert torch.equal(mod(x, torch.rand(2, 4)), x)


def test_srresnet_global_residual_switch():
    torch.manual_seed(0)
    gr = SRResNet(num_feat=8, num_block=2, with_gr=True).eval()
    no_gr = SRResNet(num_feat=8, num_block=2, with_gr=False).eval()
    no_gr.load_state_dict(gr.state_dict())
    x = torch.rand(1, 3, 8, 8)
    base = torch.nn.functional.interpolate(x, scale_factor=4, mode='bilinear', align_corners=False)
    assert torch.allclose(gr(x) - no_gr(x), base, atol=1e-6)
    assert isinstance(build_network({'type': 'SRResNet', 'num_feat': 8, 'num_block': 2}), SRResNet)


def test_early_exit_features_equal_full_forward_features():
    gen = SRResNet(num_feat=8, num_block=3).eval()
    x = torch.rand(2, 3, 10, 9)
    with capture_layer_output(gen, 'body.1') as store:
        gen(x)
    assert torch.equal(run_until(gen, 'body.1', x), store['output'])


def test_encoder_is_frozen_and_stays_in_eval():
    enc = DDREncoder(**TINY_ENCODER)
    enc.train()
    assert not enc.generator.training and enc.mlp.training
    assert not any(p.requires_grad for p in enc.generator.parameters())
    e = enc(torch.rand(3, 3, 20, 24))
    assert e.shape == (3, 8)
    e.sum().backward()
    assert enc.mlp[0].weight.grad is not None


def test_bad_layer_name_lists_close_matches():
    with pytest.raises(DDRSRError, match='body.1'):
        DDREncoder(**{**TINY_ENCODER, 'layer': 'body.l'})


def test_bicubic_global_residual_starts_at_bicubic_and_renames_the_last_conv():
    torch.manual_seed(0)
    plain = RRDBNetDDR(scale=4, num_feat=8, num_block=2, num_grow_ch=4, use_ddr=False).eval()
    with torch.no_grad():
        plain.conv_last.weight.normal_()  # a trained-looking last conv, to check that it is not loaded
    residual = RRDBNetDDR(scale=4, num_feat=8, num_block=2, num_grow_ch=4, encoder=TINY_ENCODER,
                          global_residual='bicubic').eval()
    keys = residual.state_dict().keys()
    assert 'conv_residual.weight' in keys and 'conv_last.weight' not in keys  # ESRGAN detectors must not match
    result = residual.load_state_dict(plain.state_dict(), strict=False)
    assert set(result.unexpected_keys) == {'conv_last.weight', 'conv_last.bias'}
    assert set(k for k in result.missing_keys if not k.startswith(('encoder.', 'style_mods.', 'clean_embedding'))) == {
        'conv_residual.weight', 'conv_residual.bias'}
    x = torch.rand(2, 3, 10, 12)
    bicubic = torch.nn.functional.interpolate(x, scale_factor=4, mode='bicubic', align_corners=False)
    with torch.no_grad():
        assert torch.equal(residual(x), bicubic)
        residual.conv_residual.bias.fill_(0.1)  # once trained, the residual adds to bicubic
        assert torch.allclose(residual(x), bicubic + 0.1, atol=1e-6)
    assert torch.equal(plain.conv_body.weight, residual.conv_body.weight)  # the trunk came from the checkpoint


def test_unknown_global_residual_is_refused():
    with pytest.raises(ValueError, match='global_residual'):
        RRDBNetDDR(num_feat=8, num_block=1, num_grow_ch=4, use_ddr=False, global_residual='bilinear')
