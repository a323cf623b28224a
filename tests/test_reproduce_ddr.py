"""scripts/reproduce_ddr.py (ddrsr.analysis.reproduction): the derived trainings, checkpoint bookkeeping and the
verdicts the report prints."""
import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import ROOT
from ddrsr.analysis import verdicts
from ddrsr.analysis.reproduction import report, runs as reproduction_runs, sections
from ddrsr.analysis.reproduction.sections import ReportPaths


def test_derived_runs_change_only_what_the_experiment_asks(tmp_path):
    runs, gan_start = reproduction_runs.training_runs(str(tmp_path))
    base = reproduction_runs.load_option(reproduction_runs.ENCODER_OPTION)
    assert runs['gr']['option'] == reproduction_runs.ENCODER_OPTION and gan_start == base['train']['gan_start_iter']
    nogr = runs['nogr']['opt']
    assert nogr['network_g']['with_gr'] is False and nogr['name'] != base['name']
    assert {k: v for k, v in nogr['network_g'].items() if k != 'with_gr'} == \
        {k: v for k, v in base['network_g'].items() if k != 'with_gr'}
    assert nogr['train'] == base['train']

    more = runs['nogr_more']['opt']
    assert more['network_g']['with_gr'] is False
    assert more['path']['pretrain_network_g'] == f'experiments/{nogr["name"]}/models/net_g_{gan_start}.pth'
    assert more['train']['gan_start_iter'] >= more['train']['total_iter']  # L1 only
    # The learning rate the source run had reached at gan_start_iter, after its milestones.
    scheduler = base['train']['scheduler']
    expected = float(base['train']['optim_g']['lr']) * scheduler['gamma'] ** sum(
        m < gan_start for m in scheduler['milestones'])
    assert more['train']['optim_g']['lr'] == pytest.approx(expected)

    reproduction_runs.write_option(runs['nogr_more'])
    with open(os.path.join(ROOT, runs['nogr_more']['option'])) as f:
        assert yaml.safe_load(f) == more


def test_models_and_layers_follow_the_run_schedule(tmp_path):
    runs, gan_start = reproduction_runs.training_runs(str(tmp_path))
    models = {m['key']: m for m in reproduction_runs.analysed_models(runs, gan_start)}
    assert models['srresnet_nogr']['checkpoint'].endswith(f'srgan_nogr_x4_lite/models/net_g_{gan_start}.pth')
    assert models['srgan_gr']['gan_iters'] == runs['gr']['total_iter'] - gan_start
    assert models['srresnet_gr_more']['l1_iters'] == gan_start + reproduction_runs.MORE_ITERATIONS
    assert reproduction_runs.block_layers({'network_g': {'num_block': 16}}) == ['conv_first', 'body.3', 'body.7', 'body.15']


def test_evolution_links_count_iterations_from_the_start(tmp_path):
    runs = {}
    for key, iterations in (('gr', (500, 1000, 1500)), ('gr_more', (500, 1000))):
        experiment = tmp_path / key
        os.makedirs(experiment / 'models')
        for iteration in iterations:
            torch.save({}, experiment / 'models' / f'net_g_{iteration}.pth')
        (experiment / 'models' / 'net_g_latest.pth').write_bytes(b'')
        runs[key] = {'experiment': str(experiment)}
    links = reproduction_runs.cumulative_checkpoints(runs, 'gr', 1000, str(tmp_path / 'links'))
    # The first run's GAN-phase checkpoint (1500 > gan_start) is left out; the continuation is shifted.
    assert [os.path.basename(p) for p in links] == ['net_g_500.pth', 'net_g_1000.pth', 'net_g_1500.pth',
                                                    'net_g_2000.pth']
    assert os.path.realpath(links[2]) == str(tmp_path / 'gr_more' / 'models' / 'net_g_500.pth')


def layer_entry(values):
    return {'result': {'layers': [{'layer': layer, 'chi': {'mean': v, 'std': 0.0}} for layer, v in values.items()]}}


