import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import DATA, ROOT
from ddrsr import cli


def run_cli(argv, capsys):
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_degrade_writes_deterministic_lq_set(tmp_path, capsys):
    hr = os.path.join(DATA, 'hr')
    status, out, err = run_cli(['degrade', '-i', hr, '-o', str(tmp_path / 'a'), '--spec', 'blur2_noise20',
                                '--device', 'cpu'], capsys)
    assert status == 0, err
    result = json.loads(out)
    assert result['count'] == 2 and result['spec'] == 'blur2_noise20'
    names = sorted(os.listdir(tmp_path / 'a'))
    assert names == ['seeding_0.png', 'seeding_1.png']
    assert Image.open(tmp_path / 'a' / names[0]).size == (32, 32)
    run_cli(['degrade', '-i', hr, '-o', str(tmp_path / 'b'), '--spec', 'blur2_noise20'], capsys)
    run_cli(['degrade', '-i', hr, '-o', str(tmp_path / 'c'), '--spec', 'blur2_noise20', '--seed', '5'], capsys)
    a, b, c = (np.asarray(Image.open(tmp_path / d / names[0])) for d in 'abc')
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize('argv,expected', [
    (['degrade', '-i', 'no/such/dir', '-o', 'x', '--spec', 'clean'], 'does not exist'),
    (['degrade', '-i', os.path.join(DATA, 'hr'), '-o', 'x', '--spec', 'blurry'], 'unknown degradation spec'),
    (['export', '-n', 'no_such_model', '-o', 'x.onnx'], "unknown model name"),
])
def test_user_errors_are_one_line(argv, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, err = run_cli(argv, capsys)
    assert status == 2 and out == ''
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('ddrsr: error:') and expected in lines[0]


def test_export_verify_reports_parity(tiny_zoo, tmp_path, capsys):
    path = tmp_path / 'tiny.onnx'
    status, out, err = run_cli(['export', '-n', 'tiny_ddr', '-o', str(path), '--verify', '--device', 'cpu'], capsys)
    assert status == 0, err
    result = json.loads(out)
    assert path.exists() and result['opset'] >= 17
    assert set(result['verify']) == {'37x53', '64x48'}
    assert all(v['max_abs'] < 1e-4 for v in result['verify'].values())


def test_train_script_rejects_misspelled_key_in_one_line(tmp_path):
    with open(os.path.join(DATA, 'train_srgan_encoder_smoke.yml')) as f:
        opt = yaml.safe_load(f)
    opt['train']['total_iters'] = opt['train'].pop('total_iter')
    path = tmp_path / 'bad.yml'
    path.write_text(yaml.safe_dump(opt))
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'ddrsr', 'train.py'), '-opt', str(path)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # exactly one line
    assert 'ddrsr: error:' in result.stderr and 'train.total_iters' in result.stderr and 'bad.yml' in result.stderr
    assert 'Traceback' not in result.stderr


def test_evaluate_two_tiny_images(tiny_zoo, capsys):
    status, out, err = run_cli(['evaluate', '-n', 'tiny_ddr', '--hr', os.path.join(DATA, 'hr'), '--specs', 'clean',
                                'noise20', '--crop_size', '64', '--device', 'cpu'], capsys)
    assert status == 0, err
    results = json.loads(out)['results']
    assert set(results) == {'bicubic', 'tiny_ddr'}
    bicubic = results['bicubic']
    assert bicubic['clean']['count'] == 2 and bicubic['clean']['psnr'] > bicubic['noise20']['psnr'] > 15
    assert 0 < bicubic['noise20']['ssim'] < bicubic['clean']['ssim'] <= 1


