"""The quality report behind ``ddrsr evaluate --output/--visual``: a Markdown table and a side-by-side PNG.

The table reads the dict that :func:`ddrsr.evaluation.evaluate` returns per row; the targets are the
release targets of the shipped models (gains over bicubic for the default model, and DDR guidance
against the plain baseline trained identically), checked only for the rows that are present.
"""
import datetime
import os
import textwrap

import torch
import torch.nn.functional as F

from ddrsr.data.spec_paired_dataset import SpecPairedDataset
from ddrsr.errors import DDRSRError
from ddrsr.utils.figures import save_figure
from ddrsr.utils.markdown import markdown_table

DEGRADED_SPECS = ('blur2', 'noise20', 'blur2_noise20')

# Minimum PSNR gain (dB) of the default model over bicubic, per spec.
DEFAULT_MODEL_GAINS = {'blur2': 1.0, 'jpeg30': 1.0, 'noise20': 2.0, 'blur2_noise20': 2.0}
# DDR guidance: (with DDR, without DDR) pairs trained on the same data from the same start.
DDR_PAIRS = (('rrdb_ddr_bn_x4_lite', 'rrdb_bn_x4_lite'), ('rrdb_ddr_bn_x4', 'rrdb_bn_x4'))
# The full-size model's ship rule (fixed before training): its fidelity end (detail 0) against bicubic and the lite
# default; its Real-ESRGAN end (detail 1) against x4plus itself.
FULL_FIDELITY, FULL_PERCEPTUAL, X4PLUS, LITE_DEFAULT = ('rrdb_ddr_real_x4@0', 'rrdb_ddr_real_x4@1', 'realesrgan_x4plus',
                                                        'rrdb_ddr_real_x4_lite')
FULL_FIDELITY_GAINS = {'blur2': 1.0, 'jpeg30': 1.0}
MAX_JPEG_BLOCKINESS = 1.10
NIQE_SLACK, NIQE_SPECS = 0.3, ('clean', 'blur2', 'jpeg30')


def mean_psnr(row, specs=DEGRADED_SPECS, strict=False):
    """Mean PSNR over ``specs`` of one ``ddrsr.evaluation.evaluate`` result: None if a spec is missing, or with
    ``strict`` a KeyError naming the missing specs.

    >>> mean_psnr({'blur2': {'psnr': 30.0}, 'noise20': {'psnr': 28.0}, 'blur2_noise20': {'psnr': 26.0}})
    28.0
    """
    missing = [spec for spec in specs if spec not in row]
    if missing and strict:
        raise KeyError(f'the result lacks specs {missing}; evaluate them too')
    return None if missing else sum(row[spec]['psnr'] for spec in specs) / len(specs)


def check_targets(table, default_model):
    """``[{'target': str, 'value': float, 'required': float, 'met': bool}]`` for the rows present."""
    checks = []
    if 'bicubic' in table and default_model in table:
        for spec, gain in DEFAULT_MODEL_GAINS.items():
            if spec in table[default_model] and spec in table['bicubic']:
                # float(): PSNRs may be numpy scalars, and the checks are printed as JSON by `ddrsr evaluate`.
                value = float(table[default_model][spec]['psnr'] - table['bicubic'][spec]['psnr'])
                checks.append({'target': f'{default_model} - bicubic on {spec} (dB)', 'value': value,
                               'required': gain, 'met': value >= gain})
    checks += full_size_checks(table)
    for with_ddr, without_ddr in DDR_PAIRS:
        if with_ddr in table and without_ddr in table:
            ddr, plain = mean_psnr(table[with_ddr]), mean_psnr(table[without_ddr])
            if ddr is not None and plain is not None:
                ddr, plain = float(ddr), float(plain)
                checks.append({'target': f'{with_ddr} - {without_ddr}, mean PSNR over {", ".join(DEGRADED_SPECS)} (dB)',
                               'value': ddr - plain, 'required': 0.0, 'met': ddr >= plain})
    return checks


