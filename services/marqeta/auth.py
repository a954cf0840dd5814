"""HTTP Basic credentials, as the processor sends and expects them."""

import base64


def basic_authorization(username: str, password: str) -> str:
    """The `Authorization` header value for HTTP Basic (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
