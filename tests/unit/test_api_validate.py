import pytest

from skiff.api import validate
from skiff.errors import InvalidArgument


def test_good_bodies_pass_and_unknown_fields_are_ignored():
    body = {"Image": "busybox", "Cmd": ["sh"], "Env": None, "Labels": {"a": "b"},
            "FutureField": {"x": 1},
            "HostConfig": {"AutoRemove": True, "Memory": 0, "RestartPolicy": {"Name": "no"},
                           "NewThing": 3}}
    assert validate.container_create(body) is body
    validate.container_create({"Image": "busybox", "Cmd": "echo hi"})


@pytest.mark.parametrize("body,field", [
    ({"Image": 5}, "ContainerConfigWrapper.Image of type string"),
    ({"Image": "b", "Cmd": [1, 2]}, "Cmd"),
    ({"Image": "b", "Tty": "yes"}, "Tty of type bool"),
    ({"Image": "b", "Labels": {"a": 1}}, "Labels of type map[string]string"),
    ({"Image": "b", "HostConfig": {"Memory": "1g"}}, "HostConfig.Memory of type int64"),
    ({"Image": "b", "HostConfig": {"AutoRemove": 1}}, "AutoRemove"),
    ({"Image": "b", "HostConfig": {"RestartPolicy": {"MaximumRetryCount": "3"}}},
     "MaximumRetryCount"),
])
def test_wrong_types_are_400s(body, field):
    with pytest.raises(InvalidArgument, match=field.replace("[", r"\[").replace("]", r"\]")):
        validate.container_create(body)


def test_not_an_object():
    with pytest.raises(InvalidArgument, match="config cannot be empty"):
        validate.container_create([1, 2])
