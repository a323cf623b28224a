#!/usr/bin/env python
"""Write the bad-input corpus that inference must survive (default: tests/data/bad/).

    python scripts/make_bad_inputs.py [FOLDER]
    python inference.py -i tests/data/bad -o /tmp/bad_out -t 16   # each file: an output or one error line

Everything is generated, so no binary is committed. The corpus holds broken files (empty, truncated,
text, a "decompression bomb" whose header claims 100000x100000, a symlink loop, a named pipe), odd but
valid images (1x1, 3x3, grey, grey+alpha, RGBA, palette, CMYK JPEG, 16-bit RGB and grey PNG, 32-bit
float TIFF, EXIF-rotated JPEG, a name with spaces and non-ASCII letters) and two output folders:
``readonly_out/`` (mode 0555) and ``existing_out/`` (already holds ``rgba_out.png``). What each case
must give is checked in ``tests/test_bad_inputs.py``. Prints the case names as JSON.

    python scripts/make_bad_inputs.py --fuzz 300 [--seed 0] FOLDER

writes instead a seeded fuzz corpus: small valid PNG, JPEG, WebP and TIFF files, each then damaged by bit
flips, a truncation or a header edit (checked in ``tests/test_fuzz_inputs.py``). Both corpora are written by
``ddrsr.testing.bad_inputs`` (``make_bad_inputs``, ``make_fuzz_corpus``).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from ddrsr.testing.bad_inputs import make_bad_inputs, make_fuzz_corpus  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests', 'data', 'bad')
    parser.add_argument('folder', nargs='?', default=default,
                        help='where to write the corpus (default: tests/data/bad)')
    parser.add_argument('--fuzz', type=int, default=0, metavar='N', help='write N mutated images instead')
    parser.add_argument('--seed', type=int, default=0, help='seed of the fuzz corpus (default: 0)')
    args = add_hidden_aliases(parser).parse_args(argv)
    cases = make_fuzz_corpus(args.folder, args.fuzz, args.seed) if args.fuzz else make_bad_inputs(args.folder)
    print(json.dumps({'folder': args.folder, 'cases': cases}, ensure_ascii=False, indent=1))


if __name__ == '__main__':
    sys.exit(main())
