"""G-BAIR on a Ray cluster: prompt-tuning on Ray Train and influence scoring on Ray Serve, behind core's
RoundBackend protocol. Nothing in gbair.core imports this package."""

from gbair.distributed.backend import RayBackend, ray_backend
from gbair.distributed.cluster import ClusterAccessError, connect
from gbair.distributed.config import RayConfig, ServingConfig

__all__ = ["ClusterAccessError", "RayBackend", "RayConfig", "ServingConfig", "connect", "ray_backend"]
