"""Signing keys of the local issuer: created on first use under `.data/`, rotated by adding a newer key.

The JWKS publishes every key in the directory, so tokens signed before a rotation stay valid until they expire;
new tokens are signed with the newest key. Each key's `kid` is its RFC 7638 thumbprint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

DEFAULT_DIR = Path(__file__).resolve().parents[2] / ".data" / "identity"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}


def _thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638: SHA-256 over the required members in lexicographic order, base64url without padding."""
    jwk = json.loads(RSAAlgorithm.to_jwk(public_key))
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


class KeyStore:
    """PEM files `<created-ns>.pem` in a private directory; the newest one signs."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or Path(os.environ.get("DEVSTACK_IDENTITY_DIR") or DEFAULT_DIR)
        self._loaded: dict[Path, SigningKey] = {}  # parsing a private key is slow; files never change

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob("*.pem")) if self.directory.is_dir() else []

    def keys(self) -> list[SigningKey]:
        if not self._files():
            self.rotate()
        for path in self._files():
            if path not in self._loaded:
                self._loaded[path] = _load(path)
        return [self._loaded[path] for path in self._files()]

    def current(self) -> SigningKey:
        return self.keys()[-1]

    def rotate(self) -> SigningKey:
        """Adds a new signing key (the old ones keep verifying tokens they signed)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path = self.directory / f"{time.time_ns():020d}.pem"
        partial = path.with_suffix(".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        partial.rename(path)  # atomic: a concurrent reader never sees half a key
        return SigningKey(_thumbprint(key.public_key()), key)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.keys()]}


def _load(path: Path) -> SigningKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} is not an RSA private key")
    return SigningKey(_thumbprint(key.public_key()), key)
