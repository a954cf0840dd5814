"""Password hashing (argon2id) and the rules a new password must meet."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

PASSWORD_LENGTH_MIN = 12
PASSWORD_LENGTH_MAX = 256

_hasher = PasswordHasher()

# Verifying against this when the account does not exist takes as long as a real check,
# so the answer's timing does not tell which addresses have accounts.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """Why `password` cannot be used, or None."""
    if len(password) < PASSWORD_LENGTH_MIN:
        return f"Use at least {PASSWORD_LENGTH_MIN} characters."
    if len(password) > PASSWORD_LENGTH_MAX:
        return f"Use at most {PASSWORD_LENGTH_MAX} characters."
    return None
