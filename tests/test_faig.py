"""FAIG: attribution by hand on a tiny conv net, filter indexing, masking, prediction and the three CLIs."""
import copy
import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import DATA
from ddrsr import cli, zoo
from ddrsr.data.degradations import degrade_with_spec
from ddrsr.errors import DDRSRError
from ddrsr.faig import (FilterIndex, Ranking, absdiff_scores, attribute, check_same_architecture, faig_scores,
                        filter_activations, ig_scores, mask, mask_filters, masking_table, predict,
                        prediction_accuracy)
from ddrsr.faig.data import combine_specs
from ddrsr.faig.prediction import DegradationPredictor, two_means_threshold

HR = os.path.join(DATA, 'hr')


class TinySR(nn.Module):
    """x2 SR net with nested names, a grouped conv, a 1x1 conv and a bias-free conv (all must be covered)."""

    def __init__(self, width=4, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, groups=2), nn.LeakyReLU(0.2),
                                  nn.Conv2d(width, width, 1, bias=False))
        self.tail = nn.Conv2d(width, 12, 3, padding=1)
        self.scale = 2

    def forward(self, x):
        feat = F.leaky_relu(self.head(x), 0.2)
        return F.pixel_shuffle(self.tail(feat + self.body(feat)), 2)


def pair(conv_only=False):
    """A baseline and a target; with ``conv_only`` they differ only in conv weights (same biases)."""
    baseline, target = TinySR(seed=0), TinySR(seed=1)
    if conv_only:
        with torch.no_grad():
            for (name, p_base), p_target in zip(baseline.named_parameters(), target.parameters()):
                if not name.endswith('weight'):
                    p_target.copy_(p_base)
    return baseline.eval(), target.eval()


def conv_params(model):
    return [p for name, p in model.named_parameters() if p.dim() == 4]


def hand_faig(baseline, target, lq, gt, steps):
    """FAIG per filter from the definition: one image at a time, interpolated state dicts, autograd."""
    total = 0
    base_state, target_state = baseline.state_dict(), target.state_dict()
    delta = [pb.detach() - pt.detach() for pb, pt in zip(conv_params(baseline), conv_params(target))]
    for n in range(len(lq)):
        summed = [torch.zeros_like(d) for d in delta]
        for m in range(steps):
            alpha = m / steps
            net = copy.deepcopy(target)
            net.load_state_dict({k: target_state[k] + alpha * (base_state[k] - target_state[k]) for k in target_state})
            loss = ((net(lq[n:n + 1]) - gt[n:n + 1])**2).sum()
            grads = torch.autograd.grad(loss, conv_params(net))
            summed = [s + g for s, g in zip(summed, grads)]
        total = total + torch.cat([(d * s / steps).abs().sum((2, 3)).flatten() for d, s in zip(delta, summed)])
    return total / len(lq)


# ------------------------------------------------------------------------------------------- attribution
def test_faig_with_one_step_equals_hand_computation():
    baseline, target = pair()
    hr = torch.rand(3, 3, 16, 16)
    lqs = {'a': torch.rand(3, 3, 8, 8), 'b': torch.rand(3, 3, 8, 8)}
    scores = faig_scores(baseline, target, hr, lqs, steps=1, batch_size=2, progress=False)
    # M = 1: only alpha = 0, i.e. |(theta_bar - theta) * dL/dtheta at theta|, summed over the kernel, mean over images.
    by_hand = 0
    for n in range(3):
        loss = ((target(lqs['a'][n:n + 1]) - hr[n:n + 1])**2).sum()
        grads = torch.autograd.grad(loss, conv_params(target))
        by_hand = by_hand + torch.cat([((pb - pt) * g).abs().sum((2, 3)).flatten() for pb, pt, g in
                                       zip(conv_params(baseline), conv_params(target), grads)]).detach()
    assert scores['a'].shape == (len(FilterIndex(target)),)
    torch.testing.assert_close(scores['a'], by_hand / 3, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(scores['a'], scores['b'])


def test_faig_path_and_ranking_follow_the_definition():
    baseline, target = pair()
    hr = torch.rand(2, 3, 16, 16)
    lq = {'blur2': degrade_with_spec(hr, 'blur2', 2), 'noise20': degrade_with_spec(hr, 'noise20', 2)}
    scores = faig_scores(baseline, target, hr, lq, steps=3, batch_size=1, progress=False)
    for name in lq:
        torch.testing.assert_close(scores[name], hand_faig(baseline, target, lq[name], hr, 3), rtol=1e-4, atol=1e-5)
    ranking = attribute(baseline, target, hr, 'blur2', 'noise20', steps=3, progress=False)
    torch.testing.assert_close(ranking.score, scores['blur2'] - scores['noise20'], rtol=1e-4, atol=1e-5)
    assert torch.equal(ranking.score_vs, -ranking.score)
    assert torch.all(ranking.score[ranking.order()][:-1] >= ranking.score[ranking.order()][1:])


def test_faig_through_a_ddr_network_with_an_early_stopping_encoder():
    from tiny_models import tiny_ddr_net

    baseline, target = tiny_ddr_net(0), tiny_ddr_net(1)
    hr, lq = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 4, 4)
    scores = faig_scores(baseline, target, hr, {'d': lq}, steps=1, progress=False)['d']
    target.requires_grad_(True)
    by_hand = 0
    for n in range(2):
        grads = torch.autograd.grad(((target(lq[n:n + 1]) - hr[n:n + 1])**2).sum(), conv_params(target),
                                    allow_unused=True)  # the encoder's SRGAN tail never runs
        by_hand = by_hand + torch.cat([((pb - pt) * (g if g is not None else 0)).abs().sum((2, 3)).flatten()
                                       for pb, pt, g in zip(conv_params(baseline), conv_params(target), grads)])
    torch.testing.assert_close(scores, by_hand.detach() / 2, rtol=1e-4, atol=1e-5)


