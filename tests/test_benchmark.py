"""The benchmark run end to end on tiny settings (its results dict), and the optimisations it measures keep
results unchanged."""
import copy
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from benchmarks.inference_bench import CHANNELS_LAST, NCHW, ORT
from benchmarks.suite import run_benchmarks
from conftest import DATA, ROOT
from ddrsr.errors import DDRSRError


def test_quick_benchmark_measures_every_section(tmp_path):
    """Every section once, on the quick settings: one timed run per figure, tiny sizes, fresh weights."""
    out, json_path = tmp_path / 'BENCHMARKS.md', tmp_path / 'bench.json'
    results = run_benchmarks(quick=True, threads=1, output=str(out), json=str(json_path))
    assert set(results) >= {'settings', 'machine', 'matmul', 'inference', 'synthesis', 'gpu', 'tiling', 'big_image',
                            'training', 'train_step', 'analysis', 'targets', 'optimisations'}
    assert results['settings']['quick'] and results['settings']['repeats'] == 1
    assert out.stat().st_size > 0 and json_path.stat().st_size > 0

    inference = results['inference']
    variants = inference['variants']
    assert set(variants) == {NCHW, CHANNELS_LAST, ORT}
    assert {label: row['backend'] for label, row in variants.items()} == {NCHW: 'torch', CHANNELS_LAST: 'torch',
                                                                          ORT: 'onnx'}
    assert inference['default'] == ORT  # Upsampler() on the CPU
    for row in variants.values():
        assert row['median_s'] > 0 and len(row['runs_s']) == 1 and row['correct'], row
    assert inference['flops'] > 1e9  # the lite RRDBNet-DDR: ~3.2 GFLOP for 32x32 -> 128x128
    assert inference['fastest_correct'] in variants and results['matmul']['gflops'] > 0

    synthesis = results['synthesis']
    assert synthesis['ddrsr']['images_per_s'] > 0 and synthesis['basicsr']['images_per_s'] > 0
    assert synthesis['speedup'] == synthesis['ddrsr']['images_per_s'] / synthesis['basicsr']['images_per_s']
    assert synthesis['ops_per_call']['syncs'] == 0 and synthesis['ops_per_call']['ops'] > 0
    noise = synthesis['noise_before_after']  # the Poisson-on-a-subset optimisation, timed against the old code
    assert noise['before_s'] > 0 and noise['after_s'] > 0 and noise['poisson_samples'] <= noise['batch']
    if not torch.cuda.is_available():
        assert results['gpu']['measured'] is False and 'no GPU' in results['gpu']['reason']

    tiles = {row['tile']: row for row in results['tiling']['rows']}
    assert set(tiles) == {0, 16} and tiles[0]['overhead'] == 0 and tiles[16]['tiles'] == 12
    assert tiles[16]['padded_area_ratio'] > tiles[0]['padded_area_ratio'] == 1
    for row in tiles.values():  # measured in a child process: its own peak, above its own start
        assert row['peak_rss_bytes'] >= row['rss_before_bytes'] > 50 * 2**20
    big = results['big_image']
    assert big['output'] == '384x256' and big['met'] and big['peak_rss_bytes'] > 0

    training = {row['name']: row for row in results['training']}
    assert set(training['smoke_srgan_encoder']['phases']) == {'pixel', 'gan'}  # gan_start_iter: 2 of 4
    assert 0 < training['smoke_rrdb_ddr']['synthesis_share'] < 1 and training['smoke_rrdb_ddr']['s_per_1k'] > 0
    steps = {(os.path.basename(row['option_file']), row['step']): row for row in results['train_step']}
    assert len(steps) == 4 and all(row['ms_per_iter'] > 0 for row in steps.values())
    for name in ('train_rrdb_ddr_smoke.yml', 'train_srgan_encoder_smoke.yml'):
        assert steps[name, 'ddrsr']['syncs_per_iter'] == 0  # losses stay on the device between log steps
        assert steps[name, 'basicsr']['syncs_per_iter'] >= 1  # BasicSR reads each loss with .item()
    assert results['analysis']['points'] == 24 and results['analysis']['median_s'] > 0

    verdicts = {row['target']: row['met'] for row in results['targets']}
    assert len(verdicts) == 6
    for target, met in verdicts.items():
        assert met is None if 'CUDA' in target and not torch.cuda.is_available() else isinstance(met, bool), target
    assert len(results['optimisations']) >= 4


def test_bad_setting_is_a_ddrsr_error(tmp_path):
    with pytest.raises(DDRSRError, match='--analysis_hr'):
        run_benchmarks(quick=True, sections=['analysis'], output=str(tmp_path / 'B.md'), threads=1,
                       analysis_hr=str(tmp_path / 'missing'))
    with pytest.raises(DDRSRError, match=r"unknown benchmark setting: 'thread' \(did you mean 'threads'\?\)"):
        run_benchmarks(thread=1)


def test_script_is_the_command_line_of_the_api():
    """scripts/benchmark.py only parses flags (its --help needs no torch) and calls benchmarks.suite."""
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'benchmark.py'), '--help'], cwd='/',
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and '--sections' in result.stdout and '--quick' in result.stdout


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


