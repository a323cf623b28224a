"""scripts/analyze_release.py (ddrsr.analysis.reproduction.release): checkpoint links and the report."""
import json
import os

import torch

from ddrsr.analysis.reproduction import release
from ddrsr.analysis.reproduction.runs import RRDB_LAYERS
from ddrsr.analysis.reproduction.sections import ReportPaths
from ddrsr.analysis.reproduction.stages import Cache


def test_blind_checkpoints_start_from_the_clean_encoder(tmp_path):
    models = tmp_path / 'run' / 'models'
    models.mkdir(parents=True)
    for name in ('net_g_1000.pth', 'net_g_500.pth', 'net_g_latest.pth', 'net_d_500.pth'):
        torch.save({}, models / name)
    start = tmp_path / 'clean.pth'
    torch.save({}, start)
    links = release.blind_checkpoints(str(tmp_path / 'links'), experiment=str(tmp_path / 'run'), start=str(start))
    assert [os.path.basename(link) for link in links] == ['net_g_0.pth', 'net_g_500.pth', 'net_g_1000.pth']
    assert os.path.realpath(links[0]) == str(start)
    assert release.blind_checkpoints(str(tmp_path / 'none'), experiment=str(tmp_path / 'missing')) == []


def test_report_from_the_cache_shows_both_sections(tmp_path):
    plot = tmp_path / 'p.png'
    plot.write_bytes(b'png')
    work = tmp_path / 'work'
    cache = Cache(str(work))
    evolution = {layer: {'command': f'ddrsr evolution --layer {layer}',
                         'result': {'plot': str(plot), 'rows': [
                             {'iteration': i, 'chi_mean': chi, 'chi_std': 0.5, 'psnr_clean': 38.0 + i / 1000}
                             for i, chi in ((0, 8.0), (500, 50.0 * factor), (1000, 70.0 * factor))]}}
                 for layer, factor in zip(release.EVOLUTION_LAYERS, (1, 4))}
    cache.save('evolution', evolution)
    models = ['rrdb_clean_x4_lite', 'rrdb_bn_x4_lite', 'rrdb_ddr_bn_x4_lite', 'rrdb_ddr_real_x4_lite']
    cache.save('generalization', {layer: {'command': f'ddrsr generalization --layer {layer}', 'result': {
        'plot': str(plot), 'models': [{'model': name, 'layer': 'body.5' if layer == 'body' else layer,
                                       'chi': {'mean': 3.0 - i, 'std': 0.1}} for i, name in enumerate(models)]}}
        for layer in RRDB_LAYERS})
    doc = tmp_path / 'REPORT.md'
    paths = ReportPaths(str(work), str(doc), str(tmp_path / 'fig'))
    assert release.write_report(paths, cache, ['--stages', 'report']) == str(doc)
    text = doc.read_text()
    assert 'scripts/analyze_release.py --stages report' in text
    assert '| 1000 |' in text and 'Spearman ρ(iteration, CHI) = +1.00' in text
    assert '## 2. Generalization: DDR-CHI of the shipped RRDB models and the default' in text
    assert 'ddrsr evolution --layer body.7' in text and 'ddrsr generalization --layer conv_hr' in text
    assert os.path.isfile(tmp_path / 'fig' / 'release_evolution_body_7.png')
    assert os.path.isfile(tmp_path / 'fig' / 'release_generalization_conv_hr.png')
    assert json.loads((work / 'evolution.json').read_text()) == evolution