def test_ig_and_absdiff_by_hand():
    baseline, target = pair()
    clean, degraded = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    ig = ig_scores(target, clean, {'d': degraded}, steps=2, batch_size=2, progress=False)['d']
    by_hand = 0
    for n in range(2):
        summed = [0] * len(conv_params(target))
        for alpha in (0, 0.5):
            x = clean[n:n + 1] + alpha * (degraded[n:n + 1] - clean[n:n + 1])
            grads = torch.autograd.grad(target(x).sum(), conv_params(target))
            summed = [s + g for s, g in zip(summed, grads)]
        by_hand = by_hand + torch.cat([(s / 2).abs().sum((2, 3)).flatten() for s in summed])
    torch.testing.assert_close(ig, by_hand / 2, rtol=1e-4, atol=1e-4)

    expected = torch.cat([(pt - pb).abs().sum((2, 3)).flatten() / pb.abs().sum((2, 3)).flatten()
                          for pb, pt in zip(conv_params(baseline), conv_params(target))]).detach()
    torch.testing.assert_close(absdiff_scores(baseline, target), expected)


@pytest.mark.parametrize('method', ['faig', 'ig', 'absdiff', 'random'])
def test_rankings_cover_every_filter_and_map_back(method, tmp_path):
    baseline, target = pair()
    ranking = attribute(baseline, target, torch.rand(2, 3, 16, 16), method=method, steps=2, progress=False)
    filters = FilterIndex(target)
    convs = {name: m for name, m in target.named_modules() if isinstance(m, nn.Conv2d)}
    assert len(filters) == sum(m.weight.shape[0] * m.weight.shape[1] for m in convs.values()) == 4 * 3 + 4 * 2 + 16 + 48
    for which in ('deg', 'vs'):
        assert sorted(ranking.order(which).tolist()) == list(range(len(filters)))
    data = ranking.to_dict(filters)
    assert len(data['filters']) == len(filters)
    for row in data['filters']:
        weight = convs[row['layer']].weight
        assert 0 <= row['o'] < weight.shape[0] and 0 <= row['i'] < weight.shape[1]
        assert filters.flat(row['layer'], row['o'], row['i']) == row['index']
    path = ranking.save(str(tmp_path / 'r.json'), filters)
    loaded = Ranking.load(path)
    for which in ('deg', 'vs'):
        assert torch.equal(loaded.order(which), ranking.order(which))
    assert (loaded.method, loaded.deg, loaded.vs) == (method, 'blur2', 'noise20')


def test_attribution_does_not_change_the_models():
    baseline, target = pair()
    target.train()
    before = [copy.deepcopy(m.state_dict()) for m in (baseline, target)]
    flags = [p.requires_grad for p in target.parameters()]
    for method in ('faig', 'ig'):
        attribute(baseline, target, torch.rand(2, 3, 16, 16), method=method, steps=2, progress=False)
    for model, state in zip((baseline, target), before):
        assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert target.training and not baseline.training
    assert [p.requires_grad for p in target.parameters()] == flags
    assert all(p.grad is None for p in target.parameters())


