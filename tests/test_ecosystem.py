"""Weights other tools can load: .safetensors companions with metadata, model cards, and spandrel."""
import json
import os

import pytest
import spandrel
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import ddrsr.integrations.spandrel as ddrsr_spandrel
from ddrsr import zoo
from ddrsr.weights import companions
from ddrsr.archs import RRDBNetDDR
from ddrsr.errors import DDRSRError
from ddrsr.loader import load
from ddrsr.weights.file_format import ENCODER_LAYER_KEY, read_weights, serialize, to_file_tensors, write_weights
from ddrsr.weights.companions import ship_checkpoint
from ddrsr.weights.manifest import read_manifest, sha256_file
from tiny_models import TINY_ENCODER, tiny_ddr_net

SHIPPED = [name for name in zoo.MODELS if zoo.ships_pth(name) and os.path.isfile(zoo.weights_path(name))]
RRDB_SHIPPED = [name for name in SHIPPED if zoo.MODELS[name]['arch']['type'] == 'RRDBNetDDR']


def _stock_registry():
    """spandrel's registry as shipped, without ddrsr's architecture (what chaiNNer has)."""
    registry = spandrel.ArchRegistry()
    registry.add(*[a for a in spandrel.MAIN_REGISTRY if a.architecture.id != ddrsr_spandrel.ARCH_ID])
    return registry


def _lq(seed=0, size=(20, 28)):
    return torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(seed))


def _ddrsr_output(network, lq):
    with torch.no_grad():
        return network.eval()(lq).clamp(0, 1)  # spandrel clamps its output to [0, 1]


@pytest.mark.parametrize('name', SHIPPED)
def test_every_shipped_pth_has_a_verified_safetensors_with_metadata(name):
    pth = zoo.weights_path(name)
    safetensors_path, card_path = companions.companion_paths(pth)
    manifest = read_manifest(zoo.WEIGHTS_DIR)
    assert zoo.shipped_file(name) == safetensors_path
    assert manifest[os.path.basename(safetensors_path)] == sha256_file(safetensors_path)
    with safe_open(safetensors_path, framework='pt') as f:
        meta = f.metadata()
    entry = zoo.MODELS[name]
    assert meta['ddrsr.source_sha256'] == sha256_file(pth) == manifest[os.path.basename(pth)]
    assert meta['ddrsr.architecture'] == entry['arch']['type'] and int(meta['ddrsr.scale']) == entry['scale']
    assert json.loads(meta['ddrsr.arch_args'])['num_feat'] == entry['arch']['num_feat']
    assert os.path.isfile(os.path.join(zoo.WEIGHTS_DIR, '..', meta['ddrsr.training_options']))
    assert int(meta['ddrsr.iterations']) > 0 and meta['ddrsr.license'] and 'docs/DATA.md' in meta['ddrsr.license_note']
    with open(card_path, encoding='utf-8') as f:
        card = json.load(f)
    assert (card['name'], card['scale'], card['architecture']) == (name, entry['scale'], entry['arch']['type'])
    assert {r['sha256'] for r in card['resources']} == {sha256_file(pth), sha256_file(safetensors_path)}
    assert card['license'] and card['dataset'] and card['images'][0]['type'] == 'paired'
    # ddrsr reads the .safetensors by default; it holds exactly the .pth's weights
    from_pth = torch.load(pth, weights_only=True)['params_ema']
    loaded = load(name).network.state_dict()
    assert set(loaded) >= set(from_pth)
    for key, value in from_pth.items():
        assert torch.equal(loaded[key], value.float()) or torch.isnan(value).all(), key


def test_a_changed_safetensors_is_refused(tmp_path, monkeypatch):
    name = min(SHIPPED, key=lambda n: os.path.getsize(zoo.weights_path(n)))
    folder = tmp_path / 'weights'
    folder.mkdir()
    for path in (zoo.weights_path(name), zoo.shipped_file(name), os.path.join(zoo.WEIGHTS_DIR, 'SHA256SUMS')):
        (folder / os.path.basename(path)).write_bytes(open(path, 'rb').read())
    target = folder / os.path.basename(zoo.shipped_file(name))
    data = bytearray(target.read_bytes())
    data[-1] ^= 1
    target.write_bytes(bytes(data))
    monkeypatch.setattr(zoo, 'WEIGHTS_DIR', str(folder))
    with pytest.raises(DDRSRError, match='corrupted or was replaced'):
        load(name).network


