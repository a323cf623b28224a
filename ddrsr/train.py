"""Train from a BasicSR option file: a shim over ``ddrsr train`` (ddrsr/cli/train.py).

    python ddrsr/train.py -opt options/train_rrdb_ddr_x4_lite.yml --auto_resume
    torchrun --nproc_per_node=4 ddrsr/train.py -opt options/train_rrdb_ddr_x4.yml --launcher pytorch --auto_resume
"""
import os.path as osp
import sys

if __name__ == '__main__':
    # Run as a script, Python puts ddrsr/ itself first on sys.path, where its subpackages would shadow
    # top-level modules; put the repository root there instead.
    here = osp.dirname(osp.abspath(__file__))
    sys.path = [p for p in sys.path if osp.abspath(p or '.') != here]
    sys.path.insert(0, osp.dirname(here))

    from ddrsr.cli.train import main  # the same as `ddrsr train`

    sys.exit(main())
