"""Classification vs SR (CHI by content and by degradation) and the opt-in val.ddr_chi training hook."""
import glob
import json
import os
import re

import numpy as np
import pytest
import torch
import yaml

from conftest import DATA
from ddrsr import cli, zoo
from ddrsr.analysis.content_vs_degradation import build_content_sets, chi_by_labelling
from ddrsr.archs import SRResNet
from ddrsr.errors import DDRSRError
from ddrsr.training.options import check_options

HR = os.path.join(DATA, 'hr')  # two 128x128 photos
TINY_SETS = dict(patch=8, patches=4, train_patches=6, short_side=0)


def test_content_sets_shapes_labels_and_disjoint_halves():
    sets = build_content_sets(HR, ['clean', 'noise20'], photos=2, progress=False, **TINY_SETS)
    assert sets['lr'].shape == (2 * 4 * 2, 3, 8, 8) and sets['train_lr'].shape == (2 * 6, 3, 8, 8)
    assert sets['photos'] == ['seeding_0.png', 'seeding_1.png'] and sets['specs'] == ['clean', 'noise20']
    assert np.bincount(sets['content']).tolist() == [8, 8] and np.bincount(sets['degradation']).tolist() == [8, 8]
    half = len(sets['lr']) // 2
    assert not torch.equal(sets['lr'][:half], sets['lr'][half:])  # same contents, different degradation
    assert (sets['content'][:half] == sets['content'][half:]).all()
    again = build_content_sets(HR, ['clean', 'noise20'], photos=2, progress=False, **TINY_SETS)
    assert torch.equal(again['lr'], sets['lr'])


def test_content_classes_can_group_several_photos(tmp_path):
    from PIL import Image, ImageOps

    for index, name in enumerate(['seeding_0.png', 'seeding_1.png'] * 2):  # 4 photos: the two, then mirrored
        image = Image.open(os.path.join(HR, name))
        (ImageOps.mirror(image) if index >= 2 else image).save(tmp_path / f'photo_{index}.png')
    sets = build_content_sets(str(tmp_path), ['clean', 'noise20'], photos=2, photos_per_class=2, progress=False,
                              **TINY_SETS)
    assert sets['photos'] == ['photo_0.png+photo_1.png', 'photo_2.png+photo_3.png']
    assert sets['content'].tolist() == ([0] * 8 + [1] * 8) * 2  # 4 patches per photo, 2 photos per class, 2 specs
    assert np.bincount(sets['train_content']).tolist() == [12, 12]
    with pytest.raises(DDRSRError, match='need 6 photos, found 4'):
        build_content_sets(str(tmp_path), ['clean', 'noise20'], photos=2, photos_per_class=3, progress=False,
                           **TINY_SETS)


@pytest.mark.parametrize('kwargs,message', [
    (dict(specs=['clean']), 'at least two different degradations'),
    (dict(photos=1), 'at least two photos'),
    (dict(patches=50), 'fewer than --patches 50'),
])
def test_content_sets_errors(kwargs, message):
    arguments = dict(specs=['clean', 'blur2'], photos=2, **TINY_SETS)
    arguments.update(kwargs)
    with pytest.raises(DDRSRError, match=message):
        build_content_sets(HR, progress=False, **arguments)


def test_chi_by_labelling_reads_which_factor_clusters():
    rng = np.random.RandomState(0)
    content = np.repeat(np.arange(3), 20)
    degradation = np.tile(np.repeat(np.arange(2), 10), 3)
    features = rng.randn(60, 10) * 0.1 + np.eye(3, 10)[content] * 5  # clusters by content only
    scores = chi_by_labelling(features, content, degradation, runs=2, progress=False)
    assert scores['content']['chi']['mean'] > 20 * scores['degradation']['chi']['mean']
    assert len(scores['embeddings']) == 2


