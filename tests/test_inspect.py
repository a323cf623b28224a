"""ddrsr inspect: JPEG tables, noise estimators, DDR regressors (fit, safe file, prediction), CLI and report."""
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tiny_models import tiny_ddr_net
from ddrsr.errors import DDRSRError
from ddrsr.inspection import (DDRRegressors, Inspector, jpeg_quality, photo_tiles, pooled_features, quality_from_tables,
                           recommend_strength, sigma_skimage, sigma_wavelet_mad)
from ddrsr.inspection.jpeg_quality import IJG_CHROMA, IJG_LUMA, ijg_table
from ddrsr.inspection.regressors import FORMAT_VERSION, encoder_fingerprint, fit_classifier, fit_regressor, predict_head


def _photo(seed=0, size=(96, 128)):
    """A smooth, photo-like RGB image in [0, 1] (gradients and blobs, no noise)."""
    yy, xx = np.mgrid[0:size[0], 0:size[1]] / max(size)
    rng = np.random.RandomState(seed)
    channels = [0.5 + 0.3 * np.sin(2 * np.pi * (rng.rand() * 2 * xx + rng.rand() * 2 * yy)) for _ in range(3)]
    return np.clip(np.stack(channels, axis=2), 0, 1).astype(np.float32)


def _jpeg_bytes(rgb, quality):
    buffer = io.BytesIO()
    Image.fromarray((rgb * 255).round().astype(np.uint8)).save(buffer, 'JPEG', quality=quality)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------ JPEG tables
@pytest.mark.parametrize('quality', [1, 10, 30, 49, 50, 51, 75, 90, 95, 99, 100])
def test_ijg_tables_read_back_exactly(quality):
    result = quality_from_tables({0: list(ijg_table(IJG_LUMA, quality)), 1: list(ijg_table(IJG_CHROMA, quality))})
    assert result.exact and result.quality_range[0] <= quality <= result.quality_range[1]
    assert result.quality == quality or result.quality_range[0] != result.quality_range[1]


@pytest.mark.parametrize('quality', [30, 62, 95])
def test_pillow_jpeg_quality_is_exact(quality, tmp_path):
    path = tmp_path / 'a.jpg'
    path.write_bytes(_jpeg_bytes(_photo(), quality))
    result = jpeg_quality(str(path))
    assert (result.quality, result.exact) == (quality, True)


def test_png_and_foreign_tables(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'a.png')
    assert jpeg_quality(str(tmp_path / 'a.png')).describe() == 'not a JPEG'
    foreign = quality_from_tables({0: list(ijg_table(IJG_LUMA, 80) + 1)})
    assert not foreign.exact and abs(foreign.quality - 80) <= 3 and foreign.error > 0
    (tmp_path / 'bad.jpg').write_bytes(b'not an image')
    with pytest.raises(DDRSRError):
        jpeg_quality(str(tmp_path / 'bad.jpg'))


# ------------------------------------------------------------------------------------------------ noise
@pytest.mark.parametrize('estimator', [sigma_skimage, sigma_wavelet_mad])
@pytest.mark.parametrize('sigma', [0.0, 5.0, 15.0, 25.0])
def test_noise_estimators_measure_known_noise(estimator, sigma):
    rng = np.random.RandomState(1)
    clean = _photo(size=(128, 128))
    noisy = np.clip(clean + rng.randn(*clean.shape) * sigma / 255, 0, 1)
    assert abs(estimator(noisy) - sigma) < 1.0 + 0.08 * sigma


# ------------------------------------------------------------------------------------------------ regressors
def test_photo_tiles_are_block_aligned_and_bounded():
    lq = torch.arange(1 * 3 * 300 * 700, dtype=torch.float32).reshape(1, 3, 300, 700)
    tiles = photo_tiles(lq)
    assert tiles.shape[1:] == (3, 64, 64) and len(tiles) <= 16
    first = tiles[0, 0, 0, 0].item()
    top, left = divmod(int(first), 700)
    assert top % 8 == 0 and left % 8 == 0
    assert photo_tiles(torch.rand(1, 3, 30, 45)).shape == (1, 3, 24, 40)
    with pytest.raises(DDRSRError, match='at least 16'):
        photo_tiles(torch.rand(1, 3, 12, 100))


