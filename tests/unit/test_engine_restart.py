import pytest

from skiff.engine.containers import (FIRST_RESTART_DELAY, MAX_RESTART_DELAY, next_delay,
                                     restart_policy, should_restart)
from skiff.errors import InvalidArgument


def test_policy_validation():
    assert restart_policy({}) == {"Name": "no", "MaximumRetryCount": 0}
    assert restart_policy({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}}) \
        == {"Name": "on-failure", "MaximumRetryCount": 3}
    with pytest.raises(InvalidArgument):
        restart_policy({"RestartPolicy": {"Name": "sometimes"}})
    with pytest.raises(InvalidArgument):
        restart_policy({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}})


@pytest.mark.parametrize("name,code,manual,count,expected", [
    ("no", 1, False, 0, False),
    ("always", 0, False, 5, True),
    ("always", 0, True, 0, False),
    ("unless-stopped", 3, False, 0, True),
    ("unless-stopped", 3, True, 0, False),
    ("on-failure", 0, False, 0, False),
    ("on-failure", 1, False, 0, True),
])
def test_should_restart(name, code, manual, count, expected):
    assert should_restart({"Name": name}, code, manual, count) is expected


def test_on_failure_counts_retries():
    policy = {"Name": "on-failure", "MaximumRetryCount": 2}
    assert should_restart(policy, 1, False, 1)
    assert not should_restart(policy, 1, False, 2)


def test_back_off_doubles_and_resets():
    delay = next_delay(0, 0)
    assert delay == FIRST_RESTART_DELAY
    for _ in range(20):
        delay = next_delay(delay, 0.5)
    assert delay == MAX_RESTART_DELAY
    assert next_delay(delay, 11) == FIRST_RESTART_DELAY