def test_different_architectures_are_refused():
    with pytest.raises(DDRSRError, match=r'different architectures.*body.0.weight \(4, 2, 3, 3\) vs \(6, 3, 3, 3\)'):
        check_same_architecture(TinySR(width=4), TinySR(width=6))
    renamed = TinySR()
    renamed.extra = nn.Conv2d(3, 3, 3)
    with pytest.raises(DDRSRError, match='only in the target: extra.bias, extra.weight'):
        attribute(TinySR(), renamed, torch.rand(1, 3, 8, 8), steps=1, progress=False)
    with pytest.raises(DDRSRError, match='different architectures'):
        mask_filters(TinySR(width=4), TinySR(width=6), [0])
    with pytest.raises(DDRSRError, match='no nn.Conv2d'):
        FilterIndex(nn.Linear(2, 2))


def test_combine_specs():
    assert combine_specs('noise20', 'blur2') == 'blur2_noise20'
    assert combine_specs('clean', 'jpeg30') == 'jpeg30'
    with pytest.raises(DDRSRError, match='both contain a blur'):
        combine_specs('blur2', 'blur4_noise5')


# ------------------------------------------------------------------------------------------------ masking
def test_masking_zero_keeps_target_and_full_gives_baseline():
    baseline, target = pair(conv_only=True)
    ranking = attribute(baseline, target, torch.rand(2, 3, 16, 16), method='absdiff', progress=False)
    before = copy.deepcopy(target.state_dict())
    x = torch.rand(2, 3, 8, 8)
    unchanged = mask(baseline, target, ranking, 0)
    assert all(torch.equal(v, target.state_dict()[k]) for k, v in unchanged.state_dict().items())
    full = mask(baseline, target, ranking, 100, which='vs')
    with torch.no_grad():
        assert torch.equal(full(x), baseline(x)) and not torch.equal(target(x), baseline(x))
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())  # the target itself untouched

    # With different biases, 100 % still copies exactly the conv weights and nothing else.
    baseline, target = pair()
    full = mask(baseline, target, attribute(baseline, target, torch.rand(1, 3, 8, 8), method='random'), 100)
    for (name, p_full), p_base, p_target in zip(full.named_parameters(), baseline.parameters(), target.parameters()):
        assert torch.equal(p_full, p_base if name.endswith('weight') else p_target)


def test_mask_copies_exactly_the_chosen_filters():
    baseline, target = pair()
    filters = FilterIndex(target)
    masked = mask_filters(baseline, target, [filters.flat('body.0', 3, 1), filters.flat('tail', 0, 2)])
    changed = {(name, o, i) for name, m in masked.named_modules() if isinstance(m, nn.Conv2d)
               for o in range(m.weight.shape[0]) for i in range(m.weight.shape[1])
               if not torch.equal(m.weight[o, i], target.get_parameter(f'{name}.weight')[o, i])}
    assert changed == {('body.0', 3, 1), ('tail', 0, 2)}
    assert torch.equal(masked.body[0].weight[3, 1], baseline.body[0].weight[3, 1])


def test_masking_table_reports_every_method_set_and_percent():
    baseline, target = pair(conv_only=True)
    hr = torch.rand(2, 3, 16, 16)
    rankings = [attribute(baseline, target, hr, method=m, steps=1, progress=False) for m in ('faig', 'random')]
    table = masking_table(baseline, target, rankings, hr, percents=(0, 100), progress=False)
    assert table['specs'] == ['blur2', 'noise20', 'blur2_noise20']
    assert len(table['rows']) == 2 * 2 * 2
    for row in table['rows']:
        reference = table['reference']['target' if row['percent'] == 0 else 'baseline']
        for spec in table['specs']:
            assert row['psnr'][spec] == pytest.approx(reference[spec], abs=1e-9)
            assert row['drop'][spec] == pytest.approx(table['reference']['target'][spec] - row['psnr'][spec])
    assert table['reference']['target'] != table['reference']['baseline']


# --------------------------------------------------------------------------------------------- prediction
def test_two_means_threshold_by_hand():
    threshold, low, high = two_means_threshold([0.0, 1.0, 1.2, 10.0, 11.0])
    assert (low, high) == pytest.approx((2.2 / 3, 10.5)) and threshold == pytest.approx((2.2 / 3 + 10.5) / 2)