def test_evaluate_a_checkpoint_with_a_zoo_architecture(tiny_zoo, tmp_path, capsys):
    """-n NAME=CHECKPOINT: the zoo model's architecture with other weights (a training run's checkpoint)."""
    import torch
    from tiny_models import tiny_ddr_net

    torch.manual_seed(1)
    other = tiny_ddr_net()
    for param in other.parameters():
        param.data.normal_(0, 0.05)
    checkpoint = tmp_path / 'run' / 'net_g_10.pth'
    checkpoint.parent.mkdir()
    torch.save({'params': other.state_dict(), 'params_ema': other.state_dict()}, checkpoint)
    token = f'tiny_ddr={checkpoint}'
    status, out, err = run_cli(['evaluate', '-n', 'tiny_ddr', '-n', token, '--hr', os.path.join(DATA, 'hr'),
                                '--specs', 'noise20', '--crop_size', '64', '--device', 'cpu'], capsys)
    assert status == 0, err
    results = json.loads(out)['results']
    assert set(results) == {'bicubic', 'tiny_ddr', token}
    assert results[token]['noise20']['psnr'] != pytest.approx(results['tiny_ddr']['noise20']['psnr'], abs=1e-3)

    torch.save({'params_ema': {'conv_first.weight': torch.zeros(1)}}, tmp_path / 'wrong.pth')
    status, out, err = run_cli(['evaluate', '-n', f'tiny_ddr={tmp_path / "wrong.pth"}', '--hr', os.path.join(DATA, 'hr'),
                                '--specs', 'clean', '--crop_size', '64', '--device', 'cpu'], capsys)
    assert status != 0 and 'ddrsr: error:' in err and 'wrong.pth' in err and 'Traceback' not in err


def test_evaluate_writes_results_markdown_and_visual(tiny_zoo, tmp_path, capsys):
    import cv2
    hr = tmp_path / 'hr'
    hr.mkdir()
    for name in ('seeding_0.png', 'seeding_1.png'):  # NIQE needs >= 2 blocks of 96 px, so enlarge the crops
        image = cv2.imread(os.path.join(DATA, 'hr', name))
        cv2.imwrite(str(hr / name), cv2.resize(image, (208, 112), interpolation=cv2.INTER_CUBIC))
    markdown, visual = tmp_path / 'docs' / 'RESULTS.md', tmp_path / 'docs' / 'visual.png'
    status, out, err = run_cli(['evaluate', '-n', 'tiny_ddr', '--hr', str(hr), '--specs', 'clean', 'noise20',
                                '--crop_size', '208', '--niqe', '--output', str(markdown), '--visual', str(visual),
                                '--device', 'cpu'], capsys)
    assert status == 0, err
    report = json.loads(out)
    niqe = report['results']['bicubic']['noise20']['niqe']
    assert niqe > 0 and niqe != report['results']['bicubic']['clean']['niqe']
    text = markdown.read_text()
    bicubic_clean = report['results']['bicubic']['clean']
    assert f'| bicubic | {bicubic_clean["psnr"]:.2f} / {bicubic_clean["ssim"]:.3f} / {bicubic_clean["niqe"]:.2f}' in text
    assert 'ddrsr evaluate -n tiny_ddr' in text and 'visual.png' in text
    # per crop: the mean is the mean of the per-image PSNRs, and the report lists each crop's gain
    for row in report['results'].values():
        per_image = row['noise20']['per_image']
        assert sorted(per_image) == ['seeding_0.png', 'seeding_1.png']
        assert row['noise20']['psnr'] == pytest.approx(sum(per_image.values()) / 2)
    model, bicubic = report['results']['tiny_ddr']['clean'], report['results']['bicubic']['clean']
    gain = model['per_image']['seeding_1.png'] - bicubic['per_image']['seeding_1.png']
    assert '## Per crop: tiny_ddr − bicubic (dB)' in text
    assert f'| seeding_1 | {bicubic["per_image"]["seeding_1.png"]:.2f} | {gain:+.2f} |' in text
    from PIL import Image
    width, height = Image.open(visual).size
    assert 1.5 < width / height < 2.5  # 4 columns (input, bicubic, tiny_ddr, ground truth) x 2 rows (specs)