@pytest.fixture
def tiny_encoder_zoo(tmp_path, monkeypatch):
    torch.manual_seed(0)
    checkpoint = tmp_path / 'tiny_srresnet.pth'
    torch.save({'params_ema': SRResNet(num_feat=8, num_block=2, upscale=4).state_dict()}, checkpoint)
    arch = {'type': 'SRResNet', 'num_feat': 8, 'num_block': 2, 'upscale': 4, 'with_gr': True}
    monkeypatch.setitem(zoo.MODELS, 'tiny_srresnet', {'file': str(checkpoint), 'scale': 4, 'arch': arch})


def test_classification_vs_sr_cli(tmp_path, tiny_encoder_zoo, capsys):
    plot = tmp_path / 'versus.png'
    argv = ['classification-vs-sr', '--hr', HR, '--photos', '2', '--specs', 'clean', 'noise20', '--patch', '8',
            '--patches', '6', '--train_patches', '8', '--short_side', '0', '--epochs', '1', '--model', 'tiny_srresnet',
            '--layer', 'body.1', '--runs', '2', '--plot', str(plot), '--device', 'cpu']
    assert cli.main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result['networks']) == 2 and result['points'] == 2 * 6 * 2
    for scores in result['networks'].values():
        assert scores['chi_content']['mean'] > 0 and scores['chi_degradation']['mean'] > 0
    assert set(result['classifier_accuracy']) == {'clean', 'noise20'} and plot.exists()

    status = cli.main(argv[:-4] + ['--layer', 'conv_first', '--plot', str(plot), '--device', 'cpu'])
    result = json.loads(capsys.readouterr().out)
    assert status == 0 and list(result['networks'])[1:] == ['tiny_srresnet:body.1', 'tiny_srresnet:conv_first']

    assert cli.main(argv[:-4] + ['--classifier_layer', 'layer9', '--device', 'cpu']) == 2
    assert "no layer 'layer9'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- training hook
def smoke_options(tmp_path, ddr_chi):
    with open(os.path.join(DATA, 'train_srgan_encoder_smoke.yml')) as f:
        opt = yaml.safe_load(f)
    for dataset in opt['datasets'].values():
        dataset['dataroot_gt'] = HR
    opt['train']['total_iter'] = 2
    opt['val']['ddr_chi'] = ddr_chi
    path = tmp_path / 'smoke_ddr_chi.yml'
    path.write_text(yaml.safe_dump(opt))
    return opt, str(path)


def test_option_check_knows_ddr_chi_keys(tmp_path):
    opt, _ = smoke_options(tmp_path, {'layer': 'body.1', 'specs': ['clean', 'noise20'], 'patches': 8})
    check_options(opt)
    opt['val']['ddr_chi'] = {'layr': 'body.1'}
    with pytest.raises(DDRSRError, match="did you mean 'val.ddr_chi.layer'"):
        check_options(opt)
    opt['val']['ddr_chi'] = {'layer': 'body.1', 'specs': ['clean', 'nosie20']}
    with pytest.raises(DDRSRError):
        check_options(opt)


def test_validation_logs_ddr_chi_during_training(tmp_path):
    from ddrsr.training.pipeline import train

    _, path = smoke_options(tmp_path, {'layer': ['body.1', 'upconv1'], 'specs': ['clean', 'noise20'], 'patches': 8,
                                       'patch': 8})
    train(root_path=tmp_path, argv=['-opt', path])
    logs = ''.join(open(p).read() for p in glob.glob(str(tmp_path / 'experiments' / '*' / '*.log')))
    for layer in ('body\\.1', 'upconv1'):  # one line per layer listed
        found = re.search(layer + r' \(clean/noise20, 16 patches\) @ iter 2: ([0-9.]+) ± ', logs)
        assert found and float(found.group(1)) > 0, logs[-2000:]


def test_bad_ddr_chi_layer_fails_before_training(tmp_path):
    from ddrsr.training.pipeline import train

    _, path = smoke_options(tmp_path, {'layer': 'body.7'})  # the smoke SRResNet has 2 blocks
    with pytest.raises(DDRSRError, match="no layer 'body.7'"):
        train(root_path=tmp_path, argv=['-opt', path])
    assert not glob.glob(str(tmp_path / 'experiments' / '*' / 'models' / '*.pth'))
