"""Safe loading: pickles with code are refused everywhere, shipped weights match their sha256, ONNX is checked."""
import ast
import glob
import os
import shutil

import numpy as np
import pytest
import torch

from conftest import ROOT
from ddrsr.cli import upscale
from ddrsr import zoo
from ddrsr.loader import load
from ddrsr.errors import DDRSRError
from ddrsr.weights.companions import ship_all_companions, ship_checkpoint
from ddrsr.weights.manifest import MANIFEST_NAME, read_manifest, sha256_file, write_manifest


class Exploit:
    """Unpickling this runs code: it creates the file ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").write("code ran")', )


@pytest.fixture
def evil(tmp_path):
    """A weights file and a training state that run code when unpickled, and the marker they would create."""
    marker = tmp_path / 'code_ran'
    weights, state = tmp_path / 'evil.pth', tmp_path / 'states' / '4.state'
    state.parent.mkdir()
    torch.save({'params_ema': {'conv_first.weight': Exploit(marker)}}, weights)
    torch.save({'iter': 4, 'epoch': 0, 'optimizers': [Exploit(marker)], 'schedulers': []}, state)
    torch.load(weights, weights_only=False)  # guard: the exploit is real
    assert marker.exists()
    marker.unlink()
    return weights, state, marker


def test_every_loader_refuses_a_pickle_with_code(evil, tiny_zoo):
    from ddrsr.weights.checkpoint import load_into, load_state_dict_file
    from ddrsr.inference import Upsampler
    from ddrsr.models.safe_loading import SafeLoadingMixin
    from ddrsr.training.pipeline import load_resume_state
    from tiny_models import tiny_ddr_net

    weights, state, marker = evil

    class TrainingModel(SafeLoadingMixin):  # what DDRSRModel / SRGANEncoderModel use for pretrain and resume
        def get_bare_model(self, net):
            return net

    loaders = {
        'checkpoint.load_state_dict_file': lambda: load_state_dict_file(weights),
        'checkpoint.load_into': lambda: load_into(tiny_ddr_net(), weights, 'hint'),
        'loader.load': lambda: load('tiny_ddr', weights=str(weights)),
        'zoo.load_model (deprecated alias)': lambda: zoo.load_model('tiny_ddr', weights=str(weights)),
        'Upsampler(--weights)': lambda: Upsampler('tiny_ddr', weights=str(weights), device='cpu'),
        'training load_network': lambda: TrainingModel().load_network(tiny_ddr_net(), str(weights)),
        'training resume': lambda: load_resume_state(
            {'auto_resume': True, 'num_gpu': 0, 'path': {'training_states': str(state.parent)}}),
        'ship_checkpoint (scripts/ship_weights.py)': lambda: ship_checkpoint(str(weights), str(weights.parent / 'out.pth')),
    }
    for where, call in loaders.items():
        with pytest.raises(DDRSRError, match='evil.pth|4.state'):
            call()
        assert not marker.exists(), f'{where} ran the code in the pickle'


def test_no_unsafe_unpickling_in_the_code():
    """Every torch.load passes weights_only=True; no pickle/joblib loads, no np.load(allow_pickle=True)."""
    files = [os.path.join(ROOT, 'inference.py'), *glob.glob(os.path.join(ROOT, 'ddrsr', '**', '*.py'), recursive=True),
             *glob.glob(os.path.join(ROOT, 'scripts', '*.py')), *glob.glob(os.path.join(ROOT, 'benchmarks', '*.py'))]
    offenders, torch_loads = [], 0
    for path in files:
        for node in ast.walk(ast.parse(open(path, encoding='utf-8').read(), path)):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else None
            keywords = {k.arg: k.value for k in node.keywords}
            where = f'{os.path.relpath(path, ROOT)}:{node.lineno}'
            if owner == 'torch' and node.func.attr == 'load':
                torch_loads += 1
                safe = keywords.get('weights_only')
                if not (isinstance(safe, ast.Constant) and safe.value is True):
                    offenders.append(where)
            elif owner in ('pickle', 'dill', 'joblib', 'cloudpickle') and node.func.attr in ('load', 'loads'):
                offenders.append(where)
            elif isinstance(keywords.get('allow_pickle'), ast.Constant) and keywords['allow_pickle'].value:
                offenders.append(where)
    assert torch_loads >= 2 and offenders == []


# ------------------------------------------------------------------------------------ sha256 manifest
def test_manifest_matches_every_shipped_file():
    manifest = read_manifest(zoo.WEIGHTS_DIR)
    from ddrsr.weights.manifest import WEIGHT_EXTENSIONS

    shipped = sorted(n for n in os.listdir(zoo.WEIGHTS_DIR) if n.endswith(WEIGHT_EXTENSIONS))
    assert sorted(manifest) == shipped, 'weights/ changed: run python scripts/ship_weights.py --manifest_only'
    for name, digest in manifest.items():
        assert sha256_file(os.path.join(zoo.WEIGHTS_DIR, name)) == digest, name
    for name, entry in zoo.MODELS.items():
        if os.path.isfile(zoo.weights_path(name)):
            assert entry['file'] in manifest, name


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """The smallest shipped model's file and the manifest, copied to tmp_path, with the zoo pointed there."""
    name = min((n for n in zoo.MODELS if os.path.isfile(zoo.weights_path(n))),
               key=lambda n: os.path.getsize(zoo.weights_path(n)))
    folder = tmp_path / 'weights'
    folder.mkdir()
    shutil.copy(zoo.weights_path(name), folder)
    shutil.copy(os.path.join(zoo.WEIGHTS_DIR, MANIFEST_NAME), folder)
    monkeypatch.setattr(zoo, 'WEIGHTS_DIR', str(folder))
    return name, folder / zoo.MODELS[name]['file']


