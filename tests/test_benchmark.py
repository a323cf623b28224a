"""scripts/benchmark.py end to end on tiny settings, and the optimisations it measures keep results unchanged."""
import copy
import json
import os

import numpy as np
import torch

from conftest import DATA, load_script


def _benchmark_module():
    return load_script('scripts/benchmark.py')


def test_quick_benchmark_writes_every_section(tmp_path, capsys):
    out, json_path = tmp_path / 'BENCHMARKS.md', tmp_path / 'bench.json'
    # --quick: the default model's architecture with fresh weights, tiny sizes, 2 repeats.
    status = _benchmark_module().main(['--quick', '--threads', '1', '--out', str(out), '--json', str(json_path)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    results = json.loads(captured.out)
    assert results == json.loads(json_path.read_text())
    doc = out.read_text()
    for heading in ('## Machine', '## Targets', '## 1. Inference', '## 2. Degradation synthesis', '### On a GPU',
                    '## 3. Tiling', '8K check', '## 4. Training speed', '## 4b. The training step', '## 5. Analysis',
                    'before and after',
                    '`--quick` run'):
        assert heading in doc, heading

    variants = results['inference']['variants']
    assert set(variants) == {'torch eager, NCHW', 'torch eager, channels-last', 'onnxruntime (CPUExecutionProvider)'}
    assert results['inference']['default'] == 'onnxruntime (CPUExecutionProvider)'  # Upsampler() on the CPU
    for row in variants.values():
        assert row['median_s'] > 0 and len(row['runs_s']) == 2 and row['correct'], row
    assert results['inference']['flops'] > 1e9  # the lite RRDBNet-DDR: ~3.2 GFLOP for 32x32 -> 128x128
    assert results['matmul']['gflops'] > 0

    synthesis = results['synthesis']
    assert synthesis['ddrsr']['images_per_s'] > 0 and synthesis['basicsr']['images_per_s'] > 0
    assert synthesis['speedup'] == synthesis['ddrsr']['images_per_s'] / synthesis['basicsr']['images_per_s']

    tiles = {row['tile']: row for row in results['tiling']['rows']}
    assert set(tiles) == {0, 16, 32} and tiles[0]['overhead'] == 0 and tiles[16]['tiles'] == 12
    assert tiles[16]['padded_area_ratio'] > tiles[32]['padded_area_ratio'] > tiles[0]['padded_area_ratio'] == 1
    for row in tiles.values():  # measured in a child process: its own peak, above its own start
        assert row['peak_rss_bytes'] >= row['rss_before_bytes'] > 50 * 2**20
    big = results['big_image']
    assert big['output'] == '384x256' and big['met'] and big['peak_rss_bytes'] > 0

    training = {row['name']: row for row in results['training']}
    assert set(training['smoke_srgan_encoder']['phases']) == {'pixel', 'gan'}  # gan_start_iter: 2 of 4
    assert 0 < training['smoke_rrdb_ddr']['synthesis_share'] < 1 and training['smoke_rrdb_ddr']['s_per_1k'] > 0
    assert results['analysis']['points'] == 24 and results['analysis']['median_s'] > 0
    assert synthesis['ops_per_call']['syncs'] == 0 and synthesis['ops_per_call']['ops'] > 0
    steps = {(row['option_file'].split('/')[-1], row['step']): row for row in results['train_step']}
    assert len(steps) == 4 and all(row['ms_per_iter'] > 0 for row in steps.values())
    for name in ('train_rrdb_ddr_smoke.yml', 'train_srgan_encoder_smoke.yml'):
        assert steps[name, 'ddrsr']['syncs_per_iter'] == 0  # losses stay on the device between log steps
        assert steps[name, 'basicsr']['syncs_per_iter'] >= 1  # BasicSR reads each loss with .item()

    verdicts = {row['target']: row['met'] for row in results['targets']}
    assert len(verdicts) == 6 and all(isinstance(met, bool) for target, met in verdicts.items() if 'CUDA' not in target)
    if not torch.cuda.is_available():
        assert 'not measured: no GPU lent' in doc
    assert 'channels-last in the torch backend' in doc and 'Poisson noise drawn only' in doc


def test_bad_setting_is_one_error_line(tmp_path, capsys):
    status = _benchmark_module().main(['--quick', '--sections', 'analysis', '--out', str(tmp_path / 'B.md'),
                                       '--threads', '1', '--analysis-hr', str(tmp_path / 'missing')])
    err = capsys.readouterr().err
    assert status == 2 and 'ddrsr: error: --analysis-hr' in err and 'Traceback' not in err


def test_device_parity_compares_each_step():
    from benchmarks.synthesis_bench import device_parity

    checks = device_parity(os.path.join(DATA, 'train_rrdb_ddr_smoke.yml'), 'cpu', size=32, batch=3)
    assert set(checks) == {'blur kernels', 'blur (filter2d)', 'jpeg', 'pipeline without noise'}
    assert all(c['max_abs'] == 0 and c['over_one_level'] == 0 for c in checks.values())  # CPU against itself


def test_poisson_on_a_subset_keeps_the_random_stream():
    from benchmarks.synthesis_bench import _previous_add_noise
    from ddrsr.data.degradations import add_noise
    from ddrsr.data.random_degradation import RandomDegradation

    degradation = RandomDegradation(noise_prob=1.0, gray_noise_prob=0.5, poisson_prob=1.0)
    lr = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    params = degradation.sample(6, torch.Generator().manual_seed(1))
    assert bool((params.poisson_scale > 0).all())
    every = add_noise(lr, params, torch.Generator().manual_seed(2))
    assert torch.equal(every, _previous_add_noise(lr, params, torch.Generator().manual_seed(2)))
    params.poisson_scale[::2] = 0  # without Poisson noise a sample is left exactly as the Gaussian step made it
    some = add_noise(lr, params, torch.Generator().manual_seed(2))
    assert torch.equal(some[::2], _previous_add_noise(lr, params, torch.Generator().manual_seed(2))[::2])
    assert not torch.equal(some[1::2], some[1::2].clamp(0, 1).mul(255).round().div(255))  # shot noise is there


def test_channels_last_gives_the_nchw_result():
    from tiny_models import tiny_ddr_net

    from ddrsr.inference import Upsampler

    rgb = (np.random.default_rng(0).random((37, 45, 3)) * 255).astype(np.uint8)
    model = tiny_ddr_net()
    outputs = [Upsampler(model=copy.deepcopy(model), device='cpu', tile=16, channels_last=flag, backend='torch').enhance(rgb)
               for flag in (False, True)]
    assert outputs[0].shape == (148, 180, 3)
    assert np.abs(outputs[0].astype(int) - outputs[1].astype(int)).max() <= 1  # float rounding, at most one level