def test_safetensors_bytes_are_deterministic_and_readable_by_safetensors(tmp_path):
    net = tiny_ddr_net()
    tensors = to_file_tensors(net.state_dict(), net.encoder.layer)
    blob = serialize(tensors, {'b': '2', 'a': '1'})
    assert blob == serialize(dict(reversed(list(tensors.items()))), {'a': '1', 'b': '2'})
    path = write_weights(str(tmp_path / 'tiny.safetensors'), net.state_dict(), net.encoder.layer, {'k': {'x': 1}})
    stored = load_file(path)
    assert 'conv_last_ddr.weight' in stored and 'conv_last.weight' not in stored  # ESRGAN detection must fail
    assert bytes(stored[ENCODER_LAYER_KEY].tolist()).decode() == 'body.1'
    state, layer, meta = read_weights(path)
    assert layer == 'body.1' and json.loads(meta['k']) == {'x': 1}
    assert all(torch.equal(state[k], v) or torch.isnan(v).all() for k, v in net.state_dict().items())


def test_safetensors_with_another_encoder_layer_is_refused(tmp_path):
    net = tiny_ddr_net()
    path = write_weights(str(tmp_path / 'tiny.safetensors'), net.state_dict(), 'body.0')
    from ddrsr.weights.checkpoint import load_into
    with pytest.raises(DDRSRError, match="reading layer 'body.0'"):
        load_into(tiny_ddr_net(), path, '')


def test_shipping_regenerates_the_companions(tmp_path, monkeypatch):
    """A re-ship rewrites .safetensors and .json in the same command; --manifest_only keeps the recorded provenance."""
    arch = {'type': 'RRDBNetDDR', 'num_feat': 8, 'num_block': 2, 'num_grow_ch': 4, 'scale': 4, 'use_ddr': True,
            'encoder': TINY_ENCODER}
    monkeypatch.setitem(zoo.MODELS, 'tiny_ddr', {'file': 'tiny_ddr.pth', 'scale': 4, 'arch': arch,
                                                 'options': 'options/train_rrdb_ddr_x4_lite.yml'})
    folder = tmp_path / 'weights'
    checkpoint = tmp_path / 'net_g.pth'
    torch.save({'params_ema': tiny_ddr_net(seed=1).state_dict()}, checkpoint)
    first = ship_checkpoint(str(checkpoint), str(folder / 'tiny_ddr.pth'), iterations=77)
    assert set(first['companions']) == {'safetensors', 'card'}
    assert set(read_manifest(str(folder))) == {'tiny_ddr.pth', 'tiny_ddr.safetensors'}
    card = json.loads((folder / 'tiny_ddr.json').read_text())
    assert card['trainingIterations'] == 77 and card['ddrsr']['source_sha256'] == first['sha256']

    torch.save({'params_ema': tiny_ddr_net(seed=2).state_dict()}, checkpoint)
    second = ship_checkpoint(str(checkpoint), str(folder / 'tiny_ddr.pth'))
    meta = read_weights(str(folder / 'tiny_ddr.safetensors'))[2]
    assert meta['ddrsr.source_sha256'] == second['sha256'] != first['sha256']
    assert int(meta['ddrsr.iterations']) == 1000  # the option file's total_iter: no stale 77

    before = (folder / 'tiny_ddr.safetensors').read_bytes()
    companions.write_companions(str(folder / 'tiny_ddr.pth'), iterations=5)
    from ddrsr.weights.companions import ship_all_companions
    ship_all_companions(str(folder))
    assert json.loads((folder / 'tiny_ddr.json').read_text())['trainingIterations'] == 5  # kept: same .pth
    assert (folder / 'tiny_ddr.safetensors').read_bytes() != before  # the header recorded the new count
    loaded = load('tiny_ddr', weights=str(folder / 'tiny_ddr.safetensors')).network
    lq = _lq()
    assert torch.allclose(_ddrsr_output(loaded, lq), _ddrsr_output(tiny_ddr_net(seed=2), lq), atol=1e-6)