def test_shipped_file_is_verified_before_use(shipped_copy, monkeypatch):
    name, path = shipped_copy
    assert load(name).scale == 4  # the intact copy passes
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit in the tensor data: torch would load it silently
    path.write_bytes(bytes(data))
    torch.load(path, weights_only=True)  # guard: the damage is invisible to torch itself
    with pytest.raises(DDRSRError, match=rf'{path.name} is corrupted.*SHA256SUMS'):
        load(name)
    load(name, weights=str(path))  # the same file as the user's own --weights: not checked


def test_corrupted_shipped_file_is_one_cli_error_line(shipped_copy, tmp_path, capsys):
    name, path = shipped_copy
    path.write_bytes(path.read_bytes()[:-100])  # a truncated download
    image = tmp_path / 'in.png'
    from PIL import Image
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    cli = upscale  # what python inference.py runs
    status = cli.main(['-i', str(image), '-o', str(tmp_path / 'out'), '-n', name])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1
    assert lines[0].startswith('ddrsr: error:') and 'is corrupted' in lines[0] and path.name in lines[0]


def test_unlisted_file_or_missing_manifest_is_refused(shipped_copy):
    name, path = shipped_copy
    manifest = path.parent / MANIFEST_NAME
    manifest.write_text(''.join(line for line in manifest.read_text().splitlines(True) if path.name not in line))
    with pytest.raises(DDRSRError, match='not listed.*--manifest_only'):
        load(name)
    manifest.unlink()
    with pytest.raises(DDRSRError, match='SHA256SUMS is missing'):
        load(name)


def test_user_checkpoints_are_not_checked_against_the_manifest(tiny_zoo):
    assert load('tiny_ddr', weights=tiny_zoo).scale == 4  # no manifest lists it


def test_ship_checkpoint_rewrites_the_manifest(tmp_path):
    """What scripts/ship_weights.py runs: ship_checkpoint, then ship_all_companions for --manifest_only."""
    from tiny_models import tiny_plain_net

    checkpoint = tmp_path / 'net_g_10.pth'
    torch.save({'params': tiny_plain_net().state_dict(), 'params_ema': tiny_plain_net(1).state_dict()}, checkpoint)
    out = tmp_path / 'weights'
    out.mkdir()
    ship_checkpoint(str(checkpoint), str(out / 'a.pth'))
    assert read_manifest(out) == {'a.pth': sha256_file(out / 'a.pth')}
    assert set(torch.load(out / 'a.pth', weights_only=True)) == {'params_ema'}
    ship_checkpoint(str(checkpoint), str(out / 'a.pth'), fp16=True)  # replaced: its entry follows
    shutil.copy(out / 'a.pth', out / 'b.pth')
    ship_all_companions(str(out))
    assert read_manifest(out) == {'a.pth': sha256_file(out / 'a.pth'), 'b.pth': sha256_file(out / 'a.pth')}
    assert write_manifest(out) == read_manifest(out)


