"""A DX instance's URL: its one spelling (the push destination's key), and why one cannot be
pushed to (plain http only for loopback test servers)."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dx_lsp_telemetry.settings.settings import SECTION
from dx_lsp_telemetry.util.shown import show


def _show(value: Any) -> str:
    """At most 80 characters of `value` however large or deep (Python's notation)."""
    return show(value, 80, python=True)


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_DEFAULT_PORTS = {"https": 443, "http": 80}


def normalize_instance_url(url: str) -> str:
    """The one spelling of a DX instance: scheme and host in lower case, no default port (443
    for https, 80 for http), no trailing slash. The path keeps its case. A URL that does not
    parse comes back as it is (`instance_url_problem` names it)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = parts.hostname  # lower case already
    try:
        port = parts.port
    except ValueError:
        return url
    if not host:
        return url
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), parts.query, parts.fragment))


def instance_url_problem(url: str) -> str | None:
    """Why `url` cannot be pushed to, or None. Plain http is for loopback test servers only."""
    reason = instance_url_fault(url)
    return None if reason is None else f"{SECTION}.instanceUrl: {reason}"


def instance_url_fault(url: str) -> str | None:
    """`instance_url_problem` without the setting's name (each front end names it its way)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"expected an https:// URL like https://acme.getdx.net, got {_show(url)}"
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return (
            "plain http:// is refused except for loopback hosts "
            f"(the token must not travel unencrypted): {_show(url)}"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        return f"must not carry a query, fragment or credentials: {_show(url)}"
    return None
