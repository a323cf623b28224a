"""The one loader (ddrsr.loader.load) and its descriptor; layers inside a DDR model's encoder are reachable."""
import json
import os

import pytest
import torch
import yaml

from conftest import DATA
from ddrsr import cli
from ddrsr.archs.module_utils import run_until
from ddrsr.errors import DDRSRError
from ddrsr.loader import LoadedModel, as_loaded, load
from ddrsr.zoo import DEFAULT_MODEL, shipped_file
from tiny_models import tiny_ddr_net, tiny_plain_net

HR = os.path.join(DATA, 'hr')
TINY = ['--hr', HR, '--patch', '8', '--patches', '20', '--runs', '2', '--device', 'cpu']


def test_zoo_name_gives_a_descriptor_and_patches_nothing(tiny_zoo):
    loaded = load('tiny_ddr')
    assert isinstance(loaded, LoadedModel)
    assert (loaded.scale, loaded.name, loaded.use_ddr, loaded.weights) == (4, 'tiny_ddr', True, tiny_zoo)
    assert loaded.supports_tiling and loaded.supports_half and loaded.arch['type'] == 'RRDBNetDDR'
    assert not hasattr(loaded.network, 'model_name')  # nothing patched onto the module
    assert not loaded.network.training and not any(p.requires_grad for p in loaded.network.parameters())


def test_option_file_and_network_g_dict_load_the_same_weights(tiny_zoo, tmp_path):
    from ddrsr import zoo
    arch = zoo.MODELS['tiny_ddr']['arch']
    option = tmp_path / 'train_tiny.yml'
    option.write_text(yaml.safe_dump({'scale': 4, 'network_g': arch}))
    by_opt = load(opt=str(option), weights=tiny_zoo)
    by_dict = load(arch, weights=tiny_zoo)
    assert by_opt.name == by_dict.name == 'tiny' and by_opt.scale == by_dict.scale == 4
    reference = tiny_ddr_net().state_dict()
    for loaded in (by_opt, by_dict):
        for key, value in reference.items():  # clean_embedding is NaN (unknown): equal_nan
            torch.testing.assert_close(loaded.network.state_dict()[key], value, rtol=0, atol=0, equal_nan=True)
    with pytest.raises(DDRSRError, match='--weights'):
        load(opt=str(option))
    with pytest.raises(DDRSRError, match='not both'):
        load('tiny_ddr', opt=str(option))


def test_plain_modules_are_described_from_their_architecture():
    assert (as_loaded(tiny_plain_net()).scale, as_loaded(tiny_plain_net()).use_ddr) == (4, False)
    loaded = as_loaded(tiny_ddr_net())
    assert as_loaded(loaded) is loaded and loaded.use_ddr and loaded.name == 'RRDBNetDDR'
    with pytest.raises(DDRSRError, match='scale=4'):
        LoadedModel.from_module(torch.nn.Conv2d(3, 3, 3))


def test_layers_inside_the_encoder_are_reachable():
    """The encoder's own early exit (at its layer, body.1) used to hide encoder.generator.* from run_until."""
    model, lq = tiny_ddr_net(), torch.rand(2, 3, 12, 12)
    inner = model.encoder.generator
    for layer in ('body.0', 'body.1', 'conv_last'):  # before, at and after the encoder's own layer
        got = run_until(model, f'encoder.generator.{layer}', lq)
        assert torch.equal(got, run_until(inner, layer, lq)), layer


def test_analyze_cli_reaches_the_encoder_of_a_ddr_model(tiny_zoo, tmp_path, capsys):
    status = cli.main(['analyze', '--model', 'tiny_ddr', '--layer', 'encoder.generator.body.1', '--output',
                       str(tmp_path), *TINY])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert json.loads(out)['layer'] == 'encoder.generator.body.1'


@pytest.mark.skipif(not os.path.isfile(shipped_file(DEFAULT_MODEL)), reason='shipped weights missing')
def test_analyze_cli_reaches_the_encoder_of_the_shipped_model(tmp_path, capsys):
    """The issue's command: ddrsr analyze --model rrdb_ddr_real_x4_lite --layer encoder.generator.body.7."""
    status = cli.main(['analyze', '--model', 'rrdb_ddr_real_x4_lite', '--layer', 'encoder.generator.body.7',
                       '--output', str(tmp_path), '--hr', HR, '--patch', '8', '--patches', '12', '--runs', '1',
                       '--device', 'cpu'])
    out, err = capsys.readouterr()
    assert status == 0, err
    result = json.loads(out)
    assert result['layer'] == 'encoder.generator.body.7' and result['dim'] == 32 * 8 * 8


def test_zoo_load_model_is_a_deprecated_alias_of_loader_load():
    from ddrsr import zoo
    from ddrsr.loader import load

    with pytest.warns(DeprecationWarning, match='ddrsr.loader.load'):
        network = zoo.load_model('rrdb_clean_x4_lite')
    expected = load('rrdb_clean_x4_lite').network.state_dict()
    assert network.scale == 4 and network.model_name == 'rrdb_clean_x4_lite'
    assert all(torch.equal(value, expected[key]) for key, value in network.state_dict().items())


def test_ddrsr_weights_points_at_a_copy_of_the_weights(tmp_path):
    """A wheel installed with pip install . has no weights/ beside it: DDRSR_WEIGHTS names the folder, and without
    the files the error says so. (Checked by hand in a non-editable install run from another directory.)"""
    import shutil
    import subprocess
    import sys

    from ddrsr.zoo import WEIGHTS_DIR

    copy = tmp_path / 'weights'
    copy.mkdir()
    for name in ('SHA256SUMS', os.path.basename(shipped_file(DEFAULT_MODEL))):
        shutil.copy(os.path.join(WEIGHTS_DIR, name), copy / name)
    script = 'from ddrsr.loader import load; print(load().weights)'
    env = {**os.environ, 'DDRSR_WEIGHTS': str(copy)}
    run = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.strip().startswith(str(copy)), run.stderr
    env['DDRSR_WEIGHTS'] = str(tmp_path / 'empty')
    run = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode != 0 and 'set DDRSR_WEIGHTS' in run.stderr
