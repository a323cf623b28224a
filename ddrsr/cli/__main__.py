"""``python -m ddrsr.cli <subcommand>``: the same as the ``ddrsr`` console command."""
import sys

from ddrsr.cli import main

sys.exit(main())