# ------------------------------------------------------------------------------------------------ spandrel
def _tiny_variants():
    """Randomly initialised networks of each variant spandrel must handle, with non-trivial last convs."""
    nets = {
        'ddr': tiny_ddr_net(),
        'ddr_bicubic': RRDBNetDDR(num_feat=8, num_block=2, num_grow_ch=4, encoder=TINY_ENCODER,
                                  global_residual='bicubic'),
        'plain_bicubic': RRDBNetDDR(num_feat=8, num_block=2, num_grow_ch=4, use_ddr=False, global_residual='bicubic'),
        'plain_gc16': RRDBNetDDR(num_feat=8, num_block=2, num_grow_ch=16, use_ddr=False),
    }
    torch.manual_seed(3)
    for net in nets.values():
        for module in net.modules():
            if getattr(module, 'to_gamma', None) is not None:
                torch.nn.init.normal_(module.to_gamma.weight, std=0.5)
        if hasattr(net, 'conv_residual'):
            torch.nn.init.normal_(net.conv_residual.weight, std=0.05)
    return nets


@pytest.mark.parametrize('variant', ['ddr', 'ddr_bicubic', 'plain_bicubic', 'plain_gc16'])
def test_spandrel_loads_each_variant_as_ddrsr_computes_it(variant, tmp_path):
    net = _tiny_variants()[variant]
    layer = net.encoder.layer if net.use_ddr else None
    path = write_weights(str(tmp_path / f'{variant}.safetensors'), net.state_dict(), layer)
    descriptor = spandrel.ModelLoader().load_from_file(path)
    assert descriptor.architecture.id == ddrsr_spandrel.ARCH_ID
    assert (descriptor.scale, descriptor.input_channels, descriptor.output_channels) == (4, 3, 3)
    assert descriptor.supports_half and descriptor.purpose == 'SR'
    expected_tiling = spandrel.ModelTiling.DISCOURAGED if net.use_ddr else spandrel.ModelTiling.SUPPORTED
    assert descriptor.tiling == expected_tiling
    lq = _lq(1)
    with torch.no_grad():
        assert (descriptor(lq) - _ddrsr_output(net, lq)).abs().max() < 1e-4
    # without ddrsr's architecture, spandrel refuses it rather than running something else
    with pytest.raises(Exception):
        spandrel.ModelLoader(registry=_stock_registry()).load_from_file(path)


def test_esrgan_layout_loads_as_spandrel_esrgan(tmp_path):
    """A plain RRDBNet with ESRGAN's 32 growth channels is ESRGAN's key layout: stock spandrel runs it equally."""
    net = RRDBNetDDR(num_feat=16, num_block=2, num_grow_ch=32, use_ddr=False)
    path = write_weights(str(tmp_path / 'plain.safetensors'), net.state_dict())
    for registry in (spandrel.MAIN_REGISTRY, _stock_registry()):
        descriptor = spandrel.ModelLoader(registry=registry).load_from_file(path)
        assert descriptor.architecture.id == 'ESRGAN' and descriptor.scale == 4
        lq = _lq(2)
        with torch.no_grad():
            assert (descriptor(lq) - _ddrsr_output(net, lq)).abs().max() < 1e-4


@pytest.mark.parametrize('name', RRDB_SHIPPED)
def test_spandrel_loads_each_shipped_file_like_ddrsr(name):
    """.safetensors: equal outputs through ddrsr's integration. Stock spandrel never runs a file silently wrong:
    it refuses it or computes the same output. A DDR .pth lacks the encoder layer, and is refused."""
    network = load(name).network
    lq = _lq(4, (24, 20))
    expected = _ddrsr_output(network, lq)
    descriptor = spandrel.ModelLoader().load_from_file(zoo.shipped_file(name))
    assert descriptor.scale == zoo.MODELS[name]['scale']
    with torch.no_grad():
        assert (descriptor(lq) - expected).abs().max() < 1e-4
    for path in (zoo.shipped_file(name), zoo.weights_path(name)):
        try:
            stock = spandrel.ModelLoader(registry=_stock_registry()).load_from_file(path)
        except Exception:
            continue  # refused: fine
        with torch.no_grad():
            assert (stock(lq) - expected).abs().max() < 1e-4, f'stock spandrel runs {path} differently'
    if zoo.MODELS[name]['arch']['use_ddr']:
        with pytest.raises(DDRSRError, match='load its .safetensors'):
            spandrel.ModelLoader().load_from_file(zoo.weights_path(name))
