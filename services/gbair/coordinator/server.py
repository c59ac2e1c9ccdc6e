"""Build and run the coordinator: the gRPC server (auth, size limits, optional TLS, health checking,
reflection), the Redis store and the job scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from urllib.parse import parse_qsl, urlencode, urlsplit

import grpc
import torch
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gbair.coordinator.auth import BearerTokenInterceptor, Tokens
from gbair.coordinator.backends import Backends
from gbair.coordinator.embedded_redis import EmbeddedRedis
from gbair.coordinator.jobs import JobRunner
from gbair.coordinator.reader import AsyncReader
from gbair.coordinator.retention import start_cleaning
from gbair.coordinator.redis_health import RedisWatchdog
from gbair.coordinator.scheduler import Scheduler
from gbair.coordinator.servicer import GbairServicer
from gbair.coordinator.settings import CoordinatorSettings
from gbair.coordinator.store import Store
from gbair.v1 import gbair_pb2, gbair_pb2_grpc

log = logging.getLogger(__name__)
SERVICE_NAME = gbair_pb2.DESCRIPTOR.services_by_name["Gbair"].full_name
GRACE_S = 5.0


async def serve(settings: CoordinatorSettings) -> None:
    """Run until SIGINT or SIGTERM. With no redis_url, a local redis-server is started (or found)."""
    if not settings.tokens:
        raise ValueError("no tokens configured: every call needs a bearer token (settings 'tokens' or GBAIR_TOKENS)")
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    # Each part is closed, last started first, however far start-up got: a Ray that fails to start must not
    # leave the embedded redis-server running.
    async with contextlib.AsyncExitStack() as started:
        redis_url = settings.redis_url
        if redis_url is None:
            embedded = EmbeddedRedis(settings.state_dir / "redis").start()
            started.callback(embedded.stop)
            redis_url = embedded.url
        store = Store.connect(redis_url, settings.redis_prefix, settings.lease_ttl_s, settings.redis_retries)
        started.callback(store.redis.close)
        tokens = Tokens(settings.tokens)
        server = grpc.aio.server(
            interceptors=[BearerTokenInterceptor(tokens)],
            maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
            options=[
                ("grpc.max_receive_message_length", settings.max_request_bytes),
                ("grpc.max_send_message_length", settings.max_request_bytes),
            ],
        )
        backends = Backends(settings)
        started.callback(backends.close)
        servicer = GbairServicer(settings, store, AsyncReader(redis_url, store, settings.redis_retries), tokens, backends)
        started.push_async_callback(servicer.close)
        gbair_pb2_grpc.add_GbairServicer_to_server(servicer, server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        if settings.tls_cert is not None:
            credentials = grpc.ssl_server_credentials([(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())])
            port = server.add_secure_port(settings.listen, credentials)
        else:
            port = server.add_insecure_port(settings.listen)
        if port == 0:
            raise RuntimeError(f"could not listen on {settings.listen}")

        async def report_health(redis_reachable: bool) -> None:
            status = health_pb2.HealthCheckResponse.SERVING if redis_reachable else health_pb2.HealthCheckResponse.NOT_SERVING
            for name in ("", SERVICE_NAME):
                await health_servicer.set(name, status)

        watchdog = RedisWatchdog(redis_url, report_health)
        started.push_async_callback(watchdog.close)
        runner = JobRunner(store, settings, threading.Event(), backends, watchdog)
        scheduler = Scheduler(runner, settings.max_concurrent_jobs, settings.lease_ttl_s)
        # The first sweep ends before any job runs or any call arrives.
        cleaning = await start_cleaning(store, settings)
        started.callback(cleaning.cancel)
        await report_health(True)
        watching = asyncio.create_task(watchdog.watch())
        started.callback(watching.cancel)
        await scheduler.start()
        started.push_async_callback(scheduler.stop)
        await server.start()
        # Calls in flight finish before the scheduler stops.
        started.push_async_callback(server.stop, GRACE_S)
        started.push_async_callback(health_servicer.enter_graceful_shutdown)
        log.info(
            "gbair coordinator on %s (port %d, %s, redis %s, coordinator id %s)",
            settings.listen, port, "TLS" if settings.tls_cert else "plaintext", without_password(redis_url), store.owner,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def without_password(url: str) -> str:
    """The URL for a log line: a password in it (user:password@ or ?password=) shows as ***."""
    parts = urlsplit(url)
    if parts.password is None and "password" not in dict(parse_qsl(parts.query)):
        return url
    if parts.password is not None:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1))
    query = [(key, "***" if key == "password" else value) for key, value in parse_qsl(parts.query)]
    return parts._replace(query=urlencode(query, safe="*")).geturl()
