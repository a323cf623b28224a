"""DDR analysis: cluster scores against sklearn and by hand, features at a layer, patch sets, the CLI."""
import csv
import json
import os

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from sklearn.metrics import calinski_harabasz_score
from torch import nn

from conftest import DATA
from ddrsr import cli, zoo
from ddrsr.analysis import (analyze_layer, check_sets, cluster_scores, default_layer, extract_features,
                            hr_patch_sets, lr_patch_sets, score_runs, tsne_runs)
from ddrsr.archs import SRResNet
from ddrsr.errors import DDRSRError

HR = os.path.join(DATA, 'hr')  # two 128x128 photos: 16 HR patches of 32x32 (LR 8x8 at x4) each
TINY = ['--hr', HR, '--patch', '8', '--patches', '20', '--runs', '2', '--device', 'cpu']


def tiny_srresnet(seed=0):
    torch.manual_seed(seed)
    return SRResNet(num_feat=8, num_block=2, upscale=4).eval()


def run_cli(argv, capsys):
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


# ---------------------------------------------------------------------------------------------- scores
def test_scores_by_hand_and_against_sklearn():
    # Set 0: (0,0),(2,0), mean (1,0); set 1: (0,2),(0,4), mean (0,3); overall mean (0.5,1.5).
    points = np.array([[0, 0], [2, 0], [0, 2], [0, 4]], dtype=float)
    labels = np.array([0, 0, 1, 1])
    scores = cluster_scores(points, labels)
    assert scores['wd'] == pytest.approx(1 + 1 + 1 + 1)
    assert scores['bd'] == pytest.approx(2 * (0.5**2 + 1.5**2) * 2)
    assert scores['chi'] == pytest.approx(10 / 4 * (4 - 2) / (2 - 1))

    rng = np.random.RandomState(0)
    points = rng.randn(90, 2) + np.repeat(rng.randn(3, 2), [20, 30, 40], axis=0)
    labels = np.repeat([0, 1, 2], [20, 30, 40])
    assert cluster_scores(points, labels)['chi'] == pytest.approx(calinski_harabasz_score(points, labels))

    summary = score_runs([points, points * 2 + 1], labels)
    assert summary['chi']['std'] == pytest.approx(0, abs=1e-9)  # CHI is scale- and shift-invariant
    assert summary['wd']['mean'] == pytest.approx(2.5 * summary['per_run'][0]['wd'])


class SetOffset(nn.Module):
    """A toy 'network' whose layer ``feat`` sees the patch mean: it separates sets that differ by an offset."""

    def __init__(self):
        super().__init__()
        self.feat = nn.AvgPool2d(4)

    def forward(self, x):
        return self.feat(x).sum()


def test_chi_separates_separable_from_inseparable_sets():
    torch.manual_seed(0)
    content = torch.rand(20, 3, 8, 8)
    separable = {f'set{k}': (content + 0.5 * k).clamp(max=2) for k in range(3)}
    inseparable = {f'set{k}': torch.rand(20, 3, 8, 8) for k in range(3)}  # same distribution for every set
    model = SetOffset()
    high = analyze_layer(model, 'feat', separable, runs=2, progress=False).scores['chi']['mean']
    low = analyze_layer(model, 'feat', inseparable, runs=2, progress=False).scores['chi']['mean']
    assert high > 20 * low and low < 5


# ------------------------------------------------------------------------------------------ features
def test_features_shape_match_full_forward_and_keep_mode():
    model = tiny_srresnet().train()
    patches = torch.rand(5, 3, 8, 8)
    features = extract_features(model, 'body.1', patches, batch_size=2, progress=False)
    assert features.shape == (5, 8 * 8 * 8) and features.dtype == np.float32
    captured = []
    handle = model.body[1].register_forward_hook(lambda m, i, o: captured.append(o))
    with torch.no_grad():
        model.eval()(patches)
    handle.remove()
    assert np.allclose(features, captured[0].flatten(1).numpy(), atol=1e-6)
    model.train()
    extract_features(model, 'body.1', patches, progress=False)
    assert model.training  # eval() only for the extraction


def test_unknown_layer_lists_close_matches():
    with pytest.raises(DDRSRError, match=r"no layer 'bodyy\.1'.*body\.1"):
        extract_features(tiny_srresnet(), 'bodyy.1', torch.rand(2, 3, 8, 8), progress=False)


def test_default_layer_is_last_body_block():
    assert default_layer(tiny_srresnet()) == 'body.1'
    with pytest.raises(DDRSRError, match='--layer'):
        default_layer(nn.Sequential(nn.Conv2d(3, 3, 3)))


