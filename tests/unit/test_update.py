"""docker's update rules as values: merging an UpdateConfig into a HostConfig, the limits
written live, and the order of the v1 memory writes."""

import pytest

from skiff.engine.update import CannotUpdate, check_body, live_resources, merge
from skiff.errors import InvalidArgument
from skiff.runtime.update import ordered_writes

MiB = 1 << 20


def test_zero_fields_leave_limits_alone_and_memory_swap_is_stored_as_docker_does():
    hc, changed = merge({"Memory": 64 * MiB, "CpuShares": 512},
                        {"Memory": 0, "CpuShares": 0, "PidsLimit": 20, "CpusetCpus": ""})
    assert changed == {"PidsLimit"}
    assert hc == {"Memory": 64 * MiB, "MemorySwap": 128 * MiB, "CpuShares": 512,
                  "PidsLimit": 20}


def test_memory_above_the_stored_swap_needs_a_new_swap():
    with pytest.raises(CannotUpdate, match="Memory limit should be smaller than already set "
                       "memoryswap limit"):
        merge({"Memory": 64 * MiB}, {"Memory": 200 * MiB})
    hc, _ = merge({"Memory": 64 * MiB}, {"Memory": 200 * MiB, "MemorySwap": -1})
    assert (hc["Memory"], hc["MemorySwap"]) == (200 * MiB, -1)
    hc, _ = merge({}, {"Memory": 200 * MiB})   # no limit before: nothing to conflict with
    assert hc["Memory"] == 200 * MiB


@pytest.mark.parametrize("current,body,word", [
    ({"NanoCpus": 10**9}, {"CpuQuota": 50000}, "Quota"),
    ({"NanoCpus": 10**9}, {"CpuPeriod": 50000}, "Period"),
    ({"CpuQuota": 50000}, {"NanoCpus": 10**9}, "Quota"),
    ({"CpuPeriod": 50000}, {"NanoCpus": 10**9}, "Period"),
])
def test_nano_cpus_and_cfs_fields_exclude_each_other(current, body, word):
    with pytest.raises(CannotUpdate, match=f"CPU {word} cannot be updated as NanoCPUs"):
        merge(current, body)


def test_restart_policy():
    hc, changed = merge({}, {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}})
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert not changed
    with pytest.raises(CannotUpdate, match="AutoRemove is enabled"):
        merge({"AutoRemove": True}, {"RestartPolicy": {"Name": "always"}})
    hc, _ = merge({"AutoRemove": True}, {"RestartPolicy": {"Name": ""}})
    assert "RestartPolicy" not in hc


def test_fields_update_cannot_change_are_refused_unless_empty():
    check_body({"Devices": [], "Ulimits": None, "OomKillDisable": False, "Memory": 0})
    with pytest.raises(InvalidArgument, match="Ulimits cannot be changed by update"):
        check_body({"Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 1}]})
    with pytest.raises(InvalidArgument, match="real-time"):
        check_body({"CpuRealtimeRuntime": 1000})
    with pytest.raises(InvalidArgument):
        check_body({"Memory": "lots"})


def test_live_writes_carry_the_partner_limits():
    full = {"memory": {"limit": 100, "swap": 200, "reservation": 50},
            "cpu": {"shares": 512, "period": 100000, "quota": 50000, "cpus": "0"},
            "pids": {"limit": 9}}
    assert live_resources(full, {"MemoryReservation"}) == {"memory": {"reservation": 50}}
    assert live_resources(full, {"Memory"}) == {"memory": {"limit": 100, "swap": 200}}
    assert live_resources(full, {"CpuQuota"}) == {"cpu": {"period": 100000, "quota": 50000}}
    assert live_resources(full, {"PidsLimit", "CpuShares"}) == {
        "cpu": {"shares": 512}, "pids": {"limit": 9}}


def test_v1_memory_writes_in_an_order_the_kernel_accepts():
    limit = ("memory", "memory.limit_in_bytes", "300")
    swap = ("memory", "memory.memsw.limit_in_bytes", "600")
    other = ("pids", "pids.max", "5")
    assert ordered_writes([limit, swap, other], current_limit=100) == [swap, limit, other]
    assert ordered_writes([limit, swap, other], current_limit=500) == [limit, swap, other]
    assert ordered_writes([limit, other], current_limit=100) == [limit, other]
