"""Architectures, registered in basicsr's ARCH_REGISTRY on import."""
from .srresnet_arch import SRResNet  # noqa: F401
from .ddr_encoder_arch import DDREncoder  # noqa: F401
from .stylemod_rrdbnet_arch import RRDBNetDDR, StyleMod  # noqa: F401