def test_evaluate_niqe_on_too_small_crops_is_one_line_error(tiny_zoo, capsys):
    status, out, err = run_cli(['evaluate', '--hr', os.path.join(DATA, 'hr'), '--specs', 'clean', '--crop_size', '64',
                                '--niqe', '--device', 'cpu'], capsys)
    assert status == 2 and 'NIQE needs' in err and '--crop_size' in err and 'Traceback' not in err


def test_release_targets_are_checked_only_for_present_rows():
    from ddrsr.results_report import check_targets

    def row(psnr):
        return {spec: {'psnr': psnr + i} for i, spec in enumerate(['blur2', 'noise20', 'blur2_noise20', 'jpeg30'])}

    table = {'bicubic': row(20.0), 'default': row(21.5)}
    checks = {check['target'].split(' on ')[-1]: check for check in check_targets(table, 'default')}
    assert set(checks) == {'blur2 (dB)', 'noise20 (dB)', 'blur2_noise20 (dB)', 'jpeg30 (dB)'}
    assert checks['blur2 (dB)']['met'] and not checks['noise20 (dB)']['met']
    table.update({'rrdb_ddr_bn_x4_lite': row(22.0), 'rrdb_bn_x4_lite': row(22.1)})
    ddr = [check for check in check_targets(table, 'default') if 'mean PSNR' in check['target']]
    assert len(ddr) == 1 and not ddr[0]['met'] and abs(ddr[0]['value'] + 0.1) < 1e-9


def test_release_targets_print_as_json_from_numpy_psnrs():
    """`ddrsr evaluate` prints its result as JSON: numpy PSNRs (as evaluation returns them) must not leak
    numpy bools or floats into the checks (it crashed after writing docs/RESULTS.md)."""
    import json

    import numpy as np
    from ddrsr.results_report import check_targets

    row = {spec: {'psnr': np.float64(30.0 + i)} for i, spec in enumerate(['blur2', 'noise20', 'blur2_noise20'])}
    table = {'bicubic': row, 'default': {k: {'psnr': v['psnr'] + 2} for k, v in row.items()},
             'rrdb_ddr_bn_x4_lite': row, 'rrdb_bn_x4_lite': row}
    checks = check_targets(table, 'default')
    assert len(checks) == 4 and json.loads(json.dumps(checks))[0]['met'] is True


# --------------------------------------------------------------------------- ddrsr upscale / ddrsr train
def test_upscale_subcommand_is_inference_py(tiny_zoo, tmp_path, capsys):
    """``ddrsr upscale`` takes inference.py's flags and keeps its exit statuses and skip policy."""
    import numpy as np
    from PIL import Image

    from ddrsr import cli

    (tmp_path / 'in').mkdir()
    Image.fromarray(np.full((10, 12, 3), 120, np.uint8)).save(tmp_path / 'in' / 'a.png')
    (tmp_path / 'in' / 'b.png').write_bytes(b'not a png')
    argv = ['upscale', '-i', str(tmp_path / 'in'), '-o', str(tmp_path / 'out'), '-n', 'tiny_ddr', '--backend', 'torch']
    assert cli.main(argv) == 1  # b.png failed, a.png written
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith('ddrsr: error:')][0].startswith('ddrsr: error: ')
    assert os.listdir(tmp_path / 'out') == ['a_out.png']
    assert cli.main(argv[:3] + ['-o', str(tmp_path / 'out'), '-n', 'tiny_ddr']) == 1
    assert 'skip' in capsys.readouterr().err


def test_train_subcommand_and_shims(tmp_path, capsys):
    from ddrsr import cli

    assert cli.main(['train', '-opt', str(tmp_path / 'missing.yml')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('ddrsr: error:') and 'missing.yml' in err[0]
    for shim in ('inference.py', os.path.join('ddrsr', 'train.py')):  # the documented commands stay ~3-line shims
        with open(os.path.join(ROOT, shim)) as f:
            code = [line for line in f if line.strip() and not line.lstrip().startswith(('#', '"""'))]
        assert len(code) <= 12, shim
