"""Distortion identification: the LIVE-style set, FF bit errors, BRISQUE features, the pipeline and its CLI."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import gennorm

from conftest import DATA
from ddrsr import cli, zoo
from ddrsr.analysis import distortions
from ddrsr.analysis.brisque import FEATURE_NAMES, brisque_features, fit_aggd, fit_ggd
from ddrsr.analysis.distortions import (CLASSES, DEFAULT_LEVELS, build_distortion_set, distort, fast_fading,
                                        flip_bits, payload_range)
from ddrsr.analysis.identification import identification_markdown, identify, layer_features, write_identification_report
from ddrsr.archs import SRResNet
from ddrsr.errors import DDRSRError

SEEDING = os.path.join(DATA, 'hr', 'seeding_0.png')


def region(size=64):
    return np.asarray(Image.open(SEEDING).convert('RGB'))[:size, :size].copy()


@pytest.fixture
def photos(tmp_path):
    """Eight 64x64 'photos': the quadrants of the two test images."""
    folder = tmp_path / 'photos'
    folder.mkdir()
    for k in (0, 1):
        image = Image.open(os.path.join(DATA, 'hr', f'seeding_{k}.png')).convert('RGB')
        for i in range(2):
            for j in range(2):
                image.crop((64 * j, 64 * i, 64 * j + 64, 64 * i + 64)).save(folder / f'p{k}{i}{j}.png')
    return str(folder)


TINY_SET = dict(regions=1, size=48, crop=32, short_side=0)


def tiny_srresnet():
    torch.manual_seed(0)
    return SRResNet(num_feat=8, num_block=2, upscale=4).eval()


def psnr(a, b):
    return 10 * np.log10(255.0 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


# --------------------------------------------------------------------------------------------- the set
def test_distortion_set_has_five_classes_all_levels_and_a_split_by_photo(photos):
    dataset = build_distortion_set(photos, test_fraction=0.25, seed=0, progress=False, **TINY_SET)
    per_region = sum(len(v) for v in DEFAULT_LEVELS.values())
    assert len(dataset) == 8 * per_region and dataset.images.shape == (len(dataset), 32, 32, 3)
    assert dataset.images.dtype == np.uint8
    for label, name in enumerate(CLASSES):
        assert sorted(set(dataset.levels[dataset.labels == label])) == list(range(len(DEFAULT_LEVELS[name])))
    train_sources = set(dataset.sources[dataset.train_index])
    test_sources = set(dataset.sources[dataset.test_index])
    assert train_sources and test_sources and not train_sources & test_sources  # no photo on both sides
    assert len(test_sources) == 2
    summary = dataset.summary()
    assert not set(summary['train_photos']) & set(summary['test_photos'])
    assert summary['ff_flipped_bits']['min'] >= 1
    assert dataset.tensors(dataset.test_index[:3]).shape == (3, 3, 32, 32)

    again = build_distortion_set(photos, test_fraction=0.25, seed=0, progress=False, **TINY_SET)
    assert np.array_equal(again.images, dataset.images)  # fully seeded
    fixed = build_distortion_set(photos, test_names=['p000.png', 'p111.png'], progress=False, **TINY_SET)
    assert sorted(fixed.summary()['test_photos']) == ['p000.png', 'p111.png']


def test_levels_go_from_mild_to_strong():
    clean = region(128)
    for name in ('GB', 'WN', 'JPEG', 'JP2K'):
        values = [psnr(distort(clean, name, level, np.random.default_rng(0))[0], clean)
                  for level in DEFAULT_LEVELS[name]]
        assert all(milder > stronger + 1 for milder, stronger in zip(values, values[1:])), (name, values)


def test_split_and_size_errors(photos, tmp_path):
    with pytest.raises(DDRSRError, match='at least one training and one test photo'):
        build_distortion_set(photos, test_names=['not_there.png'], progress=False, **TINY_SET)
    single = tmp_path / 'single'
    single.mkdir()
    Image.open(SEEDING).save(single / 'only.png')
    with pytest.raises(DDRSRError, match='at least one training and one test photo'):
        build_distortion_set(str(single), progress=False, **TINY_SET)
    with pytest.raises(DDRSRError, match='smaller than the region size'):
        build_distortion_set(photos, regions=1, size=80, crop=32, short_side=0, progress=False)


# -------------------------------------------------------------------------------------------------- FF
def test_fast_fading_is_seeded_decodable_and_leaves_the_header_alone():
    clean = region(96)
    first, bits = fast_fading(clean, 1e-3, np.random.default_rng(7))
    again, bits_again = fast_fading(clean, 1e-3, np.random.default_rng(7))
    other, _ = fast_fading(clean, 1e-3, np.random.default_rng(8))
    assert bits >= 1 and bits == bits_again and np.array_equal(first, again)
    assert first.shape == clean.shape and not np.array_equal(first, other)

    stream = distortions.encode_jpeg2000(clean, distortions.FF_RATIO)
    start, end = payload_range(stream)
    corrupted = flip_bits(stream, 5, np.random.default_rng(0))
    assert corrupted[:start] == stream[:start] and corrupted[end:] == stream[end:]
    difference = np.unpackbits(np.frombuffer(corrupted, np.uint8) ^ np.frombuffer(stream, np.uint8))
    assert difference.sum() == 5


def test_fast_fading_retries_then_flips_fewer_bits_when_streams_do_not_decode(monkeypatch):
    clean = region()
    original = distortions.encode_jpeg2000(clean, distortions.FF_RATIO)
    real_decode = distortions._decode
    calls = []

    def picky_decode(data):  # a decoder that rejects any stream with more than two bit errors
        calls.append(data)
        if len(data) == len(original):
            errors = np.unpackbits(np.frombuffer(data, np.uint8) ^ np.frombuffer(original, np.uint8)).sum()
            if errors > 2:
                raise OSError('broken data stream when reading image file')
        return real_decode(data)

    monkeypatch.setattr(distortions, '_decode', picky_decode)
    image, bits = fast_fading(clean, 0.02, np.random.default_rng(0))
    assert 1 <= bits <= 2 and image.shape == clean.shape
    assert len(calls) > distortions.FF_ATTEMPTS  # it retried and then halved


# --------------------------------------------------------------------------------------------- BRISQUE
def test_brisque_fits_recover_known_distributions():
    for shape in (1.0, 2.0):
        alpha, variance = fit_ggd(gennorm.rvs(shape, scale=0.5, size=100_000, random_state=0))
        assert alpha == pytest.approx(shape, abs=0.05)
    left = -np.abs(gennorm.rvs(1.0, scale=0.5, size=100_000, random_state=1))
    right = np.abs(gennorm.rvs(1.0, scale=1.0, size=100_000, random_state=2))
    nu, eta, var_left, var_right = fit_aggd(np.concatenate([left, right]))
    assert nu == pytest.approx(1.0, abs=0.1) and eta > 0  # heavier right side: positive mean
    assert var_left == pytest.approx(2 * 0.5 ** 2, rel=0.05) and var_right == pytest.approx(2 * 1.0 ** 2, rel=0.05)


def test_brisque_features_shape_and_response_to_noise_and_blur():
    clean = np.asarray(Image.open(SEEDING).convert('RGB'))
    features = brisque_features(clean)
    assert features.shape == (36, ) and len(FEATURE_NAMES) == 36 and np.isfinite(features).all()
    noisy = distort(clean, 'WN', 15.0, np.random.default_rng(0))[0]
    blurred = distort(clean, 'GB', 2.0, None)[0]
    # MSCN shape: noise makes the coefficients Gaussian-like (alpha up), blur makes them peaky (alpha down).
    assert brisque_features(noisy)[0] > features[0] + 0.5 > brisque_features(blurred)[0] + 0.5
    assert brisque_features(noisy)[1] > 2 * features[1]  # and the MSCN variance grows with noise


# -------------------------------------------------------------------------------------------- pipeline
def test_identify_end_to_end_on_tiny_data(photos, tmp_path):
    dataset = build_distortion_set(photos, test_fraction=0.25, progress=False, **TINY_SET)
    results = identify(dataset, model=tiny_srresnet(), layer='body.1', pca_dim=20, cnn_epochs=1, cnn_crop=24,
                       progress=False)
    assert list(results) == ['ddr', 'ddr_stats', 'brisque', 'resnet18']
    for result in results.values():
        confusion = np.asarray(result['confusion'])
        assert confusion.sum() == len(dataset.test_index)
        assert result['accuracy'] == pytest.approx(np.trace(confusion) / confusion.sum())
        assert all(0 <= p <= 1 for p in result['precision'].values())
    assert results['ddr']['pca_dim'] == 20 == results['brisque']['pca_dim']  # min(pca_dim, 36 features)
    assert results['ddr_stats']['feature_dim'] == 16 and results['ddr_stats']['pca_dim'] == 16  # 8 means + 8 stds
    assert results['brisque']['accuracy'] > 0.4  # chance is 0.2; WN and JPEG are easy even here
    report = write_identification_report(results, dataset.summary(), str(tmp_path / 'out'))
    assert report['table'].splitlines()[0] == '| method | GB | WN | JPEG | JP2K | FF | ALL |'
    assert json.load(open(report['json']))['results']['ddr']['accuracy'] == results['ddr']['accuracy']
    assert os.path.getsize(report['plot']) > 0
    assert identification_markdown(results).count('\n') == 6


def test_layer_features_flat_pooled_and_stats_in_one_pass(photos):
    dataset = build_distortion_set(photos, test_fraction=0.25, progress=False, **TINY_SET)
    index = np.arange(4)
    model = tiny_srresnet()
    full = layer_features(model, 'body.1', dataset, index, kinds=('flat', 'stats'), progress=False)
    pooled = layer_features(model, 'body.1', dataset, index, pool=4, progress=False)['flat']
    maps = full['flat'].reshape(4, 8, 32, 32)
    assert full['flat'].shape == (4, 8 * 32 * 32) and pooled.shape == (4, 8 * 8 * 8)
    assert np.allclose(pooled[:, 0], maps[:, 0, :4, :4].mean(axis=(1, 2)), atol=1e-5)
    assert np.allclose(full['stats'][:, :8], maps.mean(axis=(2, 3)), atol=1e-5)
    assert np.allclose(full['stats'][:, 8:], maps.std(axis=(2, 3), ddof=1), atol=1e-4)
    with pytest.raises(DDRSRError, match='did you mean|Did you mean'):
        identify(dataset, methods=['ddr'], model=model, layer='body.9', progress=False)


# ------------------------------------------------------------------------------------------------- CLI
@pytest.fixture
def tiny_encoder_zoo(tmp_path, monkeypatch):
    checkpoint = tmp_path / 'tiny_srresnet.pth'
    torch.save({'params_ema': tiny_srresnet().state_dict()}, checkpoint)
    arch = {'type': 'SRResNet', 'num_feat': 8, 'num_block': 2, 'upscale': 4, 'with_gr': True}
    monkeypatch.setitem(zoo.MODELS, 'tiny_srresnet', {'file': str(checkpoint), 'scale': 4, 'arch': arch})


def run_cli(argv, capsys):
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_identify_cli_writes_table_json_and_figure(photos, tmp_path, tiny_encoder_zoo, capsys):
    out = tmp_path / 'identify'
    status, stdout, stderr = run_cli(
        ['identify', '--hr', photos, '--short_side', '0', '--size', '48', '--crop', '32', '--regions', '1',
         '--model', 'tiny_srresnet', '--layer', 'body.1', '--pca', '16', '--methods', 'ddr', 'ddr_stats', 'brisque',
         '--output', str(out), '--device', 'cpu'], capsys)
    assert status == 0, stderr
    result = json.loads(stdout)
    assert set(result['results']) == {'ddr', 'ddr_stats', 'brisque'}
    assert '| DDR (tiny_srresnet:body.1) + SVM |' in result['table_markdown']
    assert (out / 'identification.md').read_text() == result['table_markdown']
    assert (out / 'identification.png').exists() and result['dataset']['test_samples'] > 0


@pytest.mark.parametrize('extra,message', [
    (['--layer', 'body.9'], "no layer 'body.9'"),
    (['--methods', 'sift'], 'unknown --methods sift'),
    (['--size', '200'], 'smaller than the region size'),
    (['--test_list', 'missing.txt'], 'does not exist'),
])
def test_identify_cli_errors_are_one_line(photos, tiny_encoder_zoo, capsys, extra, message):
    argv = ['identify', '--hr', photos, '--short_side', '0', '--size', '48', '--crop', '32', '--model', 'tiny_srresnet',
            '--layer', 'body.1', '--device', 'cpu']
    status, stdout, stderr = run_cli(argv + extra, capsys)
    lines = [line for line in stderr.splitlines() if line.startswith('ddrsr: error:')]
    assert status == 2 and stdout == '' and len(lines) == 1 and message in lines[0], stderr
