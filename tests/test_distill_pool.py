"""Distillation: the teacher-output pool (made once, resumable, read back aligned) and the masked teacher loss."""
import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import DATA
from ddrsr.data.distill_pool import DistillPoolDataset, build_distill_pool
from ddrsr.data.hr_patch_dataset import HRPatchDataset
from ddrsr.data.random_degradation import RandomDegradation
from ddrsr.errors import DDRSRError


class NearestTeacher(torch.nn.Module):
    """A teacher whose output is checkable: every LR pixel repeated 4x4 times."""

    def __init__(self, fail_after=None):
        super().__init__()
        self.calls, self.fail_after = 0, fail_after

    def forward(self, lq):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt  # the session ends mid-pool
        return F.interpolate(lq, scale_factor=4, mode='nearest')


def hr_crops():
    return HRPatchDataset({'dataroot_gt': os.path.join(DATA, 'hr'), 'gt_size': 32, 'use_hflip': False,
                           'use_rot': False, 'scale': 4})


def degradation():
    return RandomDegradation.from_options({'jpeg_prob': 0.5, 'jpeg_quality': [30, 60], 'noise_prob': 0.5})


def make(folder, teacher=None, num_samples=5, **kwargs):
    return build_distill_pool(hr_crops(), degradation(), teacher or NearestTeacher(), str(folder), num_samples,
                              batch_size=2, teacher_precision='fp32', progress=False, **kwargs)


def arrays(folder):
    return {name: np.load(os.path.join(folder, f'{name}.npy')) for name in ('lq', 'gt', 'teacher', 'jpeg_quality')}


def test_pool_holds_lq_hr_and_the_teachers_output(tmp_path):
    pool = arrays(make(tmp_path / 'pool'))
    assert pool['lq'].shape == (5, 3, 8, 8) and pool['lq'].dtype == np.float16
    assert pool['gt'].shape == pool['teacher'].shape == (5, 3, 32, 32) and pool['gt'].dtype == np.uint8
    expected = np.round(np.repeat(np.repeat(pool['lq'].astype(np.float32), 4, 2), 4, 3) * 255)
    assert np.abs(pool['teacher'].astype(np.float32) - expected).max() <= 1  # fp16 storage of the LR: one level
    quality = pool['jpeg_quality']
    assert ((quality == 0) | ((quality >= 30) & (quality <= 60))).all() and (quality > 0).any()
    assert not np.array_equal(pool['lq'][0], pool['lq'][1])  # fresh damage per sample


def test_interrupted_pool_resumes_to_the_same_arrays(tmp_path):
    straight = arrays(make(tmp_path / 'straight'))
    with pytest.raises(KeyboardInterrupt):
        make(tmp_path / 'resumed', teacher=NearestTeacher(fail_after=1))
    with open(tmp_path / 'resumed' / 'progress.json') as f:
        assert json.load(f) == {'done': 2}
    with pytest.raises(DDRSRError, match='unfinished'):
        DistillPoolDataset({'dataroot': str(tmp_path / 'resumed')})
    resumed = arrays(make(tmp_path / 'resumed'))
    for name in straight:
        assert np.array_equal(straight[name], resumed[name]), name


def test_pool_refuses_other_settings_in_the_same_folder(tmp_path):
    make(tmp_path / 'pool', num_samples=2)
    with pytest.raises(DDRSRError, match='other settings'):
        make(tmp_path / 'pool', num_samples=4, seed=1)


def test_dataset_keeps_lr_hr_and_teacher_aligned_under_flips(tmp_path):
    folder = make(tmp_path / 'pool')
    dataset = DistillPoolDataset({'dataroot': folder, 'distill_where': 'jpeg'})
    quality = arrays(folder)['jpeg_quality']
    for index in range(len(dataset)):
        for _ in range(4):  # random flips and rotations
            item = dataset[index]
            nearest = F.interpolate(item['lq'][None], scale_factor=4, mode='nearest')[0]
            assert (item['teacher'] - nearest).abs().max() <= 1.5 / 255
            assert item['gt'].shape == item['teacher'].shape == (3, 32, 32)
        assert float(item['distill_weight']) == float(quality[index] > 0)
    assert float(DistillPoolDataset({'dataroot': folder, 'distill_where': 'all'})[0]['distill_weight']) == 1.0
    capped = DistillPoolDataset({'dataroot': folder, 'distill_max_quality': 45})
    assert [float(capped[i]['distill_weight']) for i in range(len(capped))] == [float(0 < q <= 45) for q in quality]
    with pytest.raises(DDRSRError, match='distill_where'):
        DistillPoolDataset({'dataroot': folder, 'distill_where': 'noise'})
    with pytest.raises(DDRSRError, match='make_distill_pool'):
        DistillPoolDataset({'dataroot': str(tmp_path)})


def batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {'lq': torch.rand(2, 3, 16, 16, generator=generator), 'gt': torch.rand(2, 3, 64, 64, generator=generator),
            'teacher': torch.rand(2, 3, 64, 64, generator=generator)}


def test_distill_loss_only_on_the_chosen_samples(tmp_path):
    from test_fast_step import build_smoke_model

    model = build_smoke_model(tmp_path, ema_decay=0, distill_opt={'type': 'L1Loss', 'loss_weight': 2.0})
    data = {**batch(), 'distill_weight': torch.tensor([0.0, 1.0])}
    model.feed_data(data)
    model.optimize_parameters(1)
    expected = 2.0 * F.l1_loss(model.output[1:].detach(), data['teacher'][1:])
    assert float(model.log_dict['l_distill']) == pytest.approx(float(expected), rel=1e-5)


def test_distill_without_chosen_samples_is_the_plain_pixel_step(tmp_path):
    from test_fast_step import build_smoke_model

    torch.manual_seed(0)
    distilled = build_smoke_model(tmp_path, ema_decay=0, distill_opt={'type': 'L1Loss', 'loss_weight': 1.0})
    torch.manual_seed(0)
    plain = build_smoke_model(tmp_path, ema_decay=0)
    for model, extra in ((distilled, {'distill_weight': torch.zeros(2)}), (plain, {})):
        model.feed_data({**batch(), **extra})
        model.optimize_parameters(1)
    assert float(distilled.log_dict['l_distill']) == 0.0
    for (name, a), (_, b) in zip(distilled.net_g.named_parameters(), plain.net_g.named_parameters()):
        assert torch.equal(a, b), name


def test_anchor_loss_keeps_the_starting_outputs_on_the_other_samples(tmp_path):
    """The anchor is the checkpoint in path.pretrain_network_anchor (not net_g as it is now, which a resumed run
    has moved), its loss covers only the samples the teacher is not a target for, and nothing in it trains."""
    from test_fast_step import build_smoke_model

    torch.manual_seed(0)
    start = build_smoke_model(tmp_path, ema_decay=0)
    path = str(tmp_path / 'start.pth')
    torch.save({'params_ema': start.net_g.state_dict()}, path)
    torch.manual_seed(1)  # another init: the student's net_g differs from the anchor, as after a resume
    model = build_smoke_model(tmp_path, paths={'pretrain_network_anchor': path}, ema_decay=0,
                              distill_opt={'type': 'L1Loss', 'loss_weight': 1.0},
                              anchor_opt={'type': 'L1Loss', 'loss_weight': 3.0})
    data = {**batch(), 'distill_weight': torch.tensor([0.0, 1.0])}
    model.feed_data(data)
    with torch.no_grad():
        before = model.net_g(data['lq'][:1])
        anchored = start.net_g.eval()(data['lq'][:1])
    assert not torch.allclose(before, anchored)
    model.optimize_parameters(1)
    expected = 3.0 * F.l1_loss(model.output[:1].detach(), anchored)
    assert float(model.log_dict['l_anchor']) == pytest.approx(float(expected), rel=1e-5)
    assert not any(p.requires_grad for p in model.net_anchor.parameters())
    model.feed_data({**batch(), 'distill_weight': torch.ones(2)})
    model.optimize_parameters(2)
    assert float(model.log_dict['l_anchor']) == 0.0


def test_anchor_without_a_checkpoint_is_a_clear_error(tmp_path):
    from test_fast_step import build_smoke_model

    with pytest.raises(DDRSRError, match='pretrain_network_anchor'):
        build_smoke_model(tmp_path, ema_decay=0, anchor_opt={'type': 'L1Loss', 'loss_weight': 1.0})
