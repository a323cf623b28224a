"""``ddrsr <subcommand>``: one entry point with argparse subparsers.

Machine-readable results go to stdout as JSON; progress and messages go to stderr. Errors that users
can fix print one ``ddrsr: error: ...`` line and exit with status 2, with no traceback.
"""
import argparse
import json
import os
import sys

from ddrsr.errors import DDRSRError


def _add_device(parser):
    parser.add_argument('--device', default='auto', help='auto | cpu | cuda (default: auto)')


def _parser_with_example(subparsers, name, help_text, example):
    return subparsers.add_parser(name, help=help_text, description=f'{help_text}\n\nexample:\n  {example}',
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


# ----------------------------------------------------------------------------------------------------
def cmd_degrade(args):
    """Write a degraded LQ set (one named spec) from an HR folder."""
    import torch
    from tqdm import tqdm

    from ddrsr.data.degradations import degrade_with_spec, parse_spec
    from ddrsr.data.image_io import list_images, mod_crop, read_rgb, to_tensor
    from ddrsr.inference.image_io import write_image
    from ddrsr.inference.upsampler import resolve_device

    spec = parse_spec(args.spec)
    device = resolve_device(args.device)
    paths = list_images(args.input)
    if os.path.abspath(args.output) == os.path.abspath(args.input):
        raise DDRSRError('the output folder must differ from the input folder (inputs are never overwritten)')
    os.makedirs(args.output, exist_ok=True)
    written = []
    for index, path in enumerate(tqdm(paths, desc=f'degrade {spec.name}', unit='img', file=sys.stderr)):
        hr = to_tensor(mod_crop(read_rgb(path), args.scale))[None].to(device)
        if min(hr.shape[-2:]) < args.scale:
            raise DDRSRError(f'{path}: image is smaller than the scale {args.scale}')
        with torch.no_grad():
            lq = degrade_with_spec(hr, spec, args.scale, seed=args.seed + index)[0]
        name = os.path.splitext(os.path.relpath(path, args.input))[0].replace(os.sep, '_') + '.png'
        write_image(os.path.join(args.output, name), lq.permute(1, 2, 0).cpu().numpy())
        written.append(name)
    return {'spec': spec.name, 'scale': args.scale, 'seed': args.seed, 'count': len(written), 'output': args.output}


def cmd_export(args):
    """Export a model to ONNX (one graph lq -> sr) and optionally verify it against torch."""
    from ddrsr.export import export_onnx, verify_onnx
    from ddrsr.inference.upsampler import resolve_device
    from ddrsr.zoo import load_model

    device = resolve_device(args.device)
    model = load_model(args.model, weights=args.model_path, device='cpu')
    export_onnx(model, args.output, opset=args.opset, fp16=args.fp16)
    result = {'model': args.model, 'output': args.output, 'opset': args.opset, 'fp16': args.fp16}
    if args.verify:
        result['verify'] = verify_onnx(model.to(device), args.output, device=str(device))
    return result


def cmd_evaluate(args):
    """PSNR/SSIM (Y channel) per named spec for bicubic and each model, on fixed centre crops."""
    from ddrsr.evaluation import bicubic_upscaler, evaluate
    from ddrsr.inference.upsampler import resolve_device
    from ddrsr.zoo import load_model

    device = resolve_device(args.device)
    candidates = [('bicubic', bicubic_upscaler(args.scale))]
    for name in args.model:
        model = load_model(name, device=device)
        if model.scale != args.scale:
            raise DDRSRError(f'model {name!r} is x{model.scale}, but --scale is {args.scale}')
        candidates.append((name, model))
    table = {}
    for name, upscale in candidates:
        table[name] = evaluate(upscale, args.hr, args.specs, scale=args.scale, meta_info=args.meta_info,
                               crop_size=args.crop_size, seed=args.seed, device=device)
    return {'hr': args.hr, 'crop_size': args.crop_size, 'scale': args.scale, 'results': table}


# ----------------------------------------------------------------------------------------------------
def build_parser():
    from ddrsr.data.degradations import NAMED_SPECS
    from ddrsr.zoo import DEFAULT_MODEL

    parser = argparse.ArgumentParser(prog='ddrsr', description='Blind SR guided by deep degradation representations.')
    subparsers = parser.add_subparsers(dest='command', metavar='<subcommand>')
    subparsers.required = True

    degrade = _parser_with_example(subparsers, 'degrade', 'Write a degraded LQ set from an HR folder.',
                                   'ddrsr degrade -i datasets/val_hr -o datasets/val_blur2_noise20 --spec blur2_noise20')
    degrade.add_argument('-i', '--input', required=True, help='folder of HR images')
    degrade.add_argument('-o', '--output', required=True, help='folder for the LQ PNGs')
    degrade.add_argument('--spec', required=True,
                         help=f'named degradation: {", ".join(NAMED_SPECS)}, or tokens like blur3_noise10_jpeg50')
    degrade.add_argument('--scale', type=int, default=4, help='down-sampling factor (default: 4)')
    degrade.add_argument('--seed', type=int, default=0, help='image i uses seed + i (default: 0)')
    _add_device(degrade)
    degrade.set_defaults(func=cmd_degrade)

    export = _parser_with_example(subparsers, 'export', 'Export a model to ONNX: one graph, lq -> sr.',
                                  'ddrsr export -n rrdb_ddr_bn_x4_lite -o model.onnx --verify')
    export.add_argument('-n', '--model', default=DEFAULT_MODEL, help=f'model name (default: {DEFAULT_MODEL})')
    export.add_argument('--model_path', help='checkpoint to use instead of the shipped weights')
    export.add_argument('-o', '--output', required=True, help='ONNX file to write')
    export.add_argument('--opset', type=int, default=17, help='ONNX opset (>= 17, default: 17)')
    export.add_argument('--fp16', action='store_true', help='store weights and compute in float16')
    export.add_argument('--verify', action='store_true', help='compare onnxruntime with torch on two input sizes')
    _add_device(export)
    export.set_defaults(func=cmd_export)

    evaluate = _parser_with_example(
        subparsers, 'evaluate', 'PSNR/SSIM (Y, border = scale) per degradation spec, against bicubic.',
        'ddrsr evaluate -n rrdb_ddr_bn_x4_lite -n rrdb_bn_x4_lite --hr datasets/debian_photos/hr '
        '--meta_info scripts/debian_photos_val.txt')
    evaluate.add_argument('-n', '--model', action='append', default=[], help='model name (repeat for several)')
    evaluate.add_argument('--hr', required=True, help='folder of HR images')
    evaluate.add_argument('--meta_info', help='file listing the HR images to use (default: all in --hr)')
    evaluate.add_argument('--specs', nargs='+', default=['clean', 'blur2', 'noise20', 'blur2_noise20', 'jpeg30'])
    evaluate.add_argument('--crop_size', type=int, default=192, help='centre crop of each HR image (default: 192)')
    evaluate.add_argument('--scale', type=int, default=4)
    evaluate.add_argument('--seed', type=int, default=0)
    _add_device(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        import ddrsr  # noqa: F401  (registries and the torchvision alias)
        result = args.func(args)
    except DDRSRError as error:
        print(f'ddrsr: error: {error}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('ddrsr: interrupted', file=sys.stderr)
        return 130
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