def test_filter_activations_by_hand():
    model = TinySR()
    filters = FilterIndex(model)
    x = torch.rand(2, 3, 8, 8)
    chosen = [filters.flat('body.0', 3, 1), filters.flat('head', 1, 2)]
    values = filter_activations(model, chosen, x)
    feat = F.leaky_relu(model.head(x), 0.2)
    # body.0 has groups=2: output channel 3 is in group 1, whose input channel 1 is feat channel 3.
    expected_body = F.conv2d(feat[:, 3:4], model.body[0].weight[3:4, 1:2], padding=1).abs().mean((1, 2, 3))
    expected_head = F.conv2d(x[:, 2:3], model.head.weight[1:2, 2:3], padding=1).abs().mean((1, 2, 3))
    torch.testing.assert_close(values, torch.stack([expected_body, expected_head], 1).detach())
    relative = filter_activations(model, chosen, x, relative=True)
    level = torch.log((model.head(x) - model.head.bias[:, None, None]).abs().mean((2, 3))).mean(1)
    torch.testing.assert_close(relative[:, 1], (torch.log(expected_head) - level).detach(), rtol=1e-4, atol=1e-4)


class EdgeNet(nn.Module):
    """Channel 0 of the first layer smooths (blur barely changes it), channel 1 is a Laplacian (noise raises it)."""

    def __init__(self):
        super().__init__()
        self.first = nn.Conv2d(3, 2, 3, padding=1, bias=False, padding_mode='replicate')
        with torch.no_grad():
            self.first.weight.zero_()
            self.first.weight[0, :] = 1 / 27
            self.first.weight[1, :] = torch.tensor([[0., -1, 0], [-1, 4, -1], [0, -1, 0]]) / 3
        self.last = nn.Conv2d(2, 12, 1)
        self.scale = 2

    def forward(self, x):
        return F.pixel_shuffle(self.last(self.first(x)), 2)


def test_predictor_finds_noise_with_a_noise_filter():
    model = EdgeNet()
    filters = FilterIndex(model)
    laplacian = [filters.flat('first', 1, c) for c in range(3)]
    score = torch.zeros(len(filters))
    score_vs = torch.zeros(len(filters))
    score_vs[laplacian] = 1  # the noise20 filters: the Laplacian
    score[[filters.flat('first', 0, c) for c in range(3)]] = 1  # the "blur2" filters: the box filter
    ranking = Ranking('hand', 'blur2', 'noise20', filters.signature(), score, score_vs)
    torch.manual_seed(0)
    smooth = F.interpolate(torch.rand(24, 3, 4, 4), size=(32, 32), mode='bilinear', align_corners=False)
    fit, test = smooth[:16], smooth[16:]
    result = prediction_accuracy(model, ranking, fit, test, percent=3 / len(filters) * 100, scale=2, seed=0)
    assert result['classes'] == ['clean', 'blur2', 'noise20', 'blur2_noise20']
    assert np.sum(result['confusion']) == 4 * len(test)
    # The Laplacian's share of its layer jumps with noise: every noisy input is flagged, few clean ones are.
    confusion = np.array(result['confusion'])
    assert confusion[2:, 2:].sum() == 2 * len(test) and result['per_degradation']['noise20'] >= 0.9
    lq = degrade_with_spec(test, 'noise20', 2, seed=3)
    clean_fit = degrade_with_spec(fit, 'clean', 2)
    pool = torch.cat([clean_fit, degrade_with_spec(fit, 'noise20', 2, seed=5)])
    labels = predict(model, ranking, lq, pool, clean_fit, percent=3 / len(filters) * 100)
    assert all(label in ('noise20', 'blur2_noise20') for label in labels)
    with pytest.raises(DDRSRError, match='call fit'):
        DegradationPredictor(model, ranking, 50).predict(lq)


# ---------------------------------------------------------------------------------------------------- CLI
TINY_ARCH = {'type': 'RRDBNetDDR', 'num_feat': 8, 'num_block': 2, 'num_grow_ch': 4, 'scale': 4, 'use_ddr': False}


@pytest.fixture
def tiny_pair(tmp_path, monkeypatch):
    """Two checkpoints of a tiny plain RRDBNet (zoo arch 'tiny_plain') in tmp_path."""
    from tiny_models import tiny_plain_net

    paths = []
    for seed in (0, 1):
        path = tmp_path / f'net_{seed}.pth'
        torch.save({'params_ema': tiny_plain_net(seed).state_dict()}, path)
        paths.append(str(path))
    monkeypatch.setitem(zoo.MODELS, 'tiny_plain', {'file': paths[1], 'scale': 4, 'arch': TINY_ARCH})
    return paths


