"""``ddrsr upscale`` (and ``python inference.py``, its shim): photos in, super-resolved photos out.

Examples:
    python inference.py                                   # inputs/ -> results/, default model
    python inference.py -i photo.jpg -o out -s 2 -t 256   # one file, x2 output, 256-pixel tiles
    python inference.py -i photos --backend torch --ext png   # the default is auto (onnxruntime on the CPU)
    python inference.py -i photo.jpg --strength 0.5       # restore half as strongly (keeps grain, bokeh)
    python inference.py -n rrdb_ddr_real_x4 --detail 0.5  # full size, halfway to Real-ESRGAN's look

Every failed input prints one line ``ddrsr: error: <file>: <what to do>`` on stderr; the others go on.
The exit status is 1 if any input failed (2 for a bad model or option, or an output folder that cannot
be written). Inputs are never overwritten, and existing outputs are skipped unless ``--overwrite``.
Files whose header claims more than ``--max_pixels`` pixels are refused before they are decoded.
Ctrl-C or SIGTERM abandons the file in progress (no partial output, no temporary file), prints how many
files were done and exits with 130 or 143; the same command then skips the finished outputs.
The loop and its policy are library code: :func:`ddrsr.inference.folder.upscale_files`.
"""
import argparse
import sys
import warnings
from typing import Optional, Sequence

from ddrsr.cli._common import error_line, progress
from ddrsr.errors import DDRSRError

EPILOG = ('examples:\n  python inference.py -i inputs -o results -n rrdb_ddr_real_x4_lite -t 256\n'
          '  python inference.py -i photo.jpg --strength 0.5   # restore half as strongly\n'
          '  ddrsr inspect photo.jpg                           # recommends a --strength')
