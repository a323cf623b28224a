"""``ddrsr inspect``: JPEG quality, noise, blur, nearest spec and a recommended strength per photo.

Without ``--json`` each photo gets a few human-readable lines on stdout; with it, stdout is one JSON list.
A bad file gives one ``ddrsr: error: <file>: ...`` line on stderr and the others go on; the exit status is
2 when any input failed.
"""
import json
import os
import sys

from ddrsr.cli._common import add_device, error_line, parser_with_example
from ddrsr.errors import DDRSRError

EXAMPLE = ('ddrsr inspect inputs/seeding_detail.jpg --report results/inspect   '
           '# then: python inference.py -i inputs/seeding_detail.jpg --strength <recommended>')


def list_photos(paths):
    """The image files named in ``paths``, folders expanded to the images directly inside them (sorted)."""
    from ddrsr.data.image_io import IMAGE_EXTENSIONS, find_images

    files = []
    for path in paths:
        if os.path.isdir(path):
            found = find_images(path, recursive=False)
            if not found:
                raise DDRSRError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in folder {path!r}')
            files += found
        elif os.path.lexists(path):
            files.append(path)  # the reader says what is wrong with it (a loop, a pipe, a broken link)
        else:
            raise DDRSRError(f'{path!r} does not exist; pass photos or folders of photos')
    return files


def cmd_inspect(args):
    """Print JPEG quality, noise, blur, the nearest named spec and a recommended --strength per photo."""
    from tqdm import tqdm

    from ddrsr.utils.device import resolve_device
    from ddrsr.inspection.inspector import Inspector, describe
    from ddrsr.loader import load

    device = resolve_device(args.device)
    files = list_photos(args.photos)
    model = load(args.model, weights=args.weights, device=device).network
    inspector = Inspector(model, args.regressors)
    if args.report:
        if not model.has_clean_embedding:
            raise DDRSRError('--report shows strengths 0.5 and 1.5, which need the model\'s clean embedding; its '
                             'weights lack it: compute it with python scripts/compute_clean_embedding.py and pass '
                             'the file with --weights')
        os.makedirs(args.report, exist_ok=True)
    results, failed = [], 0
    for path in tqdm(files, desc='inspect', unit='img', file=sys.stderr, disable=len(files) < 2):
        try:
            result = inspector.inspect_file(path)
            if args.report:
                from ddrsr.data.photo_io import read_image
                from ddrsr.inspection.report import write_report

                name = os.path.splitext(os.path.basename(path))[0] + '_inspect.png'
                result['report'] = write_report(os.path.join(args.report, name), read_image(path).rgb, result, model)
        except DDRSRError as error:
            failed += 1
            error_line(str(error), path)
            continue
        except (OSError, ValueError, MemoryError) as error:
            failed += 1
            error_line(f'{type(error).__name__}: {error}', path)
            continue
        results.append(result)
        if not args.json:
            print('\n'.join(describe(result)), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    if failed:
        raise DDRSRError(f'{failed} of {len(files)} input(s) failed')
    return None


def add_subcommands(subparsers):
    from ddrsr.defaults import DEFAULT_REGRESSORS
    from ddrsr.zoo import DEFAULT_MODEL

    inspect = parser_with_example(
        subparsers, 'inspect', 'What is wrong with a photo: JPEG quality (exact, from the quantization tables), '
        'noise sigma, DDR estimates of blur, noise and JPEG, the nearest named spec and a recommended --strength.',
        EXAMPLE)
    inspect.add_argument('photos', nargs='+', metavar='PHOTO', help='image files or folders of images')
    inspect.add_argument('--json', action='store_true', help='print one JSON list on stdout instead of text')
    inspect.add_argument('--report', metavar='DIR', help='write one PNG per photo: the photo, its estimates and '
                         'crops of the result at strengths 0.5, 1 and the recommended one')
    inspect.add_argument('-n', '--model', default=DEFAULT_MODEL, help=f'DDR model (default: {DEFAULT_MODEL})')
    inspect.add_argument('--weights', help='checkpoint to use instead of the shipped weights')
    inspect.add_argument('--regressors', default=DEFAULT_REGRESSORS,
                         help='regressor file from scripts/train_inspect_regressors.py (default: the shipped one)')
    add_device(inspect)
    inspect.set_defaults(func=cmd_inspect)
