"""The signed-in user's cookies and the CSRF check.

The bearer token lives in an HttpOnly, SameSite=Strict cookie: scripts cannot read it, other sites'
pages cannot send it, and it never appears in a URL. Every form that changes something carries the
session's CSRF token, which must equal the CSRF cookie (double submit); the cookie is signed with the
app's secret, so that a cookie planted from a sibling domain does not pass either."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from fastapi.responses import Response

TOKEN_COOKIE = "gbair_token"
CSRF_COOKIE = "gbair_csrf"
CSRF_FIELD = "csrf"


class CsrfRefused(Exception):
    """A state-changing request without the session's CSRF token."""


class Sessions:
    def __init__(self, secret: bytes):
        self._secret = secret

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._secret, nonce.encode(), hashlib.sha256).hexdigest()

    def new_csrf(self) -> str:
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self._sign(nonce)}"

    def csrf(self, request: Request) -> str | None:
        """The CSRF cookie's token when its signature holds."""
        value = request.cookies.get(CSRF_COOKIE, "")
        nonce, _, signature = value.partition(".")
        if nonce and hmac.compare_digest(signature, self._sign(nonce)):
            return value
        return None

    def check_csrf(self, request: Request, submitted: str | None) -> None:
        expected = self.csrf(request)
        if expected is None or not submitted or not hmac.compare_digest(expected, submitted):
            raise CsrfRefused()

    @staticmethod
    def token(request: Request) -> str | None:
        return request.cookies.get(TOKEN_COOKIE) or None

    @staticmethod
    def _secure(request: Request) -> bool:
        return request.url.scheme == "https"

    def set_csrf(self, request: Request, response: Response, value: str) -> None:
        response.set_cookie(CSRF_COOKIE, value, httponly=True, samesite="strict", secure=self._secure(request), path="/")

    def sign_in(self, request: Request, response: Response, token: str) -> None:
        """Keep the token, and start the session with a fresh CSRF token rather than the sign-in page's."""
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", secure=self._secure(request), path="/")
        self.set_csrf(request, response, self.new_csrf())

    @staticmethod
    def sign_out(response: Response) -> None:
        response.delete_cookie(TOKEN_COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
