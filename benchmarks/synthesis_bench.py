"""Section 2: degradation synthesis throughput, ddrsr's batched kornia pipeline against BasicSR per image.

Both sides run the same steps, in ddrsr's training order (``blur_stage: lr``), with the same parameter
ranges, taken from an option file's ``degradation:`` block with every step switched on ("full
pipeline"): resize by 1/scale (random bicubic/bilinear/area), Gaussian blur (isotropic or anisotropic,
one kernel per image), Gaussian noise (colour or grey) and sometimes Poisson noise, 8-bit rounding, JPEG
with a random quality, 8-bit rounding.

* ddrsr: :class:`~ddrsr.data.random_degradation.RandomDegradation` on one ``(B, 3, H, W)`` tensor.
* BasicSR: ``basicsr.data.degradations`` (``random_bivariate_Gaussian``, ``random_add_gaussian_noise``,
  ``random_add_poisson_noise``) with ``cv2.resize`` / ``cv2.filter2D``, per ``(H, W, 3)`` float32 image,
  as Real-ESRGAN's data loader does. JPEG is ``cv2.imencode`` with an ``int`` quality on a uint8
  image: basicsr's own ``random_add_jpg_compression`` passes a float quality, which OpenCV 5 rejects.
"""
import math
import time

import cv2
import numpy as np
import torch

from benchmarks.timing import smooth_images, timed

_CV2_RESIZE = {'bicubic': cv2.INTER_CUBIC, 'bilinear': cv2.INTER_LINEAR, 'area': cv2.INTER_AREA}
STEPS = ('resize', 'blur', 'noise', 'jpeg')


def full_pipeline_options(option_file):
    """The ``degradation:`` block of ``option_file`` with blur, noise and JPEG always on.

    The random resize mode, the anisotropic, grey-noise and Poisson probabilities and every range stay
    as the file has them.
    """
    from ddrsr.data.random_degradation import RandomDegradation
    from ddrsr.utils.option_file import load_yaml

    options = dict(load_yaml(option_file).get('degradation') or {})
    options.update(blur_prob=1.0, noise_prob=1.0, jpeg_prob=1.0)
    if 'jpeg_quality' not in options:
        options['jpeg_quality'] = list(RandomDegradation.jpeg_quality)
    return RandomDegradation.from_options(options)


