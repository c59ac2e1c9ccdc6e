"""Bearer tokens: each token is a tenant. An interceptor turns away every call without a known token
(health checks and reflection excepted); handlers ask `Tokens.caller` who is calling."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from gbair.coordinator.errors import PermissionDenied, Unauthenticated
from gbair.coordinator.settings import TokenEntry

OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/", "/grpc.reflection.v1.ServerReflection/")


@dataclass(frozen=True)
class Caller:
    tenant: str
    read_only: bool

    def require_write(self, what: str) -> None:
        if self.read_only:
            raise PermissionDenied(f"the token of tenant '{self.tenant}' is read-only and may not {what}")


class Tokens:
    def __init__(self, entries: Sequence[TokenEntry]):
        self._entries = list(entries)

    def caller(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> Caller:
        values = [value for key, value in metadata or () if key == "authorization"]
        if not values:
            raise Unauthenticated("missing 'authorization: Bearer <token>' metadata")
        scheme, _, token = str(values[0]).partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the authorization metadata must be 'Bearer <token>'")
        # Compare with every entry in constant time, so timing does not tell how much of a token matched.
        found = None
        for entry in self._entries:
            if hmac.compare_digest(entry.token.encode(), token.strip().encode()):
                found = entry
        if found is None:
            raise Unauthenticated("unknown token")
        return Caller(found.tenant, found.read_only)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: Tokens):
        self._tokens = tokens

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_SERVICES):
            return handler
        try:
            self._tokens.caller(handler_call_details.invocation_metadata)
        except Unauthenticated as error:
            return _refusal(handler, error.message)
        return handler


def _refusal(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same kind as `handler` that ends the call with UNAUTHENTICATED."""

    async def refuse(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    make = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(handler.request_streaming, handler.response_streaming)]
    return make(refuse, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