DESCRIPTION = 'Blind super-resolution of photos with a DDR-guided RRDBNet.'


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The flags of ``python inference.py`` (Real-ESRGAN's, where they apply)."""
    from ddrsr.defaults import BACKENDS, DEFAULT_TILE_PAD, MAX_PIXELS as DEFAULT_MAX_PIXELS, PRECISIONS
    from ddrsr.zoo import DEFAULT_MODEL, MODELS

    parser.add_argument('-i', '--input', default='inputs', help='input image or folder (default: inputs)')
    parser.add_argument('-o', '--output', default='results', help='output folder (default: results)')
    parser.add_argument('-n', '--model', default=DEFAULT_MODEL,
                        help=f'model: {", ".join(MODELS)} (default: {DEFAULT_MODEL})')
    parser.add_argument('--weights', default=None, help='checkpoint to use instead of the shipped weights')
    parser.add_argument('-s', '--outscale', type=float, default=None,
                        help='final upscaling factor (default: the model scale)')
    parser.add_argument('-t', '--tile', type=int, default=0,
                        help='tile size in input pixels; 0 (default) runs whole photos')
    parser.add_argument('--tile_pad', type=int, default=DEFAULT_TILE_PAD,
                        help=f'tile padding in input pixels (default: {DEFAULT_TILE_PAD})')
    parser.add_argument('--strength', type=_strength_value, default=1.0,
                        help='restoration strength from 0 to 1.5 (default: 1): the DDR embedding is moved from the '
                        'clean embedding (0: treat the photo as clean) to the photo\'s own (1) and beyond (1.5: '
                        'restore harder); auto: ddrsr inspect\'s recommendation per photo; DDR models only')
    parser.add_argument('--detail', type=float, default=None,
                        help='for rrdb_ddr_real_x4: 0 (fidelity, the pixel-loss fine-tune) to 1 (Real-ESRGAN '
                        'x4plus\'s sharper, painted look), by network interpolation (default: the model\'s own)')
    parser.add_argument('--backend', choices=BACKENDS, default='auto',
                        help='inference engine (default: auto = onnxruntime on the CPU, as fast as torch there, exported '
                        'once per weights file and cached; torch on CUDA or for --precision bf16; torch with one '
                        'warning if the export fails)')
    parser.add_argument('--onnx_cache', default=None,
                        help='folder for the exported ONNX pair (default: $DDRSR_CACHE or ~/.cache/ddrsr, '
                        'then onnx/<model>-<sha256>)')
    parser.add_argument('--precision', choices=PRECISIONS, default='auto',
                        help='arithmetic precision (default: auto = fp16 on CUDA; on the CPU, the precision each model '
                        'was measured fast and within the quality budget in (int8 on onnxruntime, or bf16 where the '
                        'CPU has native bf16 units); else fp32). int8: the generator quantized once and cached')
    parser.add_argument('--fp32', action='store_true', help='use fp32 everywhere (the same as --precision fp32)')
    parser.add_argument('--ext', choices=('auto', 'png', 'jpg'), default='auto',
                        help='output format; auto (default) keeps the input format when it can hold the result')
    parser.add_argument('--suffix', default='out', help='suffix of the output name (default: out; "" for none)')
    parser.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto',
                        help='device (default: auto = cuda if available)')
    parser.add_argument('--overwrite', action='store_true', help='replace outputs that already exist')
    parser.add_argument('--max_pixels', type=_pixel_count, default=DEFAULT_MAX_PIXELS,
                        help='refuse inputs with more pixels, checked before decoding '
                        f'(default: {DEFAULT_MAX_PIXELS:.0e}; 0: no limit)')
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python inference.py``."""
    from ddrsr.utils.cli_flags import add_hidden_aliases

    return add_hidden_aliases(add_arguments(argparse.ArgumentParser(
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)))


def _strength_value(text):
    """``--strength`` value: ``auto`` or a number (its range is checked by the Upsampler, as one error line)."""
    if text == 'auto':
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number from 0 to 1.5 or auto, got {text!r}') from None


def _pixel_count(text):
    """``--max_pixels`` value: an integer count, also written as a float such as 2e8."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a pixel count such as 200000000 or 2e8, got {text!r}') from None
    if not 0 <= value < float('inf'):  # also refuses nan
        raise argparse.ArgumentTypeError(f'expected a pixel count >= 0 (0: no limit), got {text!r}')
    return int(value)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python inference.py``: parse ``argv`` and run; returns the exit status."""
    return cmd_upscale(build_parser().parse_args(argv))


def cmd_upscale(args: argparse.Namespace) -> int:
    """Upscale every input of ``args``; returns the exit status (0, 1 if any input failed, 2, 130 or 143)."""
    from ddrsr.inference.folder import Tally
    from ddrsr.utils.interruption import Interrupted, StopOnSignal

    tally = Tally()
    try:
        with StopOnSignal() as stop:
            return _upscale_all(args, stop, tally)
    except Interrupted as interrupted:
        print(f'ddrsr: interrupted by {interrupted.name} after {tally.done} of {tally.files} file(s) '
              f'({tally.written} written, {tally.skipped} skipped, {tally.failed} failed); the file in '
              'progress left no output. Run the same command again to do the rest', file=sys.stderr)
        return interrupted.exit_status


def _upscale_all(args, stop, tally):
    from tqdm import tqdm

    from ddrsr.inference.folder import check_output_folder, list_inputs, upscale_files
    from ddrsr.inference.upsampler import BackendFallbackWarning, Upsampler

    try:
        files = list_inputs(args.input)
        tally.files = len(files)
        check_output_folder(args.output)
        with warnings.catch_warnings(record=True) as caught:  # each as one line, not Python's two
            warnings.simplefilter('always', BackendFallbackWarning)
            upsampler = Upsampler(args.model, weights=args.weights, device=args.device, tile=args.tile,
                                  tile_pad=args.tile_pad, precision='fp32' if args.fp32 else args.precision,
                                  backend=args.backend,
                                  onnx_dir=args.onnx_cache, max_pixels=args.max_pixels, strength=args.strength,
                                  detail=args.detail)
        for warning in caught:
            if issubclass(warning.category, BackendFallbackWarning):
                print(f'ddrsr: warning: {warning.message}', file=sys.stderr)
            else:
                warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    except DDRSRError as error:
        error_line(str(error))
        return 2

    def skipped(path, result):
        tqdm.write(f'ddrsr: skip {path}: {result.path} exists (pass --overwrite to replace it)', file=sys.stderr)

    bar = progress(files, 'upscaling', dynamic_ncols=True)
    try:
        upscale_files(upsampler, files, args.output, suffix=args.suffix, outscale=args.outscale, ext=args.ext,
                      overwrite=args.overwrite, stop=stop, tally=tally, on_error=error_line, on_skip=skipped,
                      progress=lambda items: bar)
    finally:
        bar.close()
    if tally.failed:
        print(f'ddrsr: {tally.failed} of {len(files)} input(s) failed', file=sys.stderr)
    return 1 if tally.failed else 0


def add_subcommands(subparsers):
    upscale = subparsers.add_parser('upscale', help='Upscale photos: the same flags as python inference.py.',
                                    description=f'{DESCRIPTION}\n\n{EPILOG}'.replace('python inference.py',
                                                                                     'ddrsr upscale'),
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(upscale)
    upscale.set_defaults(func=cmd_upscale)
