"""How OAuth client secrets are stored: one salted HMAC-SHA256, not a password hash.

Django's default hasher (PBKDF2, 1,000,000 iterations) stretches a key so that a guessable
password resists an offline search. A client secret is not guessable: DOT generates 128
characters from a 62-letter alphabet (over 700 bits), so no amount of stretching adds anything,
and every stretched check cost the web process 0.26 s of CPU: a token request with a known client
id and any secret did, so a few dozen of them stalled every API call. DOT hashes and checks
secrets through Django's hasher registry (its `CLIENT_SECRET_HASHER` setting names the hasher),
so this hasher is registered after Django's own, which keep hashing user passwords.
"""

import hashlib
import hmac
from typing import Any

from django.contrib.auth.hashers import BasePasswordHasher, mask_hash, must_update_salt
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext_noop as _

# Shorter than this is not a generated secret, and could be a password: refused, so this hasher
# can never store (or vouch for) anything a person might have chosen.
MIN_SECRET_LENGTH = 32


class ClientSecretHasher(BasePasswordHasher):
    """One salted HMAC-SHA256 of a long random client secret (DOT's CLIENT_SECRET_HASHER)."""

    algorithm = "client_secret_hmac_sha256"

    def encode(self, password: str, salt: str) -> str:
        self._check_encode_args(password, salt)  # type: ignore[attr-defined]  # Django's, unstubbed
        if len(password) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"client secrets must be at least {MIN_SECRET_LENGTH} characters of random text"
            )
        digest = hmac.new(salt.encode(), password.encode(), hashlib.sha256).hexdigest()
        return f"{self.algorithm}${salt}${digest}"

    def decode(self, encoded: str) -> dict[str, Any]:
        algorithm, salt, digest = encoded.split("$", 2)
        assert algorithm == self.algorithm  # noqa: S101 - Django's hashers check it the same way
        return {"algorithm": algorithm, "hash": digest, "salt": salt}

    def verify(self, password: str, encoded: str) -> bool:
        if len(password) < MIN_SECRET_LENGTH:
            return False
        decoded = self.decode(encoded)
        return constant_time_compare(encoded, self.encode(password, decoded["salt"]))

    def safe_summary(self, encoded: str) -> dict[Any, Any]:
        decoded = self.decode(encoded)
        return {
            _("algorithm"): decoded["algorithm"],
            _("salt"): mask_hash(decoded["salt"], show=2),
            _("hash"): mask_hash(decoded["hash"]),
        }

    def must_update(self, encoded: str) -> bool:
        return must_update_salt(self.decode(encoded)["salt"], self.salt_entropy)

    def harden_runtime(self, password: str, encoded: str) -> None:
        return  # One HMAC costs the same for every secret: nothing to even out.
