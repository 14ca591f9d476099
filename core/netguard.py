"""The SSRF guard of every outbound request (webhooks now, `url` inputs later).

`check_url` accepts http(s) URLs without credentials, resolves the host once, and refuses the URL
if any address it resolves to is not public (loopback, private, link-local and the cloud metadata
address, CGNAT, multicast, unspecified, reserved, and IPv6 forms that embed such an IPv4 address:
IPv4-mapped, 6to4, NAT64, Teredo), unless the address lies in an allow-listed network. It returns
the address to connect to, so a second DNS answer cannot swap in another host (DNS rebinding):
the request goes to that IP with the original Host header, and for https the original name is
kept for SNI and certificate checks through httpcore's `sni_hostname` request extension.
Redirects are never followed by callers; a 3xx is a failed attempt.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.errors import FetchBlocked, HostUnresolved

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Not covered by `is_global` on every Python version, or globally routed yet embedding an IPv4.
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


@dataclass(frozen=True)
class Target:
    """A checked URL and the one address the request must connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str
    path: str

    @property
    def connect_url(self) -> str:
        """The URL with the host replaced by the pinned address."""
        ip = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{ip}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        """The Host header the server expects (the name of the original URL)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def extensions(self) -> dict[str, str]:
        """httpx request extensions: TLS keeps the original name for SNI and certificates."""
        return {"sni_hostname": self.host} if self.scheme == "https" else {}


def parse_networks(networks: Iterable[str | IPNetwork]) -> list[IPNetwork]:
    """CIDR strings (or networks) as networks; a bare address is a /32 or /128."""
    return [
        n if not isinstance(n, str) else ipaddress.ip_network(n, strict=False) for n in networks
    ]


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address, obfuscated in the packet, plain here
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress) -> str | None:
    """Why `address` is not a public address we may reach, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_v4(address)
        if embedded is not None:
            reason = refusal(embedded)
            return f"it embeds {embedded}, which is {reason}" if reason else None
    checks = [
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local (including cloud metadata)"),
        (address.is_multicast, "multicast"),
        (address in _CGNAT, "carrier-grade NAT (100.64.0.0/10)"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "not globally routable"),
    ]
    return next((reason for hit, reason in checks if hit), None)


def _allowed(address: IPAddress, allow: list[IPNetwork]) -> bool:
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    return any(a.version == n.version and a in n for a in candidates for n in allow)


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of `host` from the system resolver (numeric forms of IPv4 included)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise HostUnresolved(f"host {host!r} does not resolve: {exc}") from None
    addresses: list[IPAddress] = []
    for info in infos:
        # The scope of a link-local IPv6 address ("fe80::1%eth0") is not part of the address.
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise HostUnresolved(f"host {host!r} has no address")
    return addresses


def check_url(
    url: str,
    allow: Iterable[str | IPNetwork] = (),
    resolver: Callable[[str, int], list[IPAddress]] = resolve,
) -> Target:
    """Check `url` against the SSRF rules and pin its address; raises FetchBlocked if refused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchBlocked(f"{url!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise FetchBlocked(f"only http and https URLs are allowed, not {scheme or 'none'!r}")
    if parts.username is not None or parts.password is not None:
        raise FetchBlocked("URLs with a user name or password are not allowed")
    host = parts.hostname
    if not host:
        raise FetchBlocked(f"{url!r} has no host")
    port = port or _DEFAULT_PORTS[scheme]
    networks = parse_networks(allow)
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]  # a literal needs no DNS
    except ValueError:
        addresses = resolver(host, port)  # also turns 2130706433, 0x7f.1, 0177.1 into addresses
    for address in addresses:
        reason = refusal(address)
        if reason is not None and not _allowed(address, networks):
            shown = host if host == str(address) else f"{host} ({address})"
            raise FetchBlocked(f"{shown} is not a public address: {reason}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(url, scheme, host, port, str(addresses[0]), path)