def full_size_checks(table):
    """The full-size model's ship rule, for the rows present (see :data:`FULL_FIDELITY` and the constants by it)."""
    checks = []

    def check(target, value, required, met, at_most=False):
        checks.append({'target': target, 'value': float(value), 'required': float(required), 'met': bool(met),
                       'at_most': at_most})

    def gain(row, spec):
        return table[row][spec]['psnr'] - table['bicubic'][spec]['psnr']

    if FULL_FIDELITY in table and 'bicubic' in table:
        row = table[FULL_FIDELITY]
        for spec in row:
            floor = max(FULL_FIDELITY_GAINS.get(spec, float('-inf')),
                        gain(LITE_DEFAULT, spec) if LITE_DEFAULT in table else float('-inf'))
            if floor > float('-inf'):
                check(f'{FULL_FIDELITY} - bicubic on {spec} (dB; >= the lite default\'s)', gain(FULL_FIDELITY, spec),
                      floor, gain(FULL_FIDELITY, spec) >= floor)
        if row.get('jpeg30', {}).get('blockiness') is not None:
            value = row['jpeg30']['blockiness']
            check(f'{FULL_FIDELITY} blockiness on jpeg30', value, MAX_JPEG_BLOCKINESS, value <= MAX_JPEG_BLOCKINESS,
                  at_most=True)
    if FULL_PERCEPTUAL in table and X4PLUS in table:
        ours, anchor = table[FULL_PERCEPTUAL], table[X4PLUS]
        for spec in ours:
            check(f'{FULL_PERCEPTUAL} - {X4PLUS} PSNR on {spec} (dB)', ours[spec]['psnr'] - anchor[spec]['psnr'], 0,
                  ours[spec]['psnr'] >= anchor[spec]['psnr'])
            if spec in NIQE_SPECS and 'niqe' in ours[spec]:
                value = ours[spec]['niqe'] - anchor[spec]['niqe']
                check(f'{FULL_PERCEPTUAL} - {X4PLUS} NIQE on {spec}', value, NIQE_SLACK, value <= NIQE_SLACK,
                      at_most=True)
    return checks


def results_markdown(report, labels, command=None):
    """Markdown for ``report`` (the JSON that ``ddrsr evaluate`` prints); ``labels`` maps row names to titles."""
    table, specs = report['results'], report['specs']
    has_niqe = any('niqe' in cell for row in table.values() for cell in row.values())
    lines = ['# Results', '',
             f'Generated by `ddrsr evaluate` on {datetime.date.today().isoformat()}. Do not edit by hand.', '']
    if command:
        lines += ['```bash', command, '```', '']
    lines += [f'Validation photos from `{report["hr"]}`'
              + (f' listed in `{report["meta_info"]}`' if report.get('meta_info') else '')
              + f', centre crops of {report["crop_size"]}×{report["crop_size"]} HR pixels, x{report["scale"]}. '
              f'PSNR (dB) and SSIM on the Y channel after cropping {report["scale"]} pixels at the border, as in BasicSR'
              + ('; NIQE (lower is better) from `basicsr.metrics.calculate_niqe` on the output.' if has_niqe else '.'),
              '']
    cell_header = 'PSNR / SSIM / NIQE' if has_niqe else 'PSNR / SSIM'
    lines += [f'Each cell is {cell_header}. The last column is the mean PSNR over {", ".join(DEGRADED_SPECS)}.', '']
    def metrics(cell):
        return f'{cell["psnr"]:.2f} / {cell["ssim"]:.3f}' + (f' / {cell["niqe"]:.2f}' if 'niqe' in cell else '')

    def mean_cell(row):
        mean = mean_psnr(row)
        return '' if mean is None else f'{mean:.2f}'

    lines += markdown_table(['model', *specs, 'mean (degraded)'],
                            [[labels.get(name, name), *(metrics(row[spec]) for spec in specs), mean_cell(row)]
                             for name, row in table.items()])
    if 'bicubic' in table:
        lines += ['', '## PSNR gain over bicubic (dB)', '']
        lines += markdown_table(['model', *specs], [
            [labels.get(name, name), *(f'{row[spec]["psnr"] - table["bicubic"][spec]["psnr"]:+.2f}' for spec in specs)]
            for name, row in table.items() if name != 'bicubic'])
    if any('blockiness' in cell for row in table.values() for cell in row.values()):
        lines += ['', '## Blockiness', '',
                  'Mean |ΔY| across the LR 8×8 JPEG block edges (HR rows and columns at multiples of '
                  f'{8 * report["scale"]}) over the mean |ΔY| across the other LR pixel edges (multiples of '
                  f'{report["scale"]}), pooled over the crops (`ddrsr.evaluation.blockiness`): ~1 means no grid; '
                  'visible 8×8 blocks score above 1.', '']
        lines += markdown_table(['model', *specs], [
            [labels.get(name, name), *('-' if row[spec].get('blockiness') is None else f'{row[spec]["blockiness"]:.2f}'
                                       for spec in specs)] for name, row in table.items()])
    per_crop_models = report.get('per_crop_model')
    for per_crop in ([per_crop_models] if isinstance(per_crop_models, str) else per_crop_models or []):
        lines += per_crop_lines(table, specs, per_crop, labels)
    checks = report.get('targets') or []
    if checks:
        lines += ['', '## Targets', '']
        lines += markdown_table(['target', 'measured', 'required', 'met'], [
            [check['target'], f'{check["value"]:+.2f}', f'{"≤" if check.get("at_most") else "≥"} {check["required"]:+.2f}',
             'yes' if check['met'] else '**no**'] for check in checks])
    if report.get('visual'):
        lines += ['', '## Visual comparison', '',
                  'Columns: the LQ input (nearest-neighbour enlarged), bicubic, then each model, then the ground truth.',
                  '', f'![visual comparison]({os.path.basename(report["visual"])})']
    return '\n'.join(lines) + '\n'