# ---------------------------------------------------------------------------------------------- ONNX
def test_truncated_onnx_is_refused_before_a_session_opens(tmp_path, monkeypatch):
    import onnxruntime as ort

    from ddrsr.export import export_split
    from ddrsr.inference.onnx_backend import OnnxBackend
    from tiny_models import tiny_plain_net

    _, generator = export_split(tiny_plain_net(), str(tmp_path / 'enc.onnx'), str(tmp_path / 'gen.onnx'))
    opened = []
    real_session = ort.InferenceSession
    monkeypatch.setattr(ort, 'InferenceSession', lambda *a, **k: opened.append(a) or real_session(*a, **k))
    OnnxBackend(None, generator)
    assert len(opened) == 1  # guard: the intact file opens a session
    with open(generator, 'rb') as f:
        data = f.read()
    with open(generator, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(DDRSRError, match='not a valid ONNX model.*delete the ONNX cache'):
        OnnxBackend(None, generator)
    assert len(opened) == 1


def test_param_key_g_exclude_keeps_the_new_initialisation_and_ema_starts_equal(tmp_path):
    """``path.param_key_g_exclude``: the listed prefixes are not loaded from pretrain_network_g (the rest is), and the
    EMA copy takes net_g's fresh values for them, not its own random init."""
    from ddrsr.models.safe_loading import SafeLoadingMixin
    from tiny_models import tiny_ddr_net

    torch.manual_seed(0)
    pretrained = tiny_ddr_net()
    with torch.no_grad():
        for p in pretrained.parameters():
            p.add_(1.0)  # every pretrained value differs from any fresh init
    path = str(tmp_path / 'pre.pth')
    torch.save({'params_ema': pretrained.state_dict()}, path)

    class TrainingModel(SafeLoadingMixin):
        def __init__(self):
            self.opt = {'path': {'pretrain_network_g': path, 'param_key_g_exclude': ['encoder.mlp', 'style_mods']}}
            self.net_g, self.net_g_ema = tiny_ddr_net(), tiny_ddr_net()

        def get_bare_model(self, net):
            return net

        def _print_different_keys_loading(self, net, state, strict):
            pass

    model = TrainingModel()
    fresh = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    model.load_network(model.net_g, path, True, 'params_ema')
    model.load_network(model.net_g_ema, path, True, 'params_ema')
    ignored = [k for k in fresh if k.startswith(('encoder.mlp', 'style_mods'))]
    loaded = [k for k in fresh if not k.startswith(('encoder.mlp', 'style_mods')) and fresh[k].is_floating_point()
              and k != 'clean_embedding']
    assert ignored and loaded
    for net in (model.net_g, model.net_g_ema):
        state = net.state_dict()
        assert all(torch.equal(state[k], fresh[k]) for k in ignored)
        assert all(torch.equal(state[k], pretrained.state_dict()[k]) for k in loaded)


def test_param_key_g_exclude_must_be_a_list_of_prefixes():
    from ddrsr.training.option_values import check_value_types

    base = {'name': 'x', 'model_type': 'DDRSRModel', 'scale': 4, 'num_gpu': 'auto'}
    with pytest.raises(DDRSRError, match='param_key_g_exclude'):
        check_value_types({**base, 'path': {'param_key_g_exclude': 'style_mods'}}, 'x.yml')
    check_value_types({**base, 'path': {'param_key_g_exclude': ['style_mods']}}, 'x.yml')


def test_numbered_checkpoints_is_the_one_rule(tmp_path):
    """net_g_<N>.pth by number; net_g_latest, other networks and stray files are left out."""
    from ddrsr.analysis.evolution import list_checkpoints
    from ddrsr.weights.checkpoint import numbered_checkpoints

    models = tmp_path / 'models'
    models.mkdir()
    for name in ('net_g_1000.pth', 'net_g_500.pth', 'net_g_latest.pth', 'net_d_500.pth', 'net_g_500.pth.tmp'):
        (models / name).write_bytes(b'')
    assert numbered_checkpoints(str(tmp_path)) == {500: str(models / 'net_g_500.pth'),
                                                   1000: str(models / 'net_g_1000.pth')}
    assert numbered_checkpoints(str(tmp_path), 'net_d') == {500: str(models / 'net_d_500.pth')}
    assert list_checkpoints(str(tmp_path)) == [(500, str(models / 'net_g_500.pth')),
                                               (1000, str(models / 'net_g_1000.pth'))]