def run_cli(argv, capsys):
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_faig_mask_predict(tiny_pair, tmp_path, capsys):
    base, target = tiny_pair
    common = ['--baseline', base, '--target', target, '--arch', 'tiny_plain', '--hr', HR, '--images', '2',
              '--crop', '32', '--device', 'cpu']
    rankings = []
    for method in ('faig', 'random'):
        output = str(tmp_path / f'ranking_{method}.json')
        status, out, err = run_cli(['faig', *common, '--method', method, '--steps', '2', '-o', output], capsys)
        assert status == 0, err
        result = json.loads(out)
        assert result['method'] == method and os.path.isfile(result['plot'])
        data = json.load(open(output))
        assert len(data['filters']) == result['num_filters'] == data['num_filters']
        rankings.append(output)
    status, out, err = run_cli(['faig-mask', *common, '--ranking', *rankings, '--percents', '1', '10',
                                '--output', str(tmp_path / 'mask')], capsys)
    assert status == 0, err
    table = json.loads(out)
    assert len(table['rows']) == 2 * 2 * 2 and os.path.isfile(table['plot'])
    assert '| faig | blur2 | 1 % |' in open(table['markdown']).read()
    predict_args = ['--target', target, '--arch', 'tiny_plain', '--hr', HR, '--images', '3', '--fit_images', '4',
                    '--crop', '32', '--ranking', *rankings, '--percent', '5', '--output', str(tmp_path / 'pred')]
    status, out, err = run_cli(['faig-predict', *predict_args], capsys)
    assert status == 0, err
    result = json.loads(out)
    assert [r['method'] for r in result['results']] == ['faig', 'random']
    assert all(0 <= r['accuracy'] <= 1 and np.sum(r['confusion']) == 12 for r in result['results'])
    assert os.path.isfile(result['markdown'])


def test_cli_user_errors_are_one_line(tiny_pair, tiny_zoo, tmp_path, capsys):
    base, target = tiny_pair
    cases = [
        (['faig', '--baseline', 'tiny_ddr', '--target', 'tiny_plain', '--hr', HR], 'different architectures'),
        (['faig', '--baseline', 'no/such.pth', '--target', target, '--arch', 'tiny_plain', '--hr', HR],
         'neither a zoo model name'),
        (['faig', '--baseline', base, '--target', target, '--arch', 'tiny_plain', '--hr', HR, '--deg', 'blurry'],
         'unknown degradation spec'),
        (['faig', '--baseline', base, '--target', target, '--hr', HR], "not weights for --arch 'rrdb_bn_x4_lite'"),
        (['faig', '--baseline', base, '--target', target, '--arch', 'rrdb_typo', '--hr', HR], 'unknown model name'),
        (['faig-mask', '--baseline', base, '--target', target, '--arch', 'tiny_plain', '--hr', HR, '--ranking',
          str(tmp_path / 'missing.json')], 'not found'),
    ]
    for argv, expected in cases:
        status, out, err = run_cli(argv + ['--device', 'cpu'], capsys)
        lines = [line for line in err.splitlines() if line.strip()]
        assert status == 2 and out == '' and len(lines) == 1, (argv, err)
        assert lines[0].startswith('ddrsr: error:') and expected in lines[0], lines[0]


def test_verdict_comes_from_the_masking_numbers():
    from ddrsr.faig.verdicts import faig_verdict, selectivity

    def table(faig_drops):
        rows = []
        for method, drops in (('faig', faig_drops), ('random', {'blur2': (1.0, 1.0), 'noise20': (1.0, 1.0)})):
            for masked, (on_blur, on_noise) in drops.items():
                rows.append({'method': method, 'filters_for': masked, 'percent': 1,
                             'drop': {'blur2': on_blur, 'noise20': on_noise}})
        return {'rows': rows}

    specific = selectivity(table({'blur2': (3.0, 0.5), 'noise20': (0.2, 2.0)}), 'blur2', 'noise20')
    assert specific['faig'][1] == [2.5, 1.8] and specific['random'][1] == [0.0, 0.0]
    verdict = faig_verdict(specific, [1])
    assert verdict['pattern'] and verdict['faig_beats_all'] and verdict['beaten'] == ['random']
    assert verdict['best'] == ['faig', 'faig'] and verdict['wins'] == {1: 'faig'}
    mixed = faig_verdict(selectivity(table({'blur2': (3.0, 0.5), 'noise20': (4.0, 1.0)}), 'blur2', 'noise20'), [1])
    assert mixed['faig'] == [2.5, -3.0] and not mixed['pattern']  # noise filters hurt blur more: not specific
    assert faig_verdict(selectivity({'rows': []}, 'blur2', 'noise20'), [1]) is None  # FAIG not run
