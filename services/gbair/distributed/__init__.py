"""G-BAIR on a Ray cluster: prompt-tuning on Ray Train and influence scoring on Ray Serve, behind core's
RoundBackend protocol. Nothing in gbair.core imports this package."""

from gbair.distributed.backend import RayBackend
from gbair.distributed.cluster import connect
from gbair.distributed.config import RayConfig, ServingConfig

__all__ = ["RayBackend", "RayConfig", "ServingConfig", "connect"]
