"""Join a Ray cluster or start a local one, with token authentication left on.

Ray 2.60 turns token authentication on for every new local cluster unless RAY_AUTH_MODE says otherwise:
`ray.init()` reads the token from RAY_AUTH_TOKEN, the file named by RAY_AUTH_TOKEN_PATH, or
~/.ray/auth_token, and writes a fresh one there if none exists. gbair keeps that on purpose: a local
cluster still listens on network ports, and without the token anyone who reaches them can run code as
this user. gbair never sets RAY_AUTH_MODE itself; an explicit RAY_AUTH_MODE=disabled is obeyed with a
warning. Joining an existing cluster with authentication needs RAY_AUTH_MODE=token and its token
(docs/distributed.md); a refusal is reported in those terms.
"""

from __future__ import annotations

import logging
import os
import traceback

import ray
from ray._private.node import Node  # the only handle on a node that failed to start (below)
from ray.exceptions import AuthenticationError

from gbair.distributed.config import RayConfig

logger = logging.getLogger(__name__)


class ClusterAccessError(RuntimeError):
    pass


class ClusterStartError(RuntimeError):
    pass


def connect(config: RayConfig) -> bool:
    """Make this process a Ray driver. True when it started a local cluster, which it should shut down."""
    if ray.is_initialized():
        return False
    try:
        if config.address is None:
            if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
                logger.warning("RAY_AUTH_MODE=disabled: the local Ray cluster accepts unauthenticated requests")
            _start_local_cluster(config)
            return True
        ray.init(address=config.address, log_to_driver=False)
        return False
    except (AuthenticationError, ConnectionError, RuntimeError) as error:
        if not _is_refused_token(error):
            raise
        raise ClusterAccessError(
            f"the Ray cluster at {config.address or 'this machine'} refused this driver's token. Set "
            "RAY_AUTH_MODE=token and give the cluster's token in RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH "
            "(or ~/.ray/auth_token)."
        ) from error


def _start_local_cluster(config: RayConfig, attempts: int = 2) -> None:
    for attempt in range(1, attempts + 1):
        try:
            # "local": without it Ray would join the cluster RAY_ADDRESS names, or one `ray start` left on this
            # machine, and then refuse num_cpus. Worker logs stay in the session's log folder instead of
            # burying the progress bars.
            ray.init(
                address="local",
                num_cpus=config.logical_cpus,
                resources=config.local_custom_resources,
                include_dashboard=config.include_dashboard,
                log_to_driver=False,
            )
            return
        except Exception as error:
            # Ray raises a bare Exception, with a fixed 30 s wait that no setting changes, when the new node's
            # raylet does not register in time: a busy moment on a small machine is enough.
            if "timed out during startup" not in str(error):
                raise
            _stop_unregistered_node(error)
            if attempt == attempts:
                raise ClusterStartError(
                    f"the local Ray cluster did not start: its node did not register within Ray's 30 s, {attempts} "
                    "times, which happens when the machine is busy. Start again once the load is lower, or join "
                    "a running cluster (ray.address)."
                ) from error
            logger.warning("the local Ray node did not register within Ray's 30 s; starting it once more")


def _stop_unregistered_node(error: BaseException) -> None:
    """Stop the processes of the node that timed out, so that a second start does not run beside them.

    ray.init drops the half-started node without stopping it; the only handle left is the `self` of its
    constructor's frame in the traceback."""
    for frame, _ in traceback.walk_tb(error.__traceback__):
        node = frame.f_locals.get("self")
        if isinstance(node, Node):
            node.kill_all_processes(check_alive=False, allow_graceful=False, wait=True)
            return


def _is_refused_token(error: BaseException | None) -> bool:
    """Ray 2.60 reports a refused token as a ConnectionError caused by a RuntimeError whose message holds
    the AuthenticationError's traceback as text, so the chain and the messages are both searched."""
    while error is not None:
        if isinstance(error, AuthenticationError) or "InvalidAuthToken" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False
