"""The overhead-free training step: foreach EMA, losses kept on the device, amp / channels-last / compile."""
import os
import warnings

import pytest
import torch

from conftest import DATA


def build_smoke_model(tmp_path, name='train_rrdb_ddr_smoke.yml', paths=None, **train_options):
    from basicsr.models import build_model

    from benchmarks.training_bench import _quiet_basicsr, _runtime_options

    opt = _runtime_options(os.path.join(DATA, name), str(tmp_path))
    opt['train'].update(train_options)
    opt['path'].update(paths or {})
    opt['train'].pop('gan_start_iter', None)
    with _quiet_basicsr():
        return build_model(opt)


def run_steps(model, count=3, seed=0):
    size = int(model.opt['datasets']['train']['gt_size'])
    hr = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(seed))
    for step in range(1, count + 1):
        model.feed_data({'gt': hr})
        model.optimize_parameters(step)


def test_foreach_ema_and_device_losses_equal_basicsr_step(tmp_path):
    from benchmarks.training_bench import _use_basicsr_step

    torch.manual_seed(0)
    ours = build_smoke_model(tmp_path, ema_decay=0.5)
    torch.manual_seed(0)
    theirs = build_smoke_model(tmp_path, ema_decay=0.5)
    _use_basicsr_step(theirs)
    frozen_before = {k: v.clone() for k, v in ours.net_g_ema.encoder.generator.state_dict().items()}
    run_steps(ours)
    run_steps(theirs)
    for (name, a), (_, b) in zip(ours.net_g_ema.named_parameters(), theirs.net_g_ema.named_parameters()):
        assert torch.allclose(a, b, atol=1e-6), name
    for key, value in ours.net_g_ema.encoder.generator.state_dict().items():
        assert torch.equal(value, frozen_before[key]), key  # the frozen encoder is never averaged
    assert isinstance(ours.log_dict['l_pix'], torch.Tensor)  # kept on the device until a log step
    log = ours.get_current_log()
    assert log['l_pix'] == pytest.approx(theirs.get_current_log()['l_pix'], rel=1e-5)


def test_gan_model_also_uses_device_losses(tmp_path):
    model = build_smoke_model(tmp_path, 'train_srgan_encoder_smoke.yml')
    run_steps(model, count=2)
    assert {'l_g_pix', 'l_g_gan', 'l_d_real'} <= set(model.get_current_log())


def test_bf16_autocast_and_channels_last_train(tmp_path):
    model = build_smoke_model(tmp_path, amp='bf16', channels_last=True)
    assert model.net_g.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    run_steps(model, count=2)
    assert model.lq.is_contiguous(memory_format=torch.channels_last)
    assert torch.isfinite(torch.tensor(model.get_current_log()['l_pix']))


def test_options_that_do_not_apply_fall_back_with_one_warning(tmp_path, monkeypatch):
    from ddrsr.utils import compile_fallback
    from ddrsr.errors import DDRSRError

    with pytest.warns(RuntimeWarning, match='fp16 is not supported for training on the CPU'):
        model = build_smoke_model(tmp_path, amp='fp16')
    assert model.autocast().__class__.__name__ == 'nullcontext'
    with pytest.warns(RuntimeWarning, match='fp16 needs a GradScaler step'):
        build_smoke_model(tmp_path, 'train_srgan_encoder_smoke.yml', amp='fp16')
    with pytest.raises(DDRSRError, match='train.amp must be bf16, fp16'):
        build_smoke_model(tmp_path, amp='fp8')

    def broken(function, **kwargs):
        def fail(*args):
            raise RuntimeError('inductor is not available')
        return fail

    monkeypatch.setattr(compile_fallback.torch, 'compile', broken)
    model = build_smoke_model(tmp_path, compile=True)
    with pytest.warns(RuntimeWarning, match='torch.compile of the generator failed'):
        run_steps(model, count=1)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # warned once, then eager without a word
        run_steps(model, count=1)


def test_nan_loss_is_found_at_the_next_log_without_a_per_step_read(tmp_path):
    from ddrsr.errors import DDRSRError

    model = build_smoke_model(tmp_path)
    run_steps(model, count=1)
    model.current_iter = 2
    model.reduce_loss_dict({'l_pix': torch.tensor(float('nan'))})  # what a diverged step would report
    model.current_iter = 3
    model.log_dict = model.reduce_loss_dict({'l_pix': torch.tensor(0.5)})
    with pytest.raises(DDRSRError, match='diverged at iteration 2: l_pix = nan'):
        model.get_current_log()


def test_cuda_runs_get_the_cuda_prefetcher_unless_the_file_chose():
    from ddrsr.training.pipeline import prefer_cuda_prefetcher

    def opt(num_gpu, mode=None):
        return {'num_gpu': num_gpu, 'datasets': {'train': {'prefetch_mode': mode}, 'val': {}}}

    assert prefer_cuda_prefetcher(opt(1))['datasets']['train'] == {'prefetch_mode': 'cuda', 'pin_memory': True}
    assert prefer_cuda_prefetcher(opt(0))['datasets']['train'] == {'prefetch_mode': None}
    assert prefer_cuda_prefetcher(opt(2, 'cpu'))['datasets']['train'] == {'prefetch_mode': 'cpu'}


def test_nan_before_the_losses_change_is_reported_when_they_change(tmp_path):
    from ddrsr.errors import DDRSRError

    model = build_smoke_model(tmp_path)
    model.current_iter = 4
    model.reduce_loss_dict({'l_g_pix': torch.tensor(float('inf'))})  # the last pixel-only step diverged
    model.current_iter = 5
    with pytest.raises(DDRSRError, match='diverged at iteration 4: l_g_pix = inf'):  # the GAN phase starts
        model.reduce_loss_dict({'l_g_pix': torch.tensor(0.1), 'l_g_gan': torch.tensor(0.2)})


@pytest.mark.parametrize('name', ['train_rrdb_ddr_smoke.yml', 'train_srgan_encoder_smoke.yml'])
def test_ema_decay_auto_is_resolved_before_basicsr_reads_it(tmp_path, name):
    from ddrsr.models.ema import auto_ema_decay

    model = build_smoke_model(tmp_path, name, ema_decay='auto')
    assert model.ema_decay == auto_ema_decay(model.opt['train']['total_iter']) and hasattr(model, 'net_g_ema')