def _tiny_regressors(model, strength_table=None):
    """Heads fitted on the tiny encoder's features of noisy tiny photos (noise sigma = target)."""
    rng = np.random.RandomState(0)
    features, noise = [], []
    for index in range(24):
        sigma = rng.uniform(0, 30)
        rgb = np.clip(_photo(index, (32, 32)) + rng.randn(32, 32, 3) * sigma / 255, 0, 1)
        tiles = photo_tiles(torch.from_numpy(rgb.transpose(2, 0, 1)).float()[None])
        features.append(pooled_features(model.encoder, tiles)[0])
        noise.append(sigma)
    features, noise = np.array(features), np.array(noise)
    mean, scale = features.mean(0), features.std(0) + 1e-8
    x = (features - mean) / scale
    arrays = {'format_version': np.array(FORMAT_VERSION), 'feature_mean': mean, 'feature_scale': scale,
              'encoder_fingerprint': np.array(encoder_fingerprint(model.encoder))}
    heads = {'blur': fit_regressor(x, noise / 10, 'ridge'), 'noise': fit_regressor(x, noise, 'svr'),
             'jpeg_quality': fit_regressor(x, 30 + 2 * noise, 'ridge'),
             'jpeg_present': fit_classifier(x, np.where(noise > 15, 'jpeg', 'none'), ['none', 'jpeg']),
             'spec': fit_classifier(x, np.where(noise > 15, 'noise20', 'clean'), ['clean', 'noise20'])}
    for name, head in heads.items():
        arrays.update({f'{name}.{k}': v for k, v in head.items()})
    arrays.update(strength_table or {})
    return DDRRegressors(arrays), x, noise


def test_regressor_file_round_trip_without_pickle(tmp_path):
    model = tiny_ddr_net()
    regressors, x, noise = _tiny_regressors(model)
    path = regressors.save(str(tmp_path / 'r.npz'))
    loaded = DDRRegressors.load(path)
    with np.load(path, allow_pickle=False) as data:  # nothing in the file needs unpickling
        assert all(data[key].dtype != object for key in data.files)
    for name in ('blur', 'noise', 'jpeg_quality', 'jpeg_present', 'spec'):
        assert np.allclose(predict_head(loaded.heads[name], x), predict_head(regressors.heads[name], x))
    fitted = predict_head(loaded.heads['noise'], x)
    assert np.abs(fitted - noise).mean() < np.abs(noise - noise.mean()).mean()  # it learnt something
    np.savez(tmp_path / 'evil.npz', **dict(loaded.arrays, code=np.array([{'a': 1}], dtype=object)))  # a pickle
    with pytest.raises(DDRSRError):
        DDRRegressors.load(str(tmp_path / 'evil.npz'))
    arrays = dict(loaded.arrays, format_version=np.array(FORMAT_VERSION + 1))
    np.savez(tmp_path / 'future.npz', **arrays)
    with pytest.raises(DDRSRError, match='version'):
        DDRRegressors.load(str(tmp_path / 'future.npz'))
    with pytest.raises(DDRSRError, match='train_inspect_regressors'):
        DDRRegressors.load(str(tmp_path / 'missing.npz'))


def test_inspector_refuses_regressors_of_another_encoder():
    regressors, _, _ = _tiny_regressors(tiny_ddr_net(seed=0))
    with pytest.raises(DDRSRError, match='another DDR encoder'):
        Inspector(tiny_ddr_net(seed=3), regressors)


