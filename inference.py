"""Upscale photos with a ddrsr model: a thin command line over ``ddrsr.inference.Upsampler``.

Examples:
    python inference.py                                   # inputs/ -> results/, default model
    python inference.py -i photo.jpg -o out -s 2 -t 256   # one file, x2 output, 256-pixel tiles
    python inference.py -i photos --backend torch --ext png   # the default is auto (onnxruntime on the CPU)
    python inference.py -i photo.jpg --strength 0.5       # restore half as strongly (keeps grain, bokeh)

Every failed input prints one line ``ddrsr: error: <file>: <what to do>`` on stderr; the others go on.
The exit status is 1 if any input failed (2 for a bad model or option, or an output folder that cannot
be written). Inputs are never overwritten, and existing outputs are skipped unless ``--overwrite``.
Files whose header claims more than ``--max_pixels`` pixels are refused before they are decoded.
Ctrl-C or SIGTERM abandons the file in progress (no partial output, no temporary file), prints how many
files were done and exits with 130 or 143; the same command then skips the finished outputs.
"""
import argparse
import os
import sys
import tempfile
import warnings

from ddrsr.errors import DDRSRError
from ddrsr.interruption import Interrupted, StopOnSignal
from ddrsr.inference.image_io import DEFAULT_MAX_PIXELS, READ_EXTENSIONS
from ddrsr.inference.upsampler import BACKENDS, DEFAULT_TILE_PAD, BackendFallbackWarning, Upsampler
from ddrsr.zoo import DEFAULT_MODEL, MODELS


def build_parser():
    parser = argparse.ArgumentParser(
        description='Blind super-resolution of photos with a DDR-guided RRDBNet.',
        epilog='examples:\n  python inference.py -i inputs -o results -n rrdb_ddr_real_x4_lite -t 256\n'
               '  python inference.py -i photo.jpg --strength 0.5   # restore half as strongly\n'
               '  ddrsr inspect photo.jpg                           # recommends a --strength',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-i', '--input', default='inputs', help='input image or folder (default: inputs)')
    parser.add_argument('-o', '--output', default='results', help='output folder (default: results)')
    parser.add_argument('-n', '--model_name', default=DEFAULT_MODEL,
                        help=f'model: {", ".join(MODELS)} (default: {DEFAULT_MODEL})')
    parser.add_argument('--model_path', default=None, help='checkpoint to use instead of the shipped weights')
    parser.add_argument('-s', '--outscale', type=float, default=None,
                        help='final upscaling factor (default: the model scale)')
    parser.add_argument('-t', '--tile', type=int, default=0,
                        help='tile size in input pixels; 0 (default) runs whole photos')
    parser.add_argument('--tile_pad', type=int, default=DEFAULT_TILE_PAD,
                        help=f'tile padding in input pixels (default: {DEFAULT_TILE_PAD})')
    parser.add_argument('--strength', type=float, default=1.0,
                        help='restoration strength from 0 to 1.5 (default: 1): the DDR embedding is moved from the '
                        'clean embedding (0: treat the photo as clean) to the photo\'s own (1) and beyond (1.5: '
                        'restore harder); DDR models only')
    parser.add_argument('--backend', choices=BACKENDS, default='auto',
                        help='inference engine (default: auto = onnxruntime on the CPU, exported once per weights '
                        'file and cached; torch on CUDA; torch with one warning if the export fails)')
    parser.add_argument('--onnx_cache', default=None,
                        help='folder for the exported ONNX pair (default: $DDRSR_CACHE or ~/.cache/ddrsr, '
                        'then onnx/<model>-<sha256>)')
    parser.add_argument('--fp32', action='store_true', help='use fp32 on CUDA (default there: fp16)')
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


def _pixel_count(text):
    """``--max_pixels`` value: an integer count, also written as a float such as 2e8."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a pixel count such as 200000000 or 2e8, got {text!r}') from None
    if not 0 <= value < float('inf'):  # also refuses nan
        raise argparse.ArgumentTypeError(f'expected a pixel count >= 0 (0: no limit), got {text!r}')
    return int(value)


def list_inputs(path):
    """The image files to process: ``path`` itself, or the images directly inside folder ``path``.

    A folder entry with an image extension is listed even when it is not a readable regular file (a
    broken link, a symlink loop, a named pipe): it then fails with its own error line instead of being
    skipped without a word. Folders are never listed.
    """
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if not n.startswith('.'))
    elif os.path.lexists(path):
        return [path]  # read_image says what is wrong with it (loop, pipe, broken link)
    else:
        raise DDRSRError(f'input {path!r} does not exist; pass an image or a folder with -i')
    files = [os.path.join(path, n) for n in names
             if n.lower().endswith(READ_EXTENSIONS) and not os.path.isdir(os.path.join(path, n))]
    if not files:
        raise DDRSRError(f'no images ({", ".join(READ_EXTENSIONS)}) in {path!r}; put photos there or pass -i')
    return files


def check_output_folder(folder):
    """Create ``folder`` if needed and prove it writable, so a read-only folder is one error, not one per file."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise DDRSRError(f'cannot write to the output folder {folder!r} ({error.strerror or error}); '
                         'choose a writable folder with -o') from None