def test_report_shows_repository_paths_relative_to_the_root():
    from benchmarks.report import _rel

    assert _rel(os.path.join(ROOT, 'options', 'train_rrdb_x4_lite.yml')) == os.path.join('options', 'train_rrdb_x4_lite.yml')
    assert _rel('/elsewhere/options.yml') == '/elsewhere/options.yml'


def test_quick_precision_section_measures_every_runnable_precision(tmp_path):
    """The precision section on the quick settings: each runnable (backend, precision) timed, scored against torch
    fp32 on the test photos, its budget judged, and the 8K-check child run in each precision; OpenVINO is left out
    of --quick runs (it crashed a later test in the same process) and a line says so."""
    from benchmarks.precision_bench import runnable_pairs, within_budget

    out = tmp_path / 'P.md'
    results = run_benchmarks(quick=True, threads=1, sections=['precision'], output=str(out))
    precision = results['precision']
    all_pairs = [(row['backend'], row['precision']) for row in precision['rows']]
    pairs = [pair for pair in all_pairs if pair[0] != 'openvino']
    assert pairs == runnable_pairs() and ('onnx', 'int8') in pairs
    assert not any(backend == 'openvino' for backend, _ in all_pairs) and precision['openvino'] is None
    reference = precision['rows'][0]
    assert reference['vs_fp32_torch'] == 1 and all(delta == 0 for delta in reference['delta_db'].values())
    for row in precision['rows']:
        assert row['median_s'] > 0 and set(row['delta_db']) == set(precision['specs'])
        assert row['within_budget'] == within_budget(row['precision'], row['delta_db'], row['blockiness_delta'])
    assert [m['precision'] for m in precision['memory']] == list(dict.fromkeys(p for _, p in pairs))
    assert all(m['peak_rss_bytes'] > 0 and m['output'] == '384x256' for m in precision['memory'])
    text = out.read_text()
    assert '## 6. Precision' in text and 'within its quality budget' in text
    assert 'OpenVINO: not compared in this run' in text
    assert 'openvino' not in ''.join(t['why'] for t in results['targets'])  # targets are ddrsr's own paths


def test_precision_budget_is_per_spec_and_blockiness():
    from benchmarks.precision_bench import within_budget

    assert within_budget('int8', {'clean': -0.1, 'jpeg30': -0.15}, 0.02)
    assert not within_budget('int8', {'clean': -0.1, 'jpeg30': -0.16}, 0.0)  # one spec outside is outside
    assert not within_budget('bf16', {'clean': -0.06}, 0.0)
    assert not within_budget('int8', {'clean': 0.0}, 0.03)
    # fp32 on another backend differs from torch's only by rounding: that is within, a real loss is not
    assert within_budget('fp32', {'clean': -0.004, 'jpeg30': 0.002}, 0.0)
    assert not within_budget('fp32', {'clean': -0.05}, 0.0)


def test_engine_comparison_reads_openvino_against_ddrsrs_path_for_each_precision():
    from benchmarks.report import _engine_comparison

    rows = [{'model': 'm', 'backend': b, 'precision': p, 'median_s': t} for b, p, t in (
        ('torch', 'bf16', 2.0), ('onnx', 'fp32', 3.0), ('onnx', 'int8', 3.0),
        ('openvino', 'bf16', 1.0), ('openvino', 'fp32', 2.0), ('openvino', 'int8', 1.0))]
    line = _engine_comparison({'openvino': '2026.4.1', 'rows': rows})[-1]
    assert 'OpenVINO 2026.4.1' in line
    assert 'm bf16: 2.00× torch' in line and 'm fp32: 1.50× onnxruntime' in line and 'm int8: 3.00× onnxruntime' in line


def test_precision_targets_read_the_lite_model_against_onnx_fp32_and_the_full_one_against_torch_fp32():
    from benchmarks.report import _precision_targets

    rows = [{'model': model, 'backend': b, 'precision': p, 'median_s': t, 'vs_fp32_torch': ref / t}
            for model, ref in (('m_lite', 4.0), ('m', 4.0)) for b, p, t in (
                ('torch', 'fp32', 4.0), ('torch', 'bf16', 2.0), ('onnx', 'fp32', 3.0), ('onnx', 'int8', 2.5))]
    targets = {t['target']: t for t in _precision_targets({'size': 96, 'rows': rows})}
    lite_bf16 = targets["m_lite: bf16 >= 1.5x today's --backend auto (onnxruntime fp32)"]
    assert lite_bf16['figure'] == '1.50×' and lite_bf16['met']
    assert not targets["m_lite: int8 >= 1.5x today's --backend auto (onnxruntime fp32)"]['met']  # 1.2x
    assert targets['m: bf16 >= 2.0x fp32 torch']['met'] and not targets['m: int8 >= 3.0x fp32 torch']['met']
    assert not any(t.startswith('m_lite: fp32') or t.startswith('m: fp32') for t in targets)