def test_expectations_are_judged_from_the_numbers():
    layers = {'srresnet_nogr': layer_entry({'body.7': 5.0}), 'srresnet_gr': layer_entry({'body.7': 250.0}),
              'srgan_nogr': layer_entry({'body.7': 30.0})}
    met = [e.met for e in verdicts.paper_expectations(layers, 'body.7')]
    assert met == [True, True, True, True, True]
    layers['srresnet_gr'] = layer_entry({'body.7': 0.008})
    layers['srresnet_nogr'] = layer_entry({'body.7': 0.002})
    layers['srgan_nogr'] = layer_entry({'body.7': 0.004})
    expectations = verdicts.paper_expectations(layers, 'body.7')
    # 4x more, but both far below 1: t-SNE separates nothing, so neither "clusters more" is met.
    assert [e.met for e in expectations] == [True, False, False, False, False]
    assert [e.met for e in verdicts.paper_expectations({}, 'body.7')] == [None] * 5
    # The "more" runs count: the comparison uses the longest training both GR and no-GR have.
    layers['srresnet_gr_more'] = {'l1_iters': 5500, **layer_entry({'body.7': 12.0, 'upconv1': 40.0})}
    layers['srresnet_nogr_more'] = {'l1_iters': 5500, **layer_entry({'body.7': 0.5})}
    expectations = verdicts.paper_expectations(layers, 'body.7')
    assert expectations[2].met is True and '(more L1 it.)' in expectations[2].measured
    assert expectations[1].met is False and expectations[1].measured == 'CHI 0.008, 12 (more L1 it.)'
    bullets = report.disagreements(layers, expectations, [], [], [], {})
    assert sum('Tried:' in b for b in bullets) == 3
    assert any('(5500 L1 + 0 GAN in all) give CHI 12 at `body.7`' in b and '`upconv1` (CHI 40)' in b for b in bullets)

    table = [{'model': 'rrdb_clean_x4_lite', 'chi': {'mean': 9.0}}, {'model': 'rrdb_bn_x4_lite', 'chi': {'mean': 3.0}},
             {'model': 'rrdb_ddr_bn_x4_lite', 'chi': {'mean': 1.0}}]
    assert sections.generalization_order(table)[1] is True
    table[2]['chi']['mean'] = 4.0
    order, met = sections.generalization_order(table)
    assert met is False and order.startswith('RRDB (clean)')
    assert sections.generalization_notes(table) == {'ddr_highest': False, 'plain_unseparable': False}
    table[2]['chi']['mean'] = 12.0
    order, met = sections.generalization_order(table)
    notes = sections.generalization_notes(table)
    assert met is False and notes == {'ddr_highest': True, 'plain_unseparable': False}
    small = [dict(row, chi={'mean': v}) for row, v in zip(table, (0.0004, 0.0001, 2.0))]
    assert sections.generalization_notes(small) == {'ddr_highest': True, 'plain_unseparable': True}
    bullets = report.disagreements({}, [], [], [('conv_body', order, met, notes)], [], {})
    assert 'not met at 1 of 1 layers' in bullets[0] and 'StyleMod' in bullets[2]
    assert verdicts.spearman([1, 2, 3, 4], [1, 3, 2, 5]) == pytest.approx(0.8)


def test_report_from_a_partial_cache_says_what_is_missing(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    plot = tmp_path / 'p.png'
    plot.write_bytes(b'png')
    rows = [{'layer': layer, 'chi': {'mean': 3.0, 'std': 0.5}, 'plot': str(plot)}
            for layer in ('conv_first', 'body.1', 'body.3', 'body.7', 'upconv1', 'upconv2')]
    (work / 'layers.json').write_text(json.dumps({'srresnet_nogr': {'command': 'ddrsr analyze ...',
                                                                     'result': {'layers': rows}}}))
    doc = tmp_path / 'ANALYSIS.md'
    command = [sys.executable, 'scripts/reproduce_ddr.py', '--stages', 'report', '--work', str(work), '--output', str(doc),
               '--figures', str(tmp_path / 'fig')]
    out = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True).stdout
    assert json.loads(out) == {'doc': str(doc)}
    text = doc.read_text()
    assert '| SRResNet | no | 2500 | 0 | 3.00 ± 0.50 |' in text and 'not trained yet' in text
    assert 'Not everything is measured yet' in text and 'None: every expectation' not in text
    assert os.path.isfile(tmp_path / 'fig' / 'tsne_srresnet_nogr_body.7.png')
    assert os.path.isfile(tmp_path / 'fig' / 'layer_profiles.png')


def test_identification_verdict_looks_at_every_layer_tried(tmp_path):
    plot = tmp_path / 'p.png'
    plot.write_bytes(b'png')
    dataset = {'train_samples': 10, 'test_samples': 5, 'train_photos': ['a'], 'test_photos': ['b']}

    def run(accuracies):
        return {'command': 'ddrsr identify ...', 'seconds': 60.0,
                'result': {'dataset': dataset, 'plot': str(plot), 'table_markdown': '| table |\n',
                           'results': {m: {'accuracy': a} for m, a in accuracies.items()}}}

    args = ReportPaths(work='results/reproduce_ddr', doc=str(tmp_path / 'A.md'), figures=str(tmp_path / 'fig'))
    main = run({'ddr': 0.46, 'ddr_stats': 0.70, 'brisque': 0.73, 'resnet18': 0.52})
    text, verdict = sections.section_identify(args, main, None, {})
    assert verdict['met'] is False and verdict['best'][1] == 'brisque' and verdict['best_ddr'][1] == 'ddr_stats'
    bullets = report.disagreements({}, [], [], [], [], {}, verdict)
    assert 'Tried: flattened maps and mean+std pooling' in bullets[0]
    text, verdict = sections.section_identify(args, main, run({'ddr': 0.5, 'ddr_stats': 0.8}), {})
    assert verdict['met'] is True and verdict['best'][2] == reproduction_runs.IDENTIFY_OTHER_LAYER[0]
    assert any('Met: **yes**' in line for line in text)


def test_cache_writes_atomically_and_redo_starts_afresh(tmp_path):
    from ddrsr.analysis.reproduction.stages import Cache

    cache = Cache(str(tmp_path / 'work'), redo=['layers'])
    cache.save('layers', {'a': 1})
    cache.save('timing', {'seconds': [1.0]})
    assert sorted(os.listdir(tmp_path / 'work')) == ['layers.json', 'timing.json']  # no temporary file left
    assert cache.load('layers') == {'a': 1} and cache.load('layers', fresh=True) == {}
    assert cache.load('timing', fresh=True) == {'seconds': [1.0]} and cache.load('missing') == {}
