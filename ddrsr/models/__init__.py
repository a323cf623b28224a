"""Models, registered in basicsr's MODEL_REGISTRY on import."""
from .ddrsr_model import DDRSRModel  # noqa: F401
from .srgan_encoder_model import SRGANEncoderModel  # noqa: F401
