"""Which upstream calls go through a forward proxy, as government networks often require.

`HUB_UPSTREAM_PROXY` names one proxy for every upstream; unset, the standard variables apply as
httpx and curl read them: `HTTP_PROXY` for http:// upstreams, `HTTPS_PROXY` for https:// ones,
`ALL_PROXY` for either (the lower-case spellings win, and a proxy without a scheme is http://).
`NO_PROXY` lists the upstreams that bypass the proxy either way: `*` (all), a host name (that
host and its subdomains; `.example.gov.vn` the subdomains only), an IP address, a network in
CIDR form (`10.0.0.0/8`, which httpx itself does not read), each optionally with `:port`.

The registry (hub/core/registry.py) gives a proxied upstream httpx's pool with httpx's own
proxy support (plain requests to an http:// upstream, CONNECT tunnels to an https:// one) in
place of the lean client of hub/core/http1.py, which speaks only straight to upstream.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["PROXY_SCHEMES", "ProxyRules", "masked"]

#: The proxy URL schemes httpx speaks with the dependencies the hub declares (SOCKS needs
#: httpx's `socks` extra).
PROXY_SCHEMES = ("http", "https")


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()  # str.isdigit alone takes any Unicode digit


def masked(url: str) -> str:
    """A proxy URL fit for a log line: any user name and password replaced by `***`."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def proxy_url(value: str, *, origin: str) -> str:
    """A proxy URL as httpx takes it (`proxy:3128` means `http://proxy:3128`), or ValueError
    naming where it came from (never its credentials)."""
    url = value.strip() if "://" in value else f"http://{value.strip()}"
    parts = urlsplit(url)
    if parts.scheme.lower() not in PROXY_SCHEMES or not parts.hostname:
        raise ValueError(f"{origin} must be an http:// proxy URL, not {masked(url)!r}")
    return url


def environment_proxies(environ: Mapping[str, str]) -> dict[str, str]:
    """`<scheme>_proxy` variables by scheme ("http", "https", "all", "no"), read as urllib
    reads them: the lower-case spelling wins (set empty, it unsets the other), and under CGI
    (REQUEST_METHOD set) an upper-case HTTP_PROXY is a request header a client chose
    (httpoxy), so only http_proxy counts."""
    found: dict[str, str] = {}
    for name in sorted(environ, key=str.islower):  # other spellings first, lower-case last
        if not name.lower().endswith("_proxy"):
            continue
        scheme, value = name[: -len("_proxy")].lower(), environ[name].strip()
        if not name.islower():
            cgi = scheme == "http" and "REQUEST_METHOD" in environ
            if value and not cgi:
                found[scheme] = value
        elif value:
            found[scheme] = value
        else:
            found.pop(scheme, None)
    return found


@dataclass(frozen=True)
class _Exempt:
    """One NO_PROXY entry."""

    host: str  # lower-case; "" for a network
    port: int | None = None
    subdomains_only: bool = False
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None

    @classmethod
    def parse(cls, entry: str) -> _Exempt:
        entry = entry.strip().lower()
        if "://" in entry:
            entry = urlsplit(entry).netloc
        try:
            network = ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            pass
        else:
            return cls("", network=network)
        host, port = entry, None
        if entry.startswith("["):  # [::1]:8080
            host, _, rest = entry[1:].partition("]")
            port = int(rest[1:]) if rest[:1] == ":" and _ascii_digits(rest[1:]) else None
        elif entry.count(":") == 1 and _ascii_digits(entry.rpartition(":")[2]):
            host, port = entry.rpartition(":")[0], int(entry.rpartition(":")[2])
        subdomains_only = host.startswith(".") or host.startswith("*.")
        return cls(host.lstrip("*").lstrip("."), port, subdomains_only)

    def covers(self, host: str, port: int) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.network is not None:
            try:
                return ipaddress.ip_address(host) in self.network
            except ValueError:
                return False
        if host == self.host:
            return not self.subdomains_only
        return host.endswith("." + self.host)


@dataclass(frozen=True)
class ProxyRules:
    """The forward proxy of each upstream URL: `for_url(url)` is its proxy URL or None."""

    proxies: Mapping[str, str]  # by upstream scheme, "all" for any
    exempt: tuple[_Exempt, ...] = ()
    exempt_all: bool = False

    @classmethod
    def build(
        cls, upstream_proxy: str | None, environ: Mapping[str, str] | None = None
    ) -> ProxyRules:
        """The rules of HUB_UPSTREAM_PROXY (`upstream_proxy`), else of the environment's
        proxy variables; NO_PROXY applies to both. Raises ValueError on a proxy URL httpx
        cannot use."""
        found = environment_proxies(os.environ if environ is None else environ)
        if upstream_proxy:
            proxies = {"all": proxy_url(upstream_proxy, origin="HUB_UPSTREAM_PROXY")}
        else:
            proxies = {
                scheme: proxy_url(found[scheme], origin=f"{scheme.upper()}_PROXY")
                for scheme in ("http", "https", "all")
                if scheme in found
            }
        entries = [e.strip() for e in found.get("no", "").split(",") if e.strip()]
        return cls(proxies, tuple(_Exempt.parse(e) for e in entries if e != "*"), "*" in entries)

    def for_url(self, url: str) -> str | None:
        """The proxy an upstream URL goes through, or None for a direct connection."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        proxy = self.proxies.get(scheme) or self.proxies.get("all")
        if proxy is None or self.exempt_all or not parts.hostname:
            return None
        port = parts.port or (443 if scheme == "https" else 80)
        host = parts.hostname.lower().rstrip(".")
        if any(entry.covers(host, port) for entry in self.exempt):
            return None
        return proxy
