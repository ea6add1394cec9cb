"""OpenID Connect sign-in: the authorization code flow with PKCE, as a relying party.

Authlib does the protocol's parts: the provider metadata and its checks
(``OpenIDProviderMetadata``), the authorization URL (``prepare_grant_uri``), PKCE's S256
challenge and the ID token's claims (``CodeIDToken``: ``iss``, ``aud``, ``exp``, ``iat``,
``nonce``, ``azp``). joserfc, Authlib's own JOSE library, checks the ID token's signature
against the provider's JWKS. The requests go through an injected ``httpx.AsyncClient``
(tests point it at a loopback provider). Discovery and keys are cached for an hour; an ID
token signed with a key id the cache does not know refetches the keys once (key rotation).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from enrichment_app.errors import EnrichmentAppError

CACHE_SECONDS = 3600.0
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]
LEEWAY_SECONDS = 60


class OidcError(EnrichmentAppError):
    """The provider could not be reached, or answered something we must not trust."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says signed in."""

    issuer: str
    subject: str
    email: str
    email_verified: bool
    name: str


@dataclass
class OidcClient:
    http: httpx.AsyncClient
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: str = "openid email profile"
    _metadata: dict[str, Any] | None = field(default=None, init=False)
    _keys: KeySet | None = field(default=None, init=False)
    _fetched_at: float = field(default=0.0, init=False)

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = await self.http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise OidcError(f"The sign-in provider's {what} could not be read ({exc!r}).") from exc
        if response.status_code != 200:
            raise OidcError(f"The sign-in provider's {what} answered {response.status_code}.")
        try:
            body = response.json()
        except ValueError as exc:
            raise OidcError(f"The sign-in provider's {what} is not JSON.") from exc
        if not isinstance(body, dict):
            raise OidcError(f"The sign-in provider's {what} is not a JSON object.")
        return body

    async def metadata(self) -> dict[str, Any]:
        """The provider's configuration (``/.well-known/openid-configuration``), checked."""
        if self._metadata is None or time.monotonic() - self._fetched_at > CACHE_SECONDS:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            data = await self._get_json(url, "configuration")
            metadata = OpenIDProviderMetadata(data)
            try:
                metadata.validate()
            except ValueError as exc:
                raise OidcError(f"The sign-in provider's configuration is invalid: {exc}") from exc
            if data.get("issuer") != self.issuer:
                raise OidcError(
                    "The sign-in provider's configuration names another issuer "
                    f"({str(data.get('issuer'))[:200]!r}, expected {self.issuer!r})."
                )
            self._metadata, self._keys, self._fetched_at = dict(data), None, time.monotonic()
        return self._metadata

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        metadata = await self.metadata()
        if self._keys is None or refresh:
            data = await self._get_json(str(metadata["jwks_uri"]), "keys (JWKS)")
            try:
                self._keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
            except (JoseError, ValueError, KeyError, TypeError) as exc:
                raise OidcError("The sign-in provider's keys (JWKS) cannot be read.") from exc
        return self._keys

    async def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        metadata = await self.metadata()
        url: str = prepare_grant_uri(
            metadata["authorization_endpoint"],
            self.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=self.scopes,
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(code_verifier),
            code_challenge_method="S256",
        )
        return url

    async def exchange(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str, now: float
    ) -> Identity:
        """Trade the code for tokens and return the verified identity in the ID token."""
        metadata = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        headers = {"Accept": "application/json"}
        methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if self.client_secret is None:
            form["client_id"] = self.client_id
        elif "client_secret_basic" in methods:
            pair = f"{_form(self.client_id)}:{_form(self.client_secret)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        else:
            form |= {"client_id": self.client_id, "client_secret": self.client_secret}
        try:
            response = await self.http.post(metadata["token_endpoint"], data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise OidcError(f"The sign-in provider could not be reached ({exc!r}).") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            reason = (
                body.get("error_description") or body.get("error")
                if isinstance(body, dict)
                else None
            )
            raise OidcError(
                f"The sign-in provider refused the code ({response.status_code}"
                f"{': ' + str(reason)[:200] if reason else ''})."
            )
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("The sign-in provider sent no ID token.")
        return await self._verify(id_token, nonce=nonce, now=now)

    async def _verify(self, id_token: str, *, nonce: str, now: float) -> Identity:
        keys = await self._key_set()
        try:
            try:
                token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
            except JoseError:
                token = jwt.decode(
                    id_token, await self._key_set(refresh=True), algorithms=ALGORITHMS
                )
            claims = CodeIDToken(
                token.claims,
                token.header,
                options={
                    "iss": {"essential": True, "value": self.issuer},
                    "aud": {"essential": True, "value": self.client_id},
                },
                params={"nonce": nonce, "client_id": self.client_id},
            )
            claims.validate(now=int(now), leeway=LEEWAY_SECONDS)
        except (JoseError, ValueError) as exc:
            raise OidcError(f"The ID token was refused: {exc}") from exc
        email = claims.get("email")
        return Identity(
            issuer=self.issuer,
            subject=str(claims["sub"]),
            email=email if isinstance(email, str) else "",
            email_verified=claims.get("email_verified") is True,
            name=str(claims.get("name") or ""),
        )


def _form(value: str) -> str:
    """RFC 6749 §2.3.1: the client id and secret are form-encoded before Basic auth."""
    return quote_plus(value)