def test_recommended_strength_weights_the_table_by_confidence(monkeypatch):
    from ddrsr.weights.manifest import state_fingerprint

    model = tiny_ddr_net()
    model.clean_embedding.zero_()
    other_table = {'strength@other.specs': np.array(['clean']), 'strength@other.best': np.array([0.5]),
                   'strength@other.sr_fingerprint': np.array('0123456789abcdef')}
    table = {'strength@tiny.specs': np.array(['clean', 'noise20']), 'strength@tiny.best': np.array([0.0, 1.5]),
             'strength@tiny.sr_fingerprint': np.array(state_fingerprint(model)), **other_table}
    regressors, _, _ = _tiny_regressors(model, table)
    strength, basis = recommend_strength({'clean': 0.2, 'noise20': 0.8}, regressors, model)
    assert strength == 1.2 and 'PSNR-best' in basis
    # The table belongs to the weights, not to the software: a torch upgrade keeps it (it used to fall back to 1).
    monkeypatch.setattr(torch, '__version__', '99.0.0')
    assert recommend_strength({'clean': 0.2, 'noise20': 0.8}, regressors, model) == (strength, basis)
    other = tiny_ddr_net(seed=5)
    other.clean_embedding.zero_()
    assert recommend_strength({'clean': 1.0, 'noise20': 0.0}, regressors, other)[0] == 1.0
    no_table, _, _ = _tiny_regressors(model)
    assert recommend_strength({'clean': 1.0}, no_table, model) == (1.0, recommend_strength({}, no_table, model)[1])


def test_measure_reports_every_estimate():
    model = tiny_ddr_net()
    regressors, _, _ = _tiny_regressors(model)
    result = Inspector(model, regressors).measure(_photo(size=(80, 72)))
    assert set(result['noise_sigma_by_estimator']) == {'skimage', 'wavelet_mad'}
    assert set(result['ddr']) >= {'blur_sigma', 'noise_sigma', 'jpeg_quality', 'jpeg_probability'}
    assert result['nearest_spec']['name'] in ('clean', 'noise20') and 0.5 <= result['nearest_spec']['confidence'] <= 1
    assert result['recommended_strength'] == 1.0 and 'jpeg' not in result


