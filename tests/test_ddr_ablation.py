"""scripts/ddr_ablation.py evaluates paired runs and words the verdict of ddrsr.analysis.ablation."""
import json
import os
import subprocess
import sys

import torch

from conftest import DATA, ROOT


def _save_pair(experiments, seed):
    """A plain run and a DDR run whose StyleMods are still the identity: the same network, so DDR gains 0."""
    from basicsr.archs import build_network

    from ddrsr.zoo import model_entry

    torch.manual_seed(seed)
    plain = build_network(dict(model_entry('rrdb_bn_x4_lite')['arch']))
    ddr = build_network(dict(model_entry('rrdb_ddr_bn_x4_lite')['arch']))
    missing, unexpected = ddr.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(key.startswith(('encoder.', 'style_mods.', 'clean_embedding')) for key in missing)
    for arm, network in (('plain', plain), ('ddr', ddr)):
        path = experiments / f'ablation_{arm}_bn_seed{seed}' / 'models' / 'net_g_20.pth'
        path.parent.mkdir(parents=True)
        torch.save({'params_ema': network.state_dict()}, path)


def test_report_from_existing_runs(tmp_path):
    experiments = tmp_path / 'experiments'
    for seed in (0, 3):
        _save_pair(experiments, seed)
    meta = tmp_path / 'meta.txt'
    meta.write_text('seeding_0.png\n')
    doc = tmp_path / 'ABLATION.md'
    result = subprocess.run([sys.executable, 'scripts/ddr_ablation.py', '--skip_training', '--iterations', '20', '--seeds', '0', '3',
                             '--experiments', str(experiments), '--hr', os.path.join(DATA, 'hr'),
                             '--meta_info', str(meta), '--crop_size', '64', '--output', str(doc), '--device', 'cpu'],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary['gains']) == {'0', '3'} and summary['passed'] is False
    assert all(abs(gain) < 1e-6 for gain in summary['gains'].values())  # identity StyleMods: the same network
    text = doc.read_text()
    assert text.count('| RRDB (b+n) |') == 2 and text.count('| RRDB-DDR (b+n) |') == 2
    assert 'does **not** beat' in text


def test_missing_run_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, 'scripts/ddr_ablation.py', '--skip_training', '--experiments',
                             str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and 'is missing; run without --skip_training' in result.stderr
    assert 'Traceback' not in result.stderr