def per_crop_lines(table, specs, per_crop, labels):
    """The per-crop gain table of row ``per_crop`` over bicubic (no lines when either row is missing)."""
    lines = []
    if per_crop in table and 'bicubic' in table:
        row, bicubic = table[per_crop], table['bicubic']
        crops = list(row[specs[0]].get('per_image', {}))
        if crops:
            lines += ['', f'## Per crop: {labels.get(per_crop, per_crop)} − bicubic (dB)', '',
                      'A mean over a few crops can be one crop: a nearly flat one (high bicubic PSNR) turns a small '
                      'error into many dB.', '']
            lines += markdown_table(['crop', f'bicubic, {specs[0]} (dB)', *specs], [
                [os.path.splitext(crop)[0], f'{bicubic[specs[0]]["per_image"][crop]:.2f}',
                 *(f'{row[spec]["per_image"][crop] - bicubic[spec]["per_image"][crop]:+.2f}' for spec in specs)]
                for crop in crops])
    return lines


@torch.inference_mode()
def save_visual_comparison(candidates, hr_dir, specs, path, scale=4, meta_info=None, crop_size=192, window=96,
                           image_index=0, seed=0, device='cpu'):
    """Save a grid PNG: one row per spec; columns LQ (nearest), each candidate's output, ground truth.

    Args:
        candidates (list[tuple[str, callable]]): ``(label, upscale)`` with ``upscale`` mapping
            ``(1, 3, h, w) -> (1, 3, h*scale, w*scale)``.
        window (int): side, in HR pixels, of the crop shown from the centre of each output.

    Returns:
        str: ``path``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    columns = ['input (LQ)'] + [label for label, _ in candidates] + ['ground truth']
    figure, axes = plt.subplots(len(specs), len(columns), figsize=(2.0 * len(columns), 2.1 * len(specs)),
                                squeeze=False)
    for row, spec in enumerate(specs):
        dataset = SpecPairedDataset({'dataroot_gt': hr_dir, 'meta_info': meta_info, 'spec': spec, 'scale': scale,
                                     'crop_size': crop_size, 'seed': seed})
        item = dataset[image_index % len(dataset)]
        lq = item['lq'][None]
        images = [F.interpolate(lq, scale_factor=scale, mode='nearest')]
        images += [upscale(lq.to(device)).float().cpu().clamp(0, 1) for _, upscale in candidates]
        images.append(item['gt'][None])
        height, width = images[-1].shape[-2:]
        top, left = max(0, (height - window) // 2), max(0, (width - window) // 2)
        draw_image_row(axes[row], [image[:, :, top:top + window, left:left + window] for image in images], spec,
                       columns if row == 0 else None, title_size=8)
    return save_figure(figure, path, dpi=110, tight_layout=True, bbox_inches=None)


def draw_image_row(axes, images, label, titles=None, title_size=9):
    """One row of an image grid: each ``(1, 3, H, W)`` image in [0, 1] into its axis, no ticks, ``label`` on the
    left, and ``titles`` above (pass them for the first row only)."""
    for column, (axis, image) in enumerate(zip(axes, images)):
        axis.imshow(image[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy(), interpolation='nearest')
        axis.set_xticks([])
        axis.set_yticks([])
        if titles:  # wrapped: long model labels would run into their neighbours
            axis.set_title(textwrap.fill(titles[column], 22), fontsize=title_size)
        if column == 0:
            axis.set_ylabel(label, fontsize=9)


def default_detail(sweep, max_blockiness=MAX_JPEG_BLOCKINESS, spec='jpeg30'):
    """The lowest detail of ``sweep`` (``{detail: evaluate() result}``) whose ``spec`` output is deblocked
    (blockiness at most ``max_blockiness``): the most faithful point that still removes JPEG blocks. None if none is.

    >>> default_detail({0.0: {'jpeg30': {'blockiness': 1.3}}, 0.5: {'jpeg30': {'blockiness': 1.08}}})
    0.5
    """
    deblocked = [d for d, row in sorted(sweep.items()) if (row[spec].get('blockiness') or float('inf')) <= max_blockiness]
    return deblocked[0] if deblocked else None


def sweep_markdown(rows, specs, labels=None):
    """A Markdown table of ``rows`` (``{name: evaluate() result}``, with a ``'bicubic'`` row): gain over bicubic per
    spec, their mean, and the JPEG blockiness of the ``jpeg30`` outputs."""
    labels = labels or {}
    bicubic = rows['bicubic']
    table = []
    for name, row in rows.items():
        gains = [row[spec]['psnr'] - bicubic[spec]['psnr'] for spec in specs]
        block = row.get('jpeg30', {}).get('blockiness')
        table.append([labels.get(name, name), *(f'{g:+.2f}' for g in gains), f'{sum(gains) / len(gains):+.2f}',
                      '-' if block is None else f'{block:.2f}'])
    return '\n'.join(markdown_table(['model', *specs, 'mean gain', 'jpeg30 blockiness'], table)) + '\n'


def save_before_after(photo, upsamplers, path, box=None, scale=4):
    """The README's before/after: 4× crops of one real photo, input (nearest), bicubic, then each model.

    Each model runs on the whole photo through its :class:`~ddrsr.inference.upsampler.Upsampler` (the embedding of
    the whole photo, as ``python inference.py`` computes it); the crop is taken from the outputs afterwards.

    Args:
        photo (str): an image file.
        upsamplers (list[tuple[str, Upsampler]]): ``(label, upsampler)``, each at ``scale``.
        path (str): the PNG to write.
        box (tuple[int, int, int], optional): ``(left, top, size)`` of the crop in input pixels (default: the
            centre square of side ``min(64, height, width)``).

    Returns:
        str: ``path``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from ddrsr.data.photo_io import read_image

    rgb = torch.from_numpy(read_image(photo).rgb.copy()).permute(2, 0, 1)[None].float()
    height, width = rgb.shape[-2:]
    if box is None:
        size = min(64, height, width)
        box = ((width - size) // 2, (height - size) // 2, size)
    left, top, size = box
    if left < 0 or top < 0 or size <= 0 or left + size > width or top + size > height:
        raise DDRSRError(f'crop box {box} is outside the {width}x{height} photo')
    images = [F.interpolate(rgb, scale_factor=scale, mode='nearest'),
              F.interpolate(rgb, scale_factor=scale, mode='bicubic', align_corners=False)]
    images += [upsampler.enhance_tensor(rgb) for _, upsampler in upsamplers]
    crop = [image[:, :, top * scale:(top + size) * scale, left * scale:(left + size) * scale] for image in images]
    titles = ['input (4× nearest)', 'bicubic'] + [label for label, _ in upsamplers]
    figure, axes = plt.subplots(1, len(crop), figsize=(2.6 * len(crop), 3.2), squeeze=False)
    draw_image_row(axes[0], crop, '', titles)
    return save_figure(figure, path, dpi=110, tight_layout=True, bbox_inches=None)
