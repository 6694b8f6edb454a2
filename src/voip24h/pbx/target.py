"""Where the PBX's manager interface is: ``ami://user:secret@host:5038`` (``amis://`` for TLS)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

DEFAULT_PORT = {"ami": 5038, "amis": 5039}


@dataclass(frozen=True)
class AmiTarget:
    """A parsed ``ami_url``; its repr and :meth:`masked` never show the secret."""

    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    tls: bool = False

    def masked(self) -> str:
        """The URL with the secret replaced by ``***``, safe to log."""
        scheme = "amis" if self.tls else "ami"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{self.username}:***@{host}:{self.port}"

    def __str__(self) -> str:
        return self.masked()


def parse_ami_url(url: str) -> AmiTarget:
    """An :class:`AmiTarget` from ``ami://user:secret@host[:port]``; ValueError otherwise.

    User and secret may be percent-encoded (a secret holding ``@`` or ``/``). The error
    messages never repeat the secret.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORT:
        raise ValueError("ami_url must start with ami:// or amis://")
    if not parts.hostname:
        raise ValueError("ami_url has no host (ami://user:secret@host:5038)")
    if not parts.username or parts.password is None:
        raise ValueError("ami_url needs a user and a secret (ami://user:secret@host:5038)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("ami_url takes no path, query or fragment")
    try:
        port = parts.port or DEFAULT_PORT[scheme]
    except ValueError:
        raise ValueError("ami_url has a port that is not a number from 1 to 65535") from None
    return AmiTarget(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username),
        secret=unquote(parts.password),
        tls=scheme == "amis",
    )
