"""``ddrsr degrade``: write a degraded LQ set from an HR folder (the pipeline is ddrsr.data.degradations)."""
import os
import sys

from ddrsr.cli._common import add_device, parser_with_example
from ddrsr.errors import DDRSRError


def cmd_degrade(args):
    """Write a degraded LQ set (one named spec) from an HR folder."""
    import torch
    from tqdm import tqdm

    from ddrsr.data.degradations import degrade_with_spec, parse_spec
    from ddrsr.data.image_io import list_images, mod_crop, read_rgb, to_tensor
    from ddrsr.data.photo_io import write_image
    from ddrsr.utils.device import resolve_device

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


def add_subcommands(subparsers):
    from ddrsr.defaults import NAMED_SPECS

    degrade = parser_with_example(subparsers, 'degrade', 'Write a degraded LQ set from an HR folder.',
                                  'ddrsr degrade -i datasets/val_hr -o datasets/val_blur2_noise20 --spec blur2_noise20')
    degrade.add_argument('-i', '--input', required=True, help='folder of HR images')
    degrade.add_argument('-o', '--output', required=True, help='folder for the LQ PNGs')
    degrade.add_argument('--spec', required=True,
                         help=f'named degradation: {", ".join(NAMED_SPECS)}, or tokens like blur3_noise10_jpeg50')
    degrade.add_argument('--scale', type=int, default=4, help='down-sampling factor (default: 4)')
    degrade.add_argument('--seed', type=int, default=0, help='image i uses seed + i (default: 0)')
    add_device(degrade)
    degrade.set_defaults(func=cmd_degrade)