# ----------------------------------------------------------------------------------------------------
# BasicSR, per image
def basicsr_degrade(img, degradation, scale, step_times):
    """One ``(H, W, 3)`` float32 image through BasicSR's CPU functions; adds each step's time to ``step_times``.

    Returns ``(H // scale, W // scale, 3)`` float32 on 8-bit levels.
    """
    from basicsr.data import degradations as bsr

    clock = time.perf_counter
    start = clock()
    mode = degradation.resize_modes[np.random.randint(len(degradation.resize_modes))]
    height, width = img.shape[0] // scale, img.shape[1] // scale
    img = cv2.resize(img, (width, height), interpolation=_CV2_RESIZE[mode])
    t1 = clock()
    kernel = bsr.random_bivariate_Gaussian(degradation.kernel_size, degradation.blur_sigma, degradation.blur_sigma,
                                           (-math.pi, math.pi), isotropic=np.random.uniform() >= degradation.aniso_prob)
    img = cv2.filter2D(img, -1, kernel)
    t2 = clock()
    img = bsr.random_add_gaussian_noise(img, degradation.noise_sigma, degradation.gray_noise_prob, clip=False)
    if np.random.uniform() < degradation.poisson_prob:
        img = bsr.random_add_poisson_noise(img, degradation.poisson_scale, 0, clip=False)
    t3 = clock()
    pixels = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    quality = int(np.random.randint(degradation.jpeg_quality[0], degradation.jpeg_quality[1] + 1))
    ok, encoded = cv2.imencode('.jpg', pixels, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    out = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
    t4 = clock()
    for step, seconds in zip(STEPS, (t1 - start, t2 - t1, t3 - t2, t4 - t3)):
        step_times[step] += seconds
    return out


# ----------------------------------------------------------------------------------------------------
# ddrsr, batched
def _kornia_steps(hr, degradation, scale, generator):
    """``{step: seconds}`` of one batch, step by step (the same calls ``degrade`` makes)."""
    from ddrsr.data import degradations as dd

    def sync():
        if hr.device.type == 'cuda':
            torch.cuda.synchronize()

    params = degradation.sample(hr.shape[0], generator, hr.device)
    times, clock = {}, time.perf_counter
    sync()
    start = clock()
    out = dd.downsample(hr, scale, params.resize_modes)
    sync()
    t1 = clock()
    out = dd.blur(out, params)
    sync()
    t2 = clock()
    out = dd.add_noise(out, params, generator)
    sync()
    t3 = clock()
    dd.quantize(dd.jpeg(dd.quantize(out), params.jpeg_quality))
    sync()
    t4 = clock()
    for step, seconds in zip(STEPS, (t1 - start, t2 - t1, t3 - t2, t4 - t3)):
        times[step] = seconds
    return times


def _previous_add_noise(images, params, generator):
    """``add_noise`` as it was before it drew Poisson noise only for the samples that get it (the Poisson part
    is kept as it was, to measure the before/after figure of that change in every run)."""
    from ddrsr.data.degradations import add_gaussian_noise

    images = add_gaussian_noise(images, params, generator)
    scale = params.poisson_scale.to(images)[:, None, None, None]
    if bool((scale > 0).any()):
        counts = images.clamp(0, 1) * 255.0
        shot = torch.poisson(counts, generator=generator) / 255.0 - counts / 255.0
        images = images + shot * scale
    return images


def noise_before_after(hr, degradation, scale, generator, repeats, warmup):
    """Median seconds of the noise step per batch: the previous implementation against the current one.

    Both run on the same LR batch with the same parameters, at least one sample with Poisson noise.
    """
    from ddrsr.data import degradations as dd

    params = degradation.sample(hr.shape[0], generator, hr.device)
    if not bool((params.poisson_scale > 0).any()):
        params.poisson_scale[0] = float(np.mean(degradation.poisson_scale))
    lr = dd.downsample(hr, scale, params.resize_modes)
    return {'poisson_samples': int((params.poisson_scale > 0).sum()), 'batch': hr.shape[0],
            'before_s': timed(lambda: _previous_add_noise(lr, params, generator), repeats, warmup)['median_s'],
            'after_s': timed(lambda: dd.add_noise(lr, params, generator), repeats, warmup)['median_s']}


def _median_steps(samples):
    return {step: float(np.median([s[step] for s in samples])) for step in STEPS}


def bench_synthesis(option_file, size=256, batch=32, scale=4, repeats=5, warmup=1, device='cpu', compile=False):
    """Images/s of the full random pipeline on ``batch`` HR images of ``size x size``, both ways.

    With ``compile``, ddrsr's pipeline is also timed through ``torch.compile`` (``compiled``: the first
    call, which compiles, is reported as ``compile_s``).

    Returns:
        dict: ``ddrsr`` and ``basicsr`` (median batch time, images/s, median seconds per step per batch),
        ``speedup`` (ddrsr images/s over BasicSR's), ``ops_per_call`` (aten ops one eager call dispatches,
        and host reads), optionally ``compiled``, and the settings.
    """
    import dataclasses

    from benchmarks.timing import count_dispatched_ops

    degradation = full_pipeline_options(option_file)
    images = smooth_images(batch, size, size, seed=2)
    hr = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)
    generator = torch.Generator(device=device).manual_seed(0)

    def ddrsr_batch():
        degradation(hr, scale, generator)
        if hr.device.type == 'cuda':
            torch.cuda.synchronize()

    ours = timed(ddrsr_batch, repeats, warmup)
    ops = count_dispatched_ops(ddrsr_batch)
    compiled = None
    if compile:
        fused = dataclasses.replace(degradation, compile=True)

        def compiled_batch():
            fused(hr, scale, generator)
            if hr.device.type == 'cuda':
                torch.cuda.synchronize()

        compiled = timed(compiled_batch, repeats, max(warmup, 1) + 1)  # the first call compiles
        compiled.update(images_per_s=batch / compiled['median_s'], compile_s=compiled['warmup_s'][0])
    ours_steps = _median_steps([_kornia_steps(hr, degradation, scale, generator) for _ in range(repeats)])
    noise = noise_before_after(hr, degradation, scale, generator, repeats, warmup)

    np.random.seed(0)
    theirs_steps = []

    def basicsr_batch():
        steps = dict.fromkeys(STEPS, 0.0)
        for img in images:
            basicsr_degrade(img, degradation, scale, steps)
        theirs_steps.append(steps)

    theirs = timed(basicsr_batch, repeats, warmup)
    result = {'option_file': option_file, 'hr_size': size, 'batch': batch, 'scale': scale, 'device': str(device),
              'blur_stage': degradation.blur_stage, 'resize_modes': list(degradation.resize_modes),
              'ddrsr': {**ours, 'images_per_s': batch / ours['median_s'], 'steps_s': ours_steps},
              'basicsr': {**theirs, 'images_per_s': batch / theirs['median_s'],
                          'steps_s': _median_steps(theirs_steps[warmup:])}, 'noise_before_after': noise,
              'ops_per_call': ops}
    result['speedup'] = result['ddrsr']['images_per_s'] / result['basicsr']['images_per_s']
    if compiled:
        result['compiled'] = compiled
        result['speedup_compiled'] = compiled['images_per_s'] / result['basicsr']['images_per_s']
    return result


