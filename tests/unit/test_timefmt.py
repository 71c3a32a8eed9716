from skiff.timefmt import human_duration, parse_rfc3339, rfc3339_nano


def test_round_trip():
    assert abs(parse_rfc3339(rfc3339_nano(1_700_000_000_123_456_789)) - 1_700_000_000.123) < 1e-3
    assert parse_rfc3339("0001-01-01T00:00:00Z") == 0.0
    assert parse_rfc3339("2024-01-01T01:00:00+01:00") == parse_rfc3339("2024-01-01T00:00:00Z")


def test_human_duration_like_go_units():
    assert human_duration(0.2) == "Less than a second"
    assert human_duration(1) == "1 second"
    assert human_duration(42) == "42 seconds"
    assert human_duration(61) == "About a minute"
    assert human_duration(5 * 60) == "5 minutes"
    assert human_duration(3600) == "About an hour"
    assert human_duration(5 * 3600) == "5 hours"
    assert human_duration(3 * 86400) == "3 days"
    assert human_duration(20 * 86400) == "2 weeks"
    assert human_duration(90 * 86400) == "3 months"
    assert human_duration(800 * 86400) == "2 years"