def test_hr_patch_sets_share_content_and_are_deterministic():
    sets = hr_patch_sets(HR, ['clean', 'noise20', 'blur2'], patch=8, scale=4, num_patches=20, seed=0)
    assert list(sets) == ['clean', 'noise20', 'blur2']
    assert all(s.shape == (20, 3, 8, 8) for s in sets.values())
    assert not torch.equal(sets['clean'], sets['noise20'])
    # Same content: the noisy set stays close to the clean one, far from the clean set shuffled.
    assert (sets['noise20'] - sets['clean']).abs().mean() < (sets['noise20'] - sets['clean'].flip(0)).abs().mean()
    again = hr_patch_sets(HR, ['clean', 'noise20'], patch=8, scale=4, num_patches=20, seed=0)
    assert torch.equal(again['noise20'], sets['noise20'])
    assert hr_patch_sets(HR, ['clean', 'blur2'], patch=8, scale=4, num_patches=500)['clean'].shape[0] == 32


def _write_pngs(folder, sizes):
    os.makedirs(folder)
    rng = np.random.RandomState(0)
    for i, (height, width) in enumerate(sizes):
        Image.fromarray(rng.randint(0, 255, (height, width, 3), dtype=np.uint8)).save(os.path.join(folder, f'{i}.png'))
    return str(folder)


def test_lr_patch_sets_and_user_errors(tmp_path):
    a = _write_pngs(tmp_path / 'a', [(16, 24), (16, 16)])
    b = _write_pngs(tmp_path / 'b', [(16, 24), (16, 16)])
    c = _write_pngs(tmp_path / 'c', [(16, 16)])
    sets = lr_patch_sets({'a': a, 'b': b}, patch=8, num_patches=5)
    assert sets['a'].shape == (5, 3, 8, 8) and torch.equal(sets['a'], sets['b'])
    with pytest.raises(DDRSRError, match='same number'):
        lr_patch_sets({'a': a, 'c': c}, patch=8)
    with pytest.raises(DDRSRError, match='at least two sets'):
        lr_patch_sets({'a': a}, patch=8)
    with pytest.raises(DDRSRError, match='at least two sets'):
        hr_patch_sets(HR, ['clean'], patch=8)
    with pytest.raises(DDRSRError, match='smaller than the patch size'):
        lr_patch_sets({'a': a, 'b': b}, patch=20)
    with pytest.raises(DDRSRError, match='smaller than the patch size'):
        hr_patch_sets(HR, ['clean', 'blur2'], patch=64, scale=4)
    with pytest.raises(DDRSRError, match='same number'):
        check_sets({'a': torch.rand(4, 3, 8, 8), 'b': torch.rand(5, 3, 8, 8)})


def test_tsne_perplexity_is_clipped_for_few_points():
    embeddings, perplexity = tsne_runs(np.random.RandomState(0).randn(12, 30), runs=2, progress=False)
    assert len(embeddings) == 2 and embeddings[0].shape == (12, 2) and perplexity < 12
    with pytest.raises(DDRSRError, match='perplexity'):
        tsne_runs(np.zeros((12, 3)), runs=1, perplexity=40, progress=False)


# ------------------------------------------------------------------------------------------------ CLI
def test_analyze_cli_writes_json_and_png(tiny_zoo, tmp_path, capsys):
    status, out, err = run_cli(['analyze', '--model', 'tiny_ddr', '--layer', 'body.1', '--output', str(tmp_path), *TINY],
                               capsys)
    assert status == 0, err
    result = json.loads(out)
    assert result['layer'] == 'body.1' and result['sets'] == ['clean', 'blur2', 'noise20']
    assert result['patches_per_set'] == 20 and result['dim'] == 8 * 8 * 8
    assert all(set(result[key]) == {'mean', 'std'} for key in ('chi', 'wd', 'bd'))
    assert len(result['chi_per_run']) == 2 and os.path.getsize(result['plot']) > 1000
    assert 'DDR-CHI' in err

    plot = tmp_path / 'one.png'
    status, out, err = run_cli(['analyze', '--model', 'tiny_ddr', '--layer', 'body.0', '--layer', 'conv_first',
                                '--output', str(tmp_path / 'multi'), *TINY], capsys)
    assert status == 0, err
    rows = json.loads(out)['layers']
    assert [row['layer'] for row in rows] == ['body.0', 'conv_first']
    assert all(os.path.isfile(row['plot']) for row in rows)
    status, out, err = run_cli(['analyze', '--model', 'tiny_ddr', '--layer', 'body.0', '--layer', 'body.1',
                                '--plot', str(plot), *TINY], capsys)
    assert status == 2 and '--output' in err


