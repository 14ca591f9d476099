"""The SSRF guard: the refusal matrix, address pinning, and the allow-list."""

from __future__ import annotations

import ipaddress

import pytest

from core.errors import FetchBlocked, HostUnresolved
from core.netguard import IPAddress, check_url

REFUSED = [
    "http://127.0.0.1/hook",
    "http://localhost:8080/hook",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.1.10/",
    "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    "http://[2002:c0a8:101::1]/",  # 6to4 of 192.168.1.1
    "http://2130706433/",  # decimal 127.0.0.1
    "http://017700000001/",  # octal
    "http://0x7f.1/",  # hex, short form
    "http://0x7f000001/",
    "http://127.1/",
    "https://127.0.0.1:8443/",
]
BAD_FORM = [
    "ftp://93.184.215.14/file",
    "file:///etc/passwd",
    "gopher://93.184.215.14/",
    "http://user:pass@93.184.215.14/",
    "http://user@93.184.215.14/",
    "http:///no-host",
    "http://93.184.215.14:99999/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_non_public_addresses_are_refused(url: str) -> None:
    """Loopback, private, link-local, CGNAT, multicast and embedded-v4 forms are fetch_blocked."""
    with pytest.raises(FetchBlocked) as caught:
        check_url(url)
    assert caught.value.code == "fetch_blocked"
    assert caught.value.http_status == 422
    assert "not a public address" in caught.value.message


@pytest.mark.parametrize("url", BAD_FORM)
def test_other_schemes_credentials_and_bad_urls_are_refused(url: str) -> None:
    """Only http(s) without user:password, with a host and a valid port, passes."""
    with pytest.raises(FetchBlocked):
        check_url(url)


def _no_dns(host: str, port: int) -> list[IPAddress]:
    raise AssertionError(f"{host} was looked up: literals need no DNS")


def test_a_public_literal_is_pinned_without_dns() -> None:
    """A public IP literal passes without any lookup, and the request goes to exactly that IP."""
    target = check_url("https://93.184.215.14:8443/hooks/in?x=1", resolver=_no_dns)
    assert target.address == "93.184.215.14"
    assert target.connect_url == "https://93.184.215.14:8443/hooks/in?x=1"
    assert target.host_header == "93.184.215.14:8443"
    assert target.extensions == {"sni_hostname": "93.184.215.14"}
    assert check_url("http://[2606:4700::1111]/", resolver=_no_dns).address == "2606:4700::1111"


def test_a_name_is_pinned_to_its_resolved_address() -> None:
    """A host name connects to the one address it resolved to; Host and SNI keep the name."""
    looked_up: list[str] = []

    def zone(host: str, port: int) -> list[IPAddress]:
        looked_up.append(host)
        return [ipaddress.ip_address("93.184.215.14")]

    target = check_url("https://hooks.example.com/in", resolver=zone)
    assert looked_up == ["hooks.example.com"]  # resolved once
    assert target.connect_url == "https://93.184.215.14:443/in"
    assert target.host_header == "hooks.example.com"
    assert target.extensions == {"sni_hostname": "hooks.example.com"}
    plain = check_url("http://hooks.example.com:8080/in", resolver=zone)
    assert plain.connect_url == "http://93.184.215.14:8080/in"
    assert plain.host_header == "hooks.example.com:8080"
    assert plain.extensions == {}
    local = check_url("https://localhost:9443/x", ["127.0.0.1/32"])  # the real resolver
    assert (local.address, local.host_header) == ("127.0.0.1", "localhost:9443")


def test_one_internal_answer_among_public_ones_refuses() -> None:
    """A name that resolves to a public and a private address is refused (any, not first)."""

    def split_zone(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.0.0.5")]

    with pytest.raises(FetchBlocked, match=r"10\.0\.0\.5"):
        check_url("http://rebind.example.com/", resolver=split_zone)


def test_an_unresolvable_host_is_a_retryable_refusal() -> None:
    """A name that does not resolve is fetch_blocked at submission and retryable at delivery."""
    with pytest.raises(HostUnresolved) as caught:
        check_url("http://does-not-exist.invalid/")
    assert caught.value.code == "fetch_blocked" and caught.value.retryable


def test_the_allow_list_lets_named_networks_through() -> None:
    """127.0.0.1/32 allow-listed: loopback v4 (and its mapped v6 form) pass, ::1 does not."""
    allow = ["127.0.0.1/32"]
    assert check_url("http://127.0.0.1:9000/h", allow).connect_url == "http://127.0.0.1:9000/h"
    assert check_url("http://[::ffff:127.0.0.1]:9000/h", allow).address == "::ffff:7f00:1"
    for url in ("http://[::1]/", "http://127.0.0.2/", "http://10.0.0.1/"):
        with pytest.raises(FetchBlocked):
            check_url(url, allow)
