"""Which releases are due: PEP 440 order, yanked and pre-releases left out, min_age waited out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from onwatch.upstream.releases import Release, latest, line_name, newer_than, same_line, settled

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = 86400.0


def release(
    version: str, *, yanked: bool = False, age: timedelta | None = timedelta(days=30)
) -> Release:
    uploaded = None if age is None else NOW - age
    return Release(version=version, files=1, yanked=yanked, uploaded_at=uploaded)


def versions(releases: list[Release]) -> list[str]:
    return [r.version for r in releases]


def test_latest_orders_versions_by_pep_440_not_as_text() -> None:
    found = [release(v) for v in ["1.9", "1.10", "2.0", "2.0.post1", "1.2"]]

    chosen = latest(found, prereleases=False, min_age=0, now=NOW)

    assert chosen is not None and chosen.version == "2.0.post1"
    assert latest(found[:2], prereleases=False, min_age=0, now=NOW) == found[1]  # 1.10 > 1.9


def test_latest_leaves_out_pre_and_dev_releases_unless_asked() -> None:
    found = [release(v) for v in ["1.1", "1.2rc1", "1.2.dev3", "1.3a1"]]

    without = latest(found, prereleases=False, min_age=0, now=NOW)
    with_them = latest(found, prereleases=True, min_age=0, now=NOW)

    assert without is not None and without.version == "1.1"
    assert with_them is not None and with_them.version == "1.3a1"


def test_latest_skips_yanked_releases() -> None:
    found = [release("1.0"), release("1.1", yanked=True)]

    chosen = latest(found, prereleases=False, min_age=0, now=NOW)

    assert chosen is not None and chosen.version == "1.0"


def test_latest_holds_back_a_release_younger_than_min_age() -> None:
    found = [release("1.0"), release("1.1", age=timedelta(hours=2))]

    held = latest(found, prereleases=False, min_age=DAY, now=NOW)
    later = latest(found, prereleases=False, min_age=DAY, now=NOW + timedelta(hours=22))

    assert held is not None and held.version == "1.0"
    assert later is not None and later.version == "1.1"  # exactly min_age old counts


def test_latest_counts_age_from_first_seen_when_the_index_gives_no_upload_time() -> None:
    found = [release("1.0", age=None), release("1.1", age=None)]
    first_seen = {"1.0": NOW - timedelta(days=9), "1.1": NOW - timedelta(minutes=5)}

    held = latest(found, prereleases=False, min_age=DAY, now=NOW, first_seen=first_seen)
    unknown = latest(found, prereleases=False, min_age=DAY, now=NOW)

    assert held is not None and held.version == "1.0"
    # Neither time known: treated as old enough rather than held back for ever.
    assert unknown is not None and unknown.version == "1.1"


def test_latest_prefers_the_upload_time_over_first_seen() -> None:
    found = [release("1.0"), release("1.1", age=timedelta(minutes=1))]
    first_seen = {"1.1": NOW - timedelta(days=9)}

    chosen = latest(found, prereleases=False, min_age=DAY, now=NOW, first_seen=first_seen)

    assert chosen is not None and chosen.version == "1.0"


def test_a_zero_min_age_ignores_an_index_clock_that_runs_ahead() -> None:
    ahead = release("1.1", age=-timedelta(minutes=3))

    assert latest([ahead], prereleases=False, min_age=0, now=NOW) == ahead


def test_latest_of_nothing_eligible_is_none() -> None:
    found = [release("1.0", yanked=True), release("2.0b1")]

    assert latest(found, prereleases=False, min_age=0, now=NOW) is None
    assert latest([], prereleases=True, min_age=0, now=NOW) is None


def test_newer_than_lists_every_eligible_release_above_the_version_in_order() -> None:
    found = [release(v) for v in ["1.2rc1", "1.10", "1.0", "1.1", "0.9", "1.9"]]
    found.append(release("1.5", yanked=True))

    assert versions(newer_than(found, "1.0", prereleases=False)) == ["1.1", "1.9", "1.10"]
    assert versions(newer_than(found, "1.0", prereleases=True)) == [
        "1.1",
        "1.2rc1",
        "1.9",
        "1.10",
    ]


def test_newer_than_compares_by_pep_440() -> None:
    found = [release(v) for v in ["2.0", "2.0.post1", "2.0.0", "1.99"]]

    # "2.0.0" equals "2.0", so it is not newer; a post-release is.
    assert versions(newer_than(found, "2.0", prereleases=False)) == ["2.0.post1"]
    assert versions(newer_than(found, "2.0.0rc1", prereleases=True)) == [
        "2.0",
        "2.0.0",
        "2.0.post1",
    ]


def test_settled_stops_at_the_first_release_still_too_young() -> None:
    waiting = [
        release("1.1"),
        release("1.2", age=timedelta(hours=1)),
        release("1.3"),  # old enough, but after 1.2: it waits too, so 1.2 is not skipped
    ]

    assert versions(settled(waiting, min_age=DAY, now=NOW)) == ["1.1"]
    assert versions(settled(waiting, min_age=DAY, now=NOW + timedelta(days=1))) == [
        "1.1",
        "1.2",
        "1.3",
    ]
    assert versions(settled(waiting, min_age=0, now=NOW)) == ["1.1", "1.2", "1.3"]


def test_a_line_is_the_pinned_versions_major_and_minor() -> None:
    assert line_name("1.26.16") == "1.26" and line_name("2") == "2.0"
    assert same_line("1.26.18", "1.26.16") and same_line("1.26.18.post1", "1.26.16")
    assert not same_line("1.27.0", "1.26.16") and not same_line("2.26.16", "1.26.16")
    assert same_line("2.0.0", "2")