# ------------------------------------------------------------------------------------------------ CLI
@pytest.fixture
def inspect_setup(tiny_zoo, tmp_path):
    model = tiny_ddr_net()
    model.clean_embedding.fill_(0.1)
    torch.save({'params_ema': model.state_dict()}, tiny_zoo)  # the zoo's tiny model, now with a clean embedding
    regressors, _, _ = _tiny_regressors(model)
    photos = tmp_path / 'photos'
    photos.mkdir()
    (photos / 'a.jpg').write_bytes(_jpeg_bytes(_photo(1, (40, 48)), 40))
    Image.fromarray((_photo(2, (36, 36)) * 255).astype(np.uint8)).save(photos / 'b.png')
    (photos / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n truncated')
    return str(photos), regressors.save(str(tmp_path / 'r.npz'))


def test_cli_inspect_json_and_bad_files(inspect_setup, capsys):
    from ddrsr.cli import main

    photos, regressors = inspect_setup
    assert main(['inspect', photos, '--json', '-n', 'tiny_ddr', '--regressors', regressors, '--device', 'cpu']) == 2
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert [r['file'].rsplit('/', 1)[1] for r in results] == ['a.jpg', 'b.png']
    assert results[0]['jpeg']['quality'] == 40 and results[0]['jpeg']['exact']
    assert results[1]['jpeg']['text'] == 'not a JPEG'
    errors = [line for line in captured.err.splitlines() if line.startswith('ddrsr: error:')]
    assert len(errors) == 2 and 'broken.png' in errors[0] and '1 of 3' in errors[1]


def test_cli_inspect_text_and_report(inspect_setup, tmp_path, capsys):
    from ddrsr.cli import main

    photos, regressors = inspect_setup
    report = tmp_path / 'report'
    assert main(['inspect', f'{photos}/a.jpg', '--report', str(report), '-n', 'tiny_ddr', '--regressors', regressors,
                 '--device', 'cpu']) == 0
    out = capsys.readouterr().out
    assert 'q 40 exactly' in out and 'recommended --strength' in out
    image = Image.open(report / 'a_inspect.png')
    assert image.size[0] > 600 and image.size[1] > 300


def test_cli_inspect_help_has_an_example(capsys):
    from ddrsr.cli import main

    with pytest.raises(SystemExit):
        main(['inspect', '--help'])
    assert 'example:' in capsys.readouterr().out


def test_photo_tiles_prefer_detailed_regions():
    flat = torch.full((1, 3, 128, 512), 0.5)
    flat[:, :, :, 256:] += 0.3 * torch.rand(1, 3, 128, 256)  # detail only in the right half
    tiles = photo_tiles(flat, max_tiles=8)
    assert len(tiles) == 8 and all(float(t.std()) > 0.05 for t in tiles)


def test_accuracy_measures_every_setting():
    from ddrsr.data.degradations import NAMED_SPECS
    from ddrsr.inspection.accuracy import GROUPS, mae, meets, settings, spec_accuracy, synthetic, table_reading

    model = tiny_ddr_net()
    regressors, _, _ = _tiny_regressors(model)
    inspector = Inspector(model, regressors)
    crops = torch.from_numpy(np.stack([_photo(i, (64, 64)) for i in range(2)]).transpose(0, 3, 1, 2))
    rows = synthetic(inspector, crops, seed=0, progress=False)
    assert len(rows) == 2 * len(settings(0)) and {r['group'] for r in rows} == set(GROUPS)
    combined = [r for r in rows if r['group'] == 'combined']
    assert all(0 <= r['blur'] <= 4 and 0 <= r['noise'] <= 30 and 30 <= r['jpeg'] <= 95 for r in combined)
    assert mae(rows, 'ddr_blur', 'blur', lambda r: r['group'] == 'clean') == (
        float(np.mean([r['ddr_blur'] for r in rows if r['group'] == 'clean'])), 2)  # the true blur is 0 there
    assert mae(rows, 'ddr_jpeg', 'jpeg', lambda r: False)[1] == 0
    assert meets(2.9, 3) and not meets(3.5, 3)
    confusion = spec_accuracy(inspector, crops, seed=0)
    assert set(confusion) == set(NAMED_SPECS) and all(sum(row.values()) == 2 for row in confusion.values())
    exact, total = table_reading(crops, count=1)
    assert total == 14 and exact == {'Pillow': 14, 'OpenCV': 14}  # IJG tables: read exactly by construction


def test_docstring_examples_run():
    import doctest
    import importlib

    for name in ('ddrsr.archs.stylemod_rrdbnet_arch', 'ddrsr.inference.upsampler', 'ddrsr.inspection.jpeg_quality',
                 'ddrsr.inspection.noise', 'ddrsr.inspection.regressors', 'ddrsr.inspection.accuracy', 'ddrsr.models.ema',
                 'ddrsr.models.fast_step',
                 'ddrsr.data.degradations', 'benchmarks.timing'):
        module = importlib.import_module(name)  # (ddrsr.inspection.jpeg_quality is also a function's name)
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_shipped_regressors_belong_to_the_default_models_encoder():
    """weights/inspect_regressors_lite.npz must be refitted (scripts/train_inspect_regressors.py) with a new encoder."""
    from ddrsr.inspection import DEFAULT_REGRESSORS
    from ddrsr.loader import load

    regressors = DDRRegressors.load(DEFAULT_REGRESSORS)
    assert regressors.fingerprint == encoder_fingerprint(load().network.encoder)
    assert set(regressors.spec_names) == {'clean', 'blur2', 'blur4', 'noise20', 'blur2_noise20', 'jpeg30', 'jpeg50'}
