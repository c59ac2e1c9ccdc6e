"""Failures a caller can act on, each with the gRPC status code it becomes."""

from __future__ import annotations

import grpc
import redis


class ServiceError(Exception):
    code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem

    def __reduce__(self):
        # Pickle rebuilds an exception from its args, which hold the joined message only.
        return type(self), (self.field, self.problem)


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(ServiceError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(ServiceError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


REDIS_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)
"""What Redis raises while it is down, restarting or still loading its data (BusyLoadingError is a
ConnectionError): the call may succeed later, so callers see UNAVAILABLE and jobs wait."""


class LeaseLost(Exception):
    """Another coordinator took over this job after this one's lease expired: stop without writing."""
