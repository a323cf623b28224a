"""Train from a BasicSR option file: a shim over ``ddrsr train`` (ddrsr/cli/train.py).

    python ddrsr/train.py -opt options/train_rrdb_ddr_x4_lite.yml --auto_resume
    torchrun --nproc_per_node=4 ddrsr/train.py -opt options/train_rrdb_ddr_x4.yml --launcher pytorch --auto_resume
"""
import os.path as osp
import sys

if __name__ == '__main__':
    # Run as a script, Python puts ddrsr/ itself first on sys.path. None of its modules shadows one that the
    # standard library or a dependency imports (its inspection package was named ddrsr/inspect/ until that hid
    # the standard library's inspect), and the repository root is what the import below needs.
    sys.path.insert(1, osp.dirname(osp.dirname(osp.abspath(__file__))))

    from ddrsr.cli.train import main  # the same as `ddrsr train`

    sys.exit(main())