# ----------------------------------------------------------------------------------------------------
# Another device (CUDA when a GPU is there) against the CPU
def device_parity(option_file, device='cuda', size=256, batch=8, scale=4):
    """Blur kernels, JPEG and the noise-free pipeline on ``device`` against the CPU, same inputs and parameters.

    kornia's JPEG codec has had device-specific bugs (kornia issue #2867), so this is checked, not assumed.
    Noise is left out of the pipeline comparison: CPU and CUDA generators give different random streams.

    Returns:
        dict: max abs difference per check, and the fraction of pixels more than one 8-bit level apart.
    """
    from ddrsr.data import degradations as dd

    degradation = full_pipeline_options(option_file)
    hr = torch.from_numpy(smooth_images(batch, size, size, seed=3)).permute(0, 3, 1, 2).contiguous()
    params = degradation.sample(batch, torch.Generator().manual_seed(0))
    params.noise_sigma.zero_()
    params.poisson_scale.zero_()

    def to_device(p):
        moved = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in vars(p).items()}
        return dd.DegradationParams(**moved)

    def compare(a, b):
        diff = (a.cpu() - b.cpu()).abs()
        return {'max_abs': float(diff.max()), 'over_one_level': float((diff > 1.5 / 255).float().mean())}

    kernels = dd.gaussian_kernels(params.sigma_x, params.sigma_y, params.theta, params.kernel_size)
    moved = to_device(params)
    checks = {
        'blur kernels': compare(kernels, dd.gaussian_kernels(moved.sigma_x, moved.sigma_y, moved.theta,
                                                             params.kernel_size)),
        'blur (filter2d)': compare(dd.blur(hr, params), dd.blur(hr.to(device), moved)),
        'jpeg': compare(dd.jpeg(dd.quantize(hr), params.jpeg_quality),
                        dd.jpeg(dd.quantize(hr.to(device)), moved.jpeg_quality)),
        'pipeline without noise': compare(dd.degrade(hr, params, scale), dd.degrade(hr.to(device), moved, scale)),
    }
    return checks
