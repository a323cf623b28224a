"""Data: the kornia degradation pipeline and datasets registered in basicsr's DATASET_REGISTRY."""
from .distill_pool import DistillPoolDataset  # noqa: F401
from .hr_patch_dataset import HRPatchDataset  # noqa: F401
from .spec_paired_dataset import SpecPairedDataset  # noqa: F401
