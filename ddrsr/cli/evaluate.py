"""``ddrsr evaluate``: PSNR/SSIM per named spec against bicubic (ddrsr.evaluation), optionally a report."""

from ddrsr.cli._common import add_device, parser_with_example
from ddrsr.errors import DDRSRError
from ddrsr.defaults import PRECISIONS
from ddrsr.utils.markdown import write_text


def cmd_evaluate(args):
    """PSNR/SSIM(/NIQE) per named spec for bicubic and each model; optionally a Markdown report and a visual PNG."""
    from ddrsr.evaluation import bicubic_upscaler, evaluate
    from ddrsr.utils.device import resolve_device
    from ddrsr.results_report import FULL_FIDELITY, check_targets, results_markdown, save_visual_comparison
    from ddrsr.loader import load
    from ddrsr.zoo import DEFAULT_MODEL, model_entry

    device = resolve_device(args.device)
    candidates = [('bicubic', bicubic_upscaler(args.scale))]
    labels = {'bicubic': 'bicubic'}
    for name in args.model:
        # NAME=CHECKPOINT: the zoo model NAME's architecture with a training checkpoint's weights (params_ema);
        # NAME@DETAIL: a model with a detail knob at that detail.
        model_token, _, checkpoint = name.partition('=')
        zoo_name, at, detail = model_token.partition('@')
        loaded = load(zoo_name, weights=checkpoint or None, device=device, detail=_detail(detail) if at else None,
                      hint=f'pass the zoo model whose architecture {checkpoint!r} was trained with')
        if loaded.scale != args.scale:
            raise DDRSRError(f'model {name!r} is x{loaded.scale}, but --scale is {args.scale}')
        if loaded.detail is not None and not checkpoint:
            name = f'{zoo_name}@{loaded.detail:g}'  # one key per point, however it was spelt (the ship rule reads it)
        candidates.append((name, _upscaler(loaded, device, args.precision, args.strength)))
        label = model_entry(zoo_name).get('label', zoo_name)
        labels[name] = name if checkpoint else (f'{label}, detail {loaded.detail:g}' if loaded.detail is not None
                                                else label)
    table = {}
    for name, upscale in candidates:
        table[name] = evaluate(upscale, args.hr, args.specs, scale=args.scale, meta_info=args.meta_info,
                               crop_size=args.crop_size, seed=args.seed, device=device, niqe=args.niqe)
    report = {'hr': args.hr, 'meta_info': args.meta_info, 'crop_size': args.crop_size, 'scale': args.scale,
              'precision': args.precision, 'strength': args.strength,
              'specs': args.specs, 'results': table, 'targets': check_targets(table, DEFAULT_MODEL),
              'per_crop_model': [name for name in (DEFAULT_MODEL, FULL_FIDELITY) if name in table]
              or [next(iter(args.model), None)]}
    if args.visual:
        shown = [(labels[name], upscale) for name, upscale in candidates]
        report['visual'] = save_visual_comparison(shown, args.hr, args.visual_specs or args.specs, args.visual,
                                                  scale=args.scale, meta_info=args.meta_info,
                                                  crop_size=args.crop_size, image_index=args.visual_image,
                                                  seed=args.seed, device=device)
    if args.output:
        write_text(args.output, results_markdown(report, labels, command=getattr(args, 'command_line', None)))
        report['markdown'] = args.output
    return report


def _upscaler(loaded, device, precision, strength):
    """``loaded``'s network as an upscaler: itself in fp32 at strength 1 (the reference), else through an
    Upsampler (its precision, and its strength for DDR models: ``auto`` asks ``ddrsr inspect`` per crop)."""
    from ddrsr.inference import Upsampler
    from ddrsr.inference.torch_backend import resolve_precision

    strength = strength if loaded.use_ddr else 1.0
    resolved = resolve_precision(precision, device, loaded.cpu_precision, loaded.supports_half)
    if strength == 1.0 and resolved == 'fp32':
        return loaded.network
    backend = 'onnx' if resolved == 'int8' else 'torch'  # only onnxruntime runs int8
    upsampler = Upsampler(model=loaded, device=device, backend=backend, precision=precision, strength=strength)
    return upsampler.enhance_tensor


def _strength(text):
    import argparse

    from ddrsr.inference.upsampler import AUTO_STRENGTH, check_strength

    try:
        return text if text == AUTO_STRENGTH else check_strength(text)
    except DDRSRError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _detail(text):
    try:
        return float(text)
    except ValueError:
        raise DDRSRError(f'-n NAME@DETAIL needs a number from 0 to 1 after @, got {text!r}') from None


def add_subcommands(subparsers):
    evaluate = parser_with_example(
        subparsers, 'evaluate', 'PSNR/SSIM (Y, border = scale) per degradation spec, against bicubic.',
        'ddrsr evaluate -n rrdb_ddr_real_x4_lite -n rrdb_ddr_bn_x4_lite -n rrdb_bn_x4_lite --hr datasets/debian_photos/hr '
        '--meta_info scripts/debian_photos_val.txt')
    evaluate.add_argument('-n', '--model', action='append', default=[],
                          help='zoo model name, or NAME=CHECKPOINT for a checkpoint of that architecture '
                          '(e.g. rrdb_bn_x4_lite=experiments/x/models/net_g_1000.pth), or NAME@DETAIL for a model '
                          'with a detail knob (rrdb_ddr_real_x4@0.5); repeat for several')
    evaluate.add_argument('--hr', required=True, help='folder of HR images')
    evaluate.add_argument('--meta_info', help='file listing the HR images to use (default: all in --hr)')
    evaluate.add_argument('--specs', nargs='+', default=['clean', 'blur2', 'noise20', 'blur2_noise20', 'jpeg30'])
    evaluate.add_argument('--crop_size', type=int, default=192, help='centre crop of each HR image (default: 192)')
    evaluate.add_argument('--scale', type=int, default=4)
    evaluate.add_argument('--seed', type=int, default=0)
    evaluate.add_argument('--precision', choices=PRECISIONS, default='fp32',
                          help='arithmetic of the models (default: fp32, the reference; bf16 needs native CPU bf16; '
                          'int8 runs the quantized ONNX graph)')
    evaluate.add_argument('--strength', type=_strength, default=1.0,
                          help='restoration strength of the DDR models: 0 to 1.5 or auto (ddrsr inspect per crop); '
                          'default 1')
    evaluate.add_argument('--niqe', action='store_true', help='also compute NIQE of the outputs (basicsr.metrics)')
    evaluate.add_argument('-o', '--output', help='write the table, gains over bicubic and release targets here '
                          '(e.g. docs/RESULTS.md)')
    evaluate.add_argument('--visual', help='write a side-by-side PNG: input, bicubic, each model, ground truth')
    evaluate.add_argument('--visual_specs', nargs='+', help='specs shown in --visual (default: --specs)')
    evaluate.add_argument('--visual_image', type=int, default=0, help='which validation image --visual shows')
    add_device(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)
