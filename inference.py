"""Upscale photos with a ddrsr model: ``python inference.py -h``; the same as ``ddrsr upscale`` (ddrsr/cli/upscale.py)."""
import sys

from ddrsr.cli.upscale import main

if __name__ == '__main__':
    sys.exit(main())