def output_name(in_path, out_dir, suffix):
    stem, ext = os.path.splitext(os.path.basename(in_path))
    return os.path.join(out_dir, f'{stem}_{suffix}{ext}' if suffix else f'{stem}{ext}')


def _error(message, path=None):
    """One ``ddrsr: error:`` line on stderr (through tqdm, so it does not land on the progress bar's line)."""
    from tqdm import tqdm

    prefix = '' if path is None or message.startswith(str(path)) else f'{path}: '
    tqdm.write(f'ddrsr: error: {prefix}{message}', file=sys.stderr)


def main(argv=None):
    """Run the command line; returns the exit status (130 after Ctrl-C, 143 after SIGTERM)."""
    args = build_parser().parse_args(argv)
    tally = {'files': 0, 'written': 0, 'skipped': 0, 'failed': 0}
    try:
        with StopOnSignal() as stop:
            return upscale_all(args, stop, tally)
    except Interrupted as interrupted:
        done = tally['written'] + tally['skipped'] + tally['failed']
        print(f'ddrsr: interrupted by {interrupted.name} after {done} of {tally["files"]} file(s) '
              f'({tally["written"]} written, {tally["skipped"]} skipped, {tally["failed"]} failed); the file in '
              'progress left no output. Run the same command again to do the rest', file=sys.stderr)
        return interrupted.exit_status


def upscale_all(args, stop, tally):
    """Upscale every input of ``args``, counting in ``tally``; ``stop`` (a StopOnSignal) ends it between files."""
    from tqdm import tqdm

    try:
        files = list_inputs(args.input)
        tally['files'] = len(files)
        check_output_folder(args.output)
        with warnings.catch_warnings(record=True) as caught:  # each as one line, not Python's two
            warnings.simplefilter('always', BackendFallbackWarning)
            upsampler = Upsampler(args.model_name, weights=args.model_path, device=args.device, tile=args.tile,
                                  tile_pad=args.tile_pad, half=False if args.fp32 else None, backend=args.backend,
                                  onnx_dir=args.onnx_cache, max_pixels=args.max_pixels, strength=args.strength)
        for warning in caught:
            if issubclass(warning.category, BackendFallbackWarning):
                print(f'ddrsr: warning: {warning.message}', file=sys.stderr)
            else:
                warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    except DDRSRError as error:
        _error(str(error))
        return 2
    bar = tqdm(files, desc='upscaling', unit='img', file=sys.stderr, dynamic_ncols=True)
    try:
        for path in bar:
            try:
                result = upsampler.upscale_file(path, output_name(path, args.output, args.suffix),
                                                outscale=args.outscale, ext=args.ext, overwrite=args.overwrite)
                if result.skipped:
                    tqdm.write(f'ddrsr: skip {path}: {result.path} exists (pass --overwrite to replace it)',
                               file=sys.stderr)
                tally['skipped' if result.skipped else 'written'] += 1
            except DDRSRError as error:
                tally['failed'] += 1
                _error(str(error), path)
            except MemoryError:
                tally['failed'] += 1
                _error('out of memory; pass a tile size, e.g. -t 256', path)
            except OSError as error:  # e.g. the disk filled up while writing
                tally['failed'] += 1
                _error(f'{error.strerror or error}; check that the output folder is writable and has free '
                       'space', path)
            except Exception as error:  # one bad photo must not stop the rest; no traceback for users
                tally['failed'] += 1
                hint = 'pass a smaller tile, e.g. -t 256' if 'out of memory' in str(error).lower() else \
                    'this looks like a bug; please report it with the file'
                _error(f'{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""}; {hint}', path)
            stop.raise_if_requested()  # a signal held while an output was written
    finally:
        bar.close()
    if tally['failed']:
        print(f'ddrsr: {tally["failed"]} of {len(files)} input(s) failed', file=sys.stderr)
    return 1 if tally['failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
