from skiff.engine.health import merge_healthcheck, next_health, probe_command, settings


def test_probe_commands():
    assert probe_command(["CMD", "true"]) == ["true"]
    assert probe_command(["CMD-SHELL", "exit 1"]) == ["/bin/sh", "-c", "exit 1"]
    assert probe_command(["NONE"]) is None and probe_command(None) is None


def test_run_flags_override_the_image_field_by_field():
    image = {"Test": ["CMD", "a"], "Interval": 5, "Retries": 2}
    assert merge_healthcheck(image, {"Interval": 9}) == {"Test": ["CMD", "a"], "Interval": 9,
                                                          "Retries": 2}
    assert merge_healthcheck(image, {"Test": ["NONE"]})["Test"] == ["NONE"]
    assert merge_healthcheck(None, None) is None
    assert settings({"Retries": 0})["Retries"] == 3


def test_state_machine():
    h = {"Status": "starting", "FailingStreak": 0}
    assert next_health(h, 1, retries=2, in_start_period=True)["Status"] == "starting"
    h = next_health(h, 1, retries=2, in_start_period=False)
    assert h == {"Status": "starting", "FailingStreak": 1}
    h = next_health(h, 1, retries=2, in_start_period=False)
    assert h["Status"] == "unhealthy"
    assert next_health(h, 0, retries=2, in_start_period=False) == \
        {"Status": "healthy", "FailingStreak": 0}
