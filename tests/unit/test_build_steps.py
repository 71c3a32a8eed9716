"""Metadata instructions applied to an image config, with docker's history text."""

import pytest

from skiff.build.dockerfile import DockerfileError, parse
from skiff.build.steps import apply_metadata, parse_duration, variables


def apply(line, cfg=None, env=None, **kw):
    inst = parse("FROM b\n" + line + "\n").instructions[1]
    return apply_metadata(inst, cfg or {}, env or {}, **kw)


def test_env_expands_and_replaces():
    cfg, text = apply('ENV A=$X B="x y" PATH=/p:$PATH', {"Env": ["PATH=/bin", "B=old"]},
                      {"X": "1", "PATH": "/bin"})
    assert cfg["Env"] == ["PATH=/p:/bin", "B=x y", "A=1"]
    assert text == "ENV A=1 B=x y PATH=/p:/bin"


def test_label_expose_volume():
    cfg, _ = apply('LABEL a=1 "b c"="d e"')
    assert cfg["Labels"] == {"a": "1", "b c": "d e"}
    cfg, text = apply("EXPOSE 80 $P 1000-1001/udp", env={"P": "53/udp"})
    assert set(cfg["ExposedPorts"]) == {"80/tcp", "53/udp", "1000/udp", "1001/udp"}
    cfg, text = apply('VOLUME ["/a", "/b c"]')
    assert cfg["Volumes"] == {"/a": {}, "/b c": {}} and text == "VOLUME [/a /b c]"
    cfg, _ = apply("VOLUME /x $D", env={"D": "/y"})
    assert cfg["Volumes"] == {"/x": {}, "/y": {}}
    with pytest.raises(DockerfileError, match="invalid proto"):
        apply("EXPOSE 80/foo")


def test_workdir_relative_user_stopsignal():
    cfg, text = apply("WORKDIR b/$D", {"WorkingDir": "/a"}, {"D": "c"})
    assert cfg["WorkingDir"] == "/a/b/c" and text == "WORKDIR /a/b/c"
    assert apply("USER $U:1", env={"U": "nobody"})[0]["User"] == "nobody:1"
    assert apply("STOPSIGNAL SIGKILL")[0]["StopSignal"] == "SIGKILL"


def test_cmd_entrypoint_shell():
    cfg, text = apply("CMD echo hi")
    assert cfg["Cmd"] == ["/bin/sh", "-c", "echo hi"] and text == 'CMD ["/bin/sh" "-c" "echo hi"]'
    cfg, _ = apply("CMD echo hi", {"Shell": ["/bin/ash", "-e", "-c"]})
    assert cfg["Cmd"] == ["/bin/ash", "-e", "-c", "echo hi"]
    cfg, _ = apply('ENTRYPOINT ["top"]', {"Cmd": ["sh"]})
    assert cfg["Entrypoint"] == ["top"] and cfg["Cmd"] is None
    cfg, _ = apply('ENTRYPOINT ["top"]', {"Cmd": ["-b"]}, cmd_set=True)
    assert cfg["Cmd"] == ["-b"]
    cfg, text = apply('SHELL ["/bin/ash", "-c"]')
    assert cfg["Shell"] == ["/bin/ash", "-c"]


def test_healthcheck():
    cfg, _ = apply('HEALTHCHECK --interval=1m30s --timeout=500ms --retries=2 CMD ["true"]')
    assert cfg["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 90 * 10**9,
                                  "Timeout": 500 * 10**6, "Retries": 2}
    cfg, _ = apply("HEALTHCHECK CMD wget -q x")
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q x"]}
    assert apply("HEALTHCHECK NONE")[0]["Healthcheck"] == {"Test": ["NONE"]}
    with pytest.raises(DockerfileError, match="invalid duration"):
        apply("HEALTHCHECK --interval=5 CMD true")


def test_history_texts_as_docker_writes_them():
    assert apply("EXPOSE 8080 53/udp")[1] == "EXPOSE 53/udp 8080"
    assert apply("HEALTHCHECK --interval=30s --retries=2 CMD [\"true\"]")[1] == \
        'HEALTHCHECK &{["CMD" "true"] "30s" "0s" "0s" \'\\x02\'}'
    assert apply("HEALTHCHECK NONE")[1] == 'HEALTHCHECK &{["NONE"] "0s" "0s" "0s" \'\\x00\'}'


def test_onbuild_and_maintainer():
    cfg, text = apply("ONBUILD run echo hi")
    assert cfg["OnBuild"] == ["RUN echo hi"] and text == "ONBUILD RUN echo hi"
    assert apply("MAINTAINER me <m@x>")[1] == "MAINTAINER me <m@x>"


def test_variables_env_over_args():
    assert variables({"Env": ["A=env"]}, {"A": "arg", "B": "b", "C": None}) == \
        {"A": "env", "B": "b"}


def test_parse_duration():
    assert parse_duration("1h2m3s", "interval", 1) == (3723) * 10**9
    assert parse_duration("0", "interval", 1) == 0
