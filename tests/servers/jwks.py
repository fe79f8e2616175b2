"""An identity provider on loopback: it publishes its signing keys as a JWKS and
signs tokens with them; `rotate()` replaces the current key with a new one."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from tests.support.lifecycle import ThreadedServer

Algorithm = Literal["RS256", "ES256"]
ISSUER = "https://id.example.test/"
AUDIENCE = "export-gql"

_kids = itertools.count(1)


def new_key(algorithm: Algorithm) -> PrivateKeyTypes:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


class SigningKey:
    def __init__(self, algorithm: Algorithm) -> None:
        self.algorithm = algorithm
        self.kid = f"key-{next(_kids)}"
        self.private = new_key(algorithm)

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        public = json.loads(algorithm.to_jwk(self.private.public_key()))  # type: ignore[arg-type, union-attr]
        return {**public, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def sign(self, claims: dict[str, Any], **headers: Any) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid, **headers}
        )


def claims_for(subject: str, **overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims = {
        "sub": subject,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + timedelta(minutes=10),
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


class IdentityProvider(ThreadedServer):
    """Serves `GET /.well-known/jwks.json` with the keys it currently signs with."""

    def __init__(self, *algorithms: Algorithm) -> None:
        self.keys = [SigningKey(algorithm) for algorithm in algorithms or ("RS256",)]
        self.fetches = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.fetches += 1
                body = json.dumps({"keys": [key.jwk() for key in provider.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.jwks_url = f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
        super().__init__(server)

    @property
    def key(self) -> SigningKey:
        return self.keys[0]

    def token(self, subject: str, **claims: Any) -> str:
        return self.key.sign(claims_for(subject, **claims))

    def rotate(self) -> SigningKey:
        """Sign with a new key from now on; the old one is no longer published."""
        self.keys = [SigningKey(self.key.algorithm)]
        return self.key