@pytest.mark.parametrize('extra,expected', [
    (['--layer', 'bodi.1'], 'Did you mean: body.1'),
    (['--layer', 'body.1', '--specs', 'clean'], 'at least two sets'),
])
def test_analyze_cli_user_errors_are_one_line(extra, expected, tiny_zoo, capsys):
    status, out, err = run_cli(['analyze', '--model', 'tiny_ddr', *extra, *TINY], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and out == '' and len(lines) == 1 and expected in lines[0], err


def test_analyze_cli_takes_any_basicsr_network_by_option_file(tmp_path, capsys):
    network = SRResNet(num_feat=8, num_block=2, upscale=4, with_gr=False)
    checkpoint = tmp_path / 'net_g_100.pth'
    torch.save({'params_ema': network.state_dict()}, checkpoint)
    option = tmp_path / 'train_nogr.yml'
    with open(option, 'w') as f:
        yaml.safe_dump({'name': 'nogr', 'scale': 4, 'network_g': {'type': 'SRResNet', 'num_feat': 8, 'num_block': 2,
                                                                  'upscale': 4, 'with_gr': False}}, f)
    status, out, err = run_cli(['analyze', '--opt', str(option), '--weights', str(checkpoint), '--layer', 'body.1',
                                '--output', str(tmp_path), *TINY], capsys)
    assert status == 0, err
    result = json.loads(out)
    assert result['model'] == str(option) and result['dim'] == 8 * 8 * 8
    assert os.path.basename(result['plot']) == 'analyze_net_g_100_body.1.png'

    status, out, err = run_cli(['analyze', '--opt', str(option), '--layer', 'body.1', *TINY], capsys)
    assert status == 2 and '--weights' in err and len(err.strip().splitlines()) == 1
    status, out, err = run_cli(['analyze', '--opt', str(option), '--weights', str(tmp_path / 'missing.pth'),
                                '--layer', 'body.1', *TINY], capsys)
    assert status == 2 and 'not found' in err


def test_generalization_cli_one_panel_per_model(tiny_zoo, tmp_path, monkeypatch, capsys):
    checkpoint = tmp_path / 'srresnet.pth'
    torch.save({'params_ema': tiny_srresnet().state_dict()}, checkpoint)
    arch = {'type': 'SRResNet', 'num_feat': 8, 'num_block': 2, 'upscale': 4}
    monkeypatch.setitem(zoo.MODELS, 'tiny_srresnet', {'file': str(checkpoint), 'scale': 4, 'arch': arch})
    status, out, err = run_cli(['generalization', '--model', 'tiny_ddr', '--model', 'tiny_srresnet',
                                '--plot', str(tmp_path / 'g.png'), *TINY], capsys)
    assert status == 0, err
    result = json.loads(out)
    assert [(m['model'], m['layer']) for m in result['models']] == [('tiny_ddr', 'body.1'), ('tiny_srresnet', 'body.1')]
    assert os.path.isfile(tmp_path / 'g.png') and 'generalizes better' in err


def test_evolution_cli_writes_csv_and_png(tmp_path, capsys):
    experiment = tmp_path / 'experiments' / 'tiny'
    os.makedirs(experiment / 'models')
    for iteration, seed in ((200, 1), (100, 0)):
        torch.save({'params': tiny_srresnet(seed).state_dict()}, experiment / 'models' / f'net_g_{iteration}.pth')
    network_g = {'type': 'SRResNet', 'num_feat': 8, 'num_block': 2, 'upscale': 4, 'with_gr': True}
    with open(experiment / 'train_tiny.yml', 'w') as f:  # BasicSR copies the option file here
        yaml.safe_dump({'name': 'tiny', 'scale': 4, 'network_g': network_g}, f)
    status, out, err = run_cli(['evolution', '--experiment', str(experiment), '--layer', 'body.1',
                                '--crop_size', '64', '--output', str(tmp_path / 'evo'), *TINY], capsys)
    assert status == 0, err
    result = json.loads(out)
    with open(result['csv']) as f:
        rows = list(csv.DictReader(f))
    assert [int(row['iteration']) for row in rows] == [100, 200]
    assert all(float(row['chi_mean']) > 0 and 5 < float(row['psnr_clean']) < 60 for row in rows)
    assert rows[0]['chi_mean'] != rows[1]['chi_mean']  # each checkpoint's own weights were loaded
    assert os.path.getsize(result['plot']) > 1000
