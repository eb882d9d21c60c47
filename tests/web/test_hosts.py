"""Which Host headers the web server answers (the policy alone; real requests: tests/faults)."""

from __future__ import annotations

import pytest

from onwatch.web.hosts import HostPolicy, host_of


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("127.0.0.1:8787", "127.0.0.1"),
        ("[::1]:8787", "::1"),
        ("[0:0::1]", "::1"),
        ("LocalHost.:80", "localhost"),
        ("onwatch.example.com", "onwatch.example.com"),
        ("", None),
        ("a b", None),
        ("[::g]:1", None),
        ("user@host", None),
        ("host:port", None),
    ],
)
def test_it_reads_the_host_of_a_header(header: str, host: str | None) -> None:
    assert host_of(header) == host


def test_a_loopback_server_answers_loopback_names_and_its_listen_host_only() -> None:
    policy = HostPolicy.build("127.0.0.1:8787")
    assert all(policy.allows(h) for h in ("localhost:1", "127.0.0.1", "127.9.9.9:8", "[::1]:80"))
    assert not any(
        policy.allows(h) for h in ("attacker.example", "localhost.attacker.example", "", None)
    )


def test_a_named_listen_host_is_answered() -> None:
    policy = HostPolicy.build("monitor-1.internal:8787")
    assert policy.allows("monitor-1.internal:8787")
    assert not policy.allows("monitor-2.internal:8787")


def test_a_wildcard_listen_answers_the_machines_addresses_but_no_name() -> None:
    policy = HostPolicy.build("0.0.0.0:8787", own_addresses=["10.1.2.3", "fe80::1"])
    assert policy.allows("10.1.2.3:8787")
    assert policy.allows("[fe80::1]:8787")
    assert not policy.allows("10.1.2.4:8787")
    assert not policy.allows("monitor-1:8787")


def test_a_domain_wildcard_matches_names_under_it_not_the_domain_or_lookalikes() -> None:
    policy = HostPolicy.build("127.0.0.1:8787", ["*.example.com"])
    assert policy.allows("a.example.com") and policy.allows("b.a.example.com:443")
    assert not any(policy.allows(h) for h in ("example.com", "badexample.com", "a.example.co"))


def test_addresses_are_compared_in_their_normal_form() -> None:
    policy = HostPolicy.build("[0:0:0:0:0:ffff:a00:5]:8787", ["2001:DB8:0::1"])
    assert policy.allows("[::ffff:10.0.0.5]:8787") and policy.allows("[2001:db8::1]")


def test_a_lone_star_answers_any_host() -> None:
    assert HostPolicy.build("127.0.0.1:8787", ["*"]).allows("anything.example")
