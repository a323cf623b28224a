import pytest
import torch

from ddrsr.data.degradations import NAMED_SPECS, degrade_with_spec, gaussian_kernels, jpeg, parse_spec
from ddrsr.data.random_degradation import RandomDegradation
from ddrsr.errors import DDRSRError


def textured(batch=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(batch, 3, size // 8, size // 8, generator=g)
    return torch.nn.functional.interpolate(base, size=(size, size), mode='bilinear', align_corners=False)


@pytest.mark.parametrize('sigma', [10.0, 20.0, 30.0])
def test_gaussian_noise_std_within_5_percent(sigma):
    hr = torch.full((4, 3, 256, 256), 0.5)
    lq = degrade_with_spec(hr, f'noise{sigma:g}', scale=4, seed=1)
    measured = (lq - 0.5).std().item() * 255
    assert abs(measured - sigma) / sigma < 0.05, measured


def test_clean_spec_is_only_bicubic_on_8bit_levels():
    lq = degrade_with_spec(textured(), 'clean', scale=4)
    assert lq.shape == (2, 3, 16, 16)
    assert torch.equal(lq, torch.round(lq * 255) / 255)


def test_jpeg_changes_image_and_is_deterministic_for_a_seed():
    hr = textured(size=96)
    clean = degrade_with_spec(hr, 'clean', 4)
    first = degrade_with_spec(hr, 'jpeg30', 4, seed=3)
    second = degrade_with_spec(hr, 'jpeg30', 4, seed=3)
    assert (first - clean).abs().max() > 1 / 255
    assert torch.equal(first, second)


def test_jpeg_quality_zero_passes_through_and_odd_sizes_work():
    images = torch.rand(3, 3, 37, 53)
    out = jpeg(images, torch.tensor([0.0, 50.0, 0.0]))
    assert out.shape == images.shape
    assert torch.equal(out[0], images[0]) and torch.equal(out[2], images[2])
    assert not torch.equal(out[1], images[1])


def test_noise_is_seeded():
    hr = textured()
    a = degrade_with_spec(hr, 'blur2_noise20', 4, seed=0)
    b = degrade_with_spec(hr, 'blur2_noise20', 4, seed=0)
    c = degrade_with_spec(hr, 'blur2_noise20', 4, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize('sx,sy,theta', [(2.0, 2.0, 0.0), (0.5, 3.0, 0.7), (0.0, 0.0, 0.0)])
def test_blur_kernels_sum_to_one(sx, sy, theta):
    k = gaussian_kernels(torch.tensor([sx]), torch.tensor([sy]), torch.tensor([theta]), 15)
    assert k.shape == (1, 15, 15)
    assert torch.allclose(k.sum(), torch.tensor(1.0), atol=1e-6)
    assert k[0, 7, 7] == k.max()


def test_anisotropic_kernel_is_rotated():
    k0 = gaussian_kernels(torch.tensor([0.5]), torch.tensor([3.0]), torch.tensor([0.0]), 15)[0]
    k90 = gaussian_kernels(torch.tensor([0.5]), torch.tensor([3.0]), torch.tensor([torch.pi / 2]), 15)[0]
    assert torch.allclose(k0.T, k90, atol=1e-6)
    assert not torch.allclose(k0, k90, atol=1e-3)


def test_blur_reduces_detail():
    hr = torch.rand(2, 3, 128, 128)
    clean = degrade_with_spec(hr, 'clean', 4)
    blurred = degrade_with_spec(hr, 'blur2', 4)
    assert blurred.std() < clean.std() * 0.8


def test_named_specs_parse():
    for name in NAMED_SPECS:
        assert parse_spec(name).name == name
    spec = parse_spec('blur2_noise20')
    assert (spec.blur_sigma, spec.noise_sigma, spec.jpeg_quality) == (2.0, 20.0, 0)
    for bad in ('blurry', 'noise', 'jpeg200', 'blur2_blur3', ''):
        with pytest.raises(DDRSRError):
            parse_spec(bad)


def test_random_degradation_per_sample_and_reproducible():
    rd = RandomDegradation.from_options(dict(blur_prob=0.5, aniso_prob=0.5, noise_prob=0.5, gray_noise_prob=0.5,
                                             poisson_prob=0.5, jpeg_prob=0.5, resize_modes=['bicubic', 'area']))
    hr = textured(batch=8)
    a = rd(hr, 4, torch.Generator().manual_seed(0))
    b = rd(hr, 4, torch.Generator().manual_seed(0))
    assert a.shape == (8, 3, 16, 16) and torch.equal(a, b)
    params = rd.sample(64, torch.Generator().manual_seed(0))
    assert 0 < int((params.sigma_x > 0).sum()) < 64  # per-sample decisions, not one per batch
    assert set(params.resize_modes) == {'bicubic', 'area'}
    q = params.jpeg_quality[params.jpeg_quality > 0]
    assert q.min() >= 30 and q.max() <= 95 and torch.equal(q, q.round())


def test_random_degradation_rejects_unknown_keys():
    with pytest.raises(DDRSRError, match="did you mean 'noise_prob'"):
        RandomDegradation.from_options({'nosie_prob': 0.5})


def test_clean_samples_and_jpeg_before_noise():
    rd = RandomDegradation.from_options(dict(blur_prob=1, noise_prob=1, jpeg_prob=1, jpeg_before_noise_prob=0.5,
                                             clean_prob=0.25, resize_modes=['area']))
    params = rd.sample(400, torch.Generator().manual_seed(0))
    clean = params.noise_sigma == 0
    assert 70 < int(clean.sum()) < 130  # ~25% left undegraded
    for value in (params.sigma_x, params.sigma_y, params.poisson_scale, params.jpeg_quality,
                  params.jpeg_quality_pre):
        assert torch.all(value[clean] == 0)
    assert all((mode == 'bicubic') == bool(c) for mode, c in zip(params.resize_modes, clean.tolist()))
    degraded_pre = params.jpeg_quality_pre[~clean] > 0
    assert 0.35 < degraded_pre.float().mean() < 0.65
    hr = textured(batch=4)
    params = rd.sample(4, torch.Generator().manual_seed(1))
    params.noise_sigma.zero_()
    params.sigma_x.zero_()
    params.jpeg_quality.zero_()
    params.jpeg_quality_pre.fill_(30)
    from ddrsr.data.degradations import degrade
    once = degrade(hr, params, 4)
    params.jpeg_quality_pre.zero_()
    assert not torch.equal(once, degrade(hr, params, 4))  # the JPEG before the noise ran


def test_clean_prob_leaves_the_other_draws_of_a_seed_unchanged():
    options = dict(blur_prob=0.5, noise_prob=0.5, jpeg_prob=0.5)
    before = RandomDegradation.from_options(options).sample(16, torch.Generator().manual_seed(0))
    after = RandomDegradation.from_options({**options, 'clean_prob': 0.0}).sample(16, torch.Generator().manual_seed(0))
    assert torch.equal(before.sigma_x, after.sigma_x) and after.jpeg_quality_pre is None


def _full_pipeline():
    return RandomDegradation.from_options(dict(blur_prob=1, aniso_prob=0.5, noise_prob=1, gray_noise_prob=0.5,
                                               poisson_prob=0.5, jpeg_prob=1, resize_modes=['bicubic', 'area']))


# One eager degrade() with every step on dispatched ~740 ops before the ops were trimmed (kornia's JPEG codec
# alone is ~505 of them); 606 since the matmul resize (fewer ops) and the CPU FFT blur (more), 603 before them;
# pinned so that the count cannot creep back up.
MAX_DEGRADE_OPS = 610


def test_eager_degrade_dispatches_a_pinned_number_of_ops():
    from benchmarks.timing import count_dispatched_ops
    from ddrsr.data.degradations import degrade

    rd = _full_pipeline()
    hr = textured(batch=8, size=64)
    params = rd.sample(8, torch.Generator().manual_seed(0))
    degrade(hr, params, 4, torch.Generator().manual_seed(0))  # warm kornia's constant caches
    counts = count_dispatched_ops(lambda: degrade(hr, params, 4, torch.Generator().manual_seed(0)))
    assert counts['ops'] <= MAX_DEGRADE_OPS, counts
    # ddrsr's own steps never read a tensor on the host. kornia does, 4 times: its JPEG codec checks the
    # quality range with .item(), and the antialiased rescale of its chroma subsampling checks sigma > 0.
    assert counts['syncs'] == 0 and counts['kornia_syncs'] == 4, counts


def test_compiled_degrade_matches_eager_within_one_level():
    from ddrsr.data.degradations import degrade

    hr = textured(batch=4, size=64)
    params = _full_pipeline().sample(4, torch.Generator().manual_seed(0))
    eager = degrade(hr, params, 4, torch.Generator().manual_seed(3))
    compiled = degrade(hr, params, 4, torch.Generator().manual_seed(3), compiled=True)
    levels = (compiled - eager).abs() * 255
    assert levels.max() <= 1.0 + 1e-4  # fused float ops may flip an 8-bit rounding, never more
    assert (levels > 0.5).float().mean() <= 1e-3


def test_failed_compile_warns_once_and_runs_eagerly(monkeypatch):
    from ddrsr.utils import compile_fallback

    def broken(function, **kwargs):
        def fail(*args):
            raise RuntimeError('no C++ compiler\nmore detail')
        return fail

    monkeypatch.setattr(compile_fallback.torch, 'compile', broken)
    monkeypatch.setattr(compile_fallback, '_COMPILED', {})
    double = compile_fallback.compiled_or_eager(lambda x: 2 * x, 'cpu')
    with pytest.warns(RuntimeWarning, match=r'failed \(no C\+\+ compiler\); running it eagerly') as record:
        assert double(torch.ones(1)).item() == 2
    assert double(torch.ones(1)).item() == 2 and len(record) == 1


def test_resize_modes_and_clean_samples_vary_between_calls_of_one_generator():
    rd = RandomDegradation.from_options(dict(resize_modes=['bicubic', 'bilinear', 'area'], clean_prob=0.5,
                                             noise_prob=1))
    generator = torch.Generator().manual_seed(0)
    first, second = rd.sample(32, generator), rd.sample(32, generator)
    assert first.resize_modes != second.resize_modes
    assert not torch.equal(first.noise_sigma == 0, second.noise_sigma == 0)


@pytest.mark.parametrize('height, width', [(64, 64), (48, 80), (264, 264)])  # 264: the F.interpolate path
def test_mixed_mode_downsample_matches_interpolate_per_sample(height, width):
    from ddrsr.data.degradations import downsample

    hr = torch.rand(5, 3, height, width, generator=torch.Generator().manual_seed(0))
    modes = ['bicubic', 'area', 'bilinear', 'bicubic', 'area']
    out = downsample(hr, 4, modes)
    assert out.shape == (5, 3, height // 4, width // 4) and out.is_contiguous()
    for i, mode in enumerate(modes):
        options = {} if mode == 'area' else dict(antialias=True, align_corners=False)
        expected = torch.nn.functional.interpolate(hr[i:i + 1], size=out.shape[-2:], mode=mode, **options)
        assert torch.allclose(out[i:i + 1], expected, atol=1e-5), mode
    single = downsample(hr, 4, ['bilinear'] * 5)
    expected = torch.nn.functional.interpolate(hr, size=out.shape[-2:], mode='bilinear', antialias=True)
    assert torch.allclose(single, expected, atol=1e-5)


def test_cpu_fft_blur_matches_direct_convolution():
    from kornia.filters import filter2d

    from ddrsr.data.degradations import DegradationSpec, blur

    images = textured(batch=3, size=32)
    params = DegradationSpec('blur3', blur_sigma=3.0).params(3)
    params.sigma_y = torch.tensor([3.0, 1.0, 0.5])
    params.theta = torch.tensor([0.0, 0.7, 2.0])
    params.sigma_x[2] = 0  # the identity kernel
    direct = filter2d(images, gaussian_kernels(params.sigma_x, params.sigma_y, params.theta, 15), border_type='reflect')
    assert torch.allclose(blur(images, params), direct, atol=1e-5)
    assert torch.allclose(blur(images, params)[2], images[2], atol=1e-5)
