"""Builds through POST /build (docker-py's low-level client, as the docker CLI's classic builder
speaks it): a catalogue of Dockerfiles, each result checked by running the image; the cache;
errors; clean-up after failed and interrupted builds."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time

import pytest

docker = pytest.importorskip("docker")

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def sdk(daemon):
    return daemon.client()


@pytest.fixture
def ctxdir():
    path = tempfile.mkdtemp(prefix="skiff-build-ctx-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write(root: str, files: dict) -> None:
    for name, content in files.items():
        full = os.path.join(root, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if isinstance(content, tuple):  # (data, mode)
            content, mode = content
        else:
            mode = 0o644
        with open(full, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        os.chmod(full, mode)


def build(sdk, root: str, dockerfile: str | None = None, **kw) -> tuple[str | None, list[dict]]:
    """(image id or None, messages)."""
    if dockerfile is not None:
        write(root, {"Dockerfile": dockerfile})
    kw.setdefault("rm", True)  # the docker CLI's default (docker-py's is False)
    messages = list(sdk.api.build(path=root, decode=True, **kw))
    image_id = None
    for m in messages:
        if isinstance(m.get("aux"), dict) and m["aux"].get("ID"):
            image_id = m["aux"]["ID"]
    return image_id, messages


def text_of(messages: list[dict]) -> str:
    return "".join(m.get("stream", "") for m in messages)


def error_of(messages: list[dict]) -> str | None:
    for m in messages:
        if m.get("error"):
            return m["error"]
    return None


def run(sdk, image: str, cmd=None, **kw) -> str:
    return sdk.containers.run(image, cmd, remove=True, **kw).decode()


def config(sdk, image: str) -> dict:
    return sdk.api.inspect_image(image)["Config"]


def leftovers(daemon) -> dict:
    """What a build must not leave: containers, active snapshots, mounts, scratch dirs."""
    client = daemon.client()
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if daemon.root in line.split()[4]]
    active = os.listdir(os.path.join(daemon.root, "snapshots", "active")) \
        if os.path.isdir(os.path.join(daemon.root, "snapshots", "active")) else []
    tmp = os.path.join(daemon.root, "build", "tmp")
    return {"containers": [c.id for c in client.containers.list(all=True)],
            "active": active, "mounts": mounts,
            "scratch": os.listdir(tmp) if os.path.isdir(tmp) else []}


NOTHING = {"containers": [], "active": [], "mounts": [], "scratch": []}


# -- the catalogue ---------------------------------------------------------------------------


def test_basic_steps_run_and_history(sdk, ctxdir):
    write(ctxdir, {"f.txt": "data\n"})
    image, messages = build(sdk, ctxdir, "FROM busybox\nARG V=1\nENV A=hello B=\"x y\"\n"
                            "WORKDIR /app\nCOPY . /app/\n"
                            "RUN echo \"built $V $A\" > /built && echo out && echo err >&2\n"
                            'CMD ["cat", "/built"]\n', tag="cat-basic:1")
    assert image, messages
    out = text_of(messages)
    assert "Step 1/7 : FROM busybox\n" in out and "Step 7/7 : CMD [\"cat\", \"/built\"]" in out
    assert "out\n" in out and "err\n" in out and " ---> Running in " in out
    assert f"Successfully built {image[7:19]}\n" in out
    assert "Successfully tagged cat-basic:1\n" in out
    assert run(sdk, "cat-basic:1") == "built 1 hello\n"
    assert run(sdk, "cat-basic:1", ["cat", "/app/f.txt"]) == "data\n"
    cfg = config(sdk, image)
    assert cfg["Env"][1:] == ["A=hello", "B=x y"] and cfg["WorkingDir"] == "/app"
    assert not any(e.startswith("V=") for e in cfg["Env"])   # ARGs stay out of the image
    history = [h["CreatedBy"] for h in sdk.api.history(image)]
    assert history[0] == '/bin/sh -c #(nop)  CMD ["cat" "/built"]'
    assert history[1].startswith('|1 V=1 /bin/sh -c echo "built $V $A"')
    assert history[2].startswith("/bin/sh -c #(nop) COPY dir:")
    assert history[4] == "/bin/sh -c #(nop)  ENV A=hello B=x y"


def test_metadata_instructions(sdk, ctxdir):
    image, messages = build(sdk, ctxdir, """FROM busybox
ENV LEGACY value with spaces
ENV P=8080 D=/data
LABEL a=1 "b c"="d e"
LABEL from.env=$P
MAINTAINER someone <s@example.com>
EXPOSE $P 53/udp
VOLUME $D /other
VOLUME ["/json"]
USER nobody
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD ["true"]
SHELL ["/bin/sh", "-e", "-c"]
ENTRYPOINT ["echo", "ep"]
CMD ["c1"]
""")
    assert image, messages
    cfg = config(sdk, image)
    assert "LEGACY=value with spaces" in cfg["Env"] and "P=8080" in cfg["Env"]
    assert cfg["Labels"] == {"a": "1", "b c": "d e", "from.env": "8080"}
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert set(cfg["Volumes"]) == {"/data", "/other", "/json"}
    assert cfg["User"] == "nobody" and cfg["StopSignal"] == "SIGUSR1"
    assert cfg["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 5 * 10**9,
                                  "Timeout": 2 * 10**9, "Retries": 4}
    assert cfg["Shell"] == ["/bin/sh", "-e", "-c"]
    assert cfg["Entrypoint"] == ["echo", "ep"] and cfg["Cmd"] == ["c1"]
    assert sdk.api.inspect_image(image)["Author"] == "someone <s@example.com>"
    assert run(sdk, image) == "ep c1\n"


def test_entrypoint_resets_inherited_cmd_and_shell_form(sdk, ctxdir):
    image, _ = build(sdk, ctxdir, "FROM busybox\nENTRYPOINT echo from-shell $((1+2))\n")
    cfg = config(sdk, image)
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "echo from-shell $((1+2))"]
    assert cfg["Cmd"] is None   # busybox's CMD ["sh"] is dropped, as docker does
    assert run(sdk, image) == "from-shell 3\n"


def test_args_global_stage_and_build_args(sdk, ctxdir):
    dockerfile = """ARG BASE=busybox
ARG GLOBAL=g1
FROM $BASE
ARG GLOBAL
ARG LOCAL=l1
ARG EMPTY
ENV FROM_ENV=${LOCAL:-none}-${EMPTY:+set}
RUN echo "$GLOBAL $LOCAL ${EMPTY:-unset} $FROM_ENV" > /args
CMD ["cat", "/args"]
"""
    image, messages = build(sdk, ctxdir, dockerfile)
    assert run(sdk, image) == "g1 l1 unset l1-\n"
    image, messages = build(sdk, ctxdir, buildargs={"GLOBAL": "g2", "LOCAL": "l2",
                                                    "EMPTY": "e", "UNUSED": "x"})
    assert run(sdk, image) == "g2 l2 e l2-set\n"
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in text_of(messages)


def test_copy_rules(sdk, ctxdir):
    write(ctxdir, {"a.txt": "a\n", "b.txt": "b\n", "c.md": "c\n", "dir/x": "x\n",
                   "dir/sub/y": "y\n", "ignored.log": "no\n", "dir/also.log": "no\n",
                   "keep.log": "keep\n", "exe.sh": ("#!/bin/sh\necho exe\n", 0o755),
                   ".dockerignore": "**/*.log\n!keep.log\n"})
    image, messages = build(sdk, ctxdir, """FROM busybox
COPY *.txt /globbed/
COPY dir /copied-dir
COPY dir/ /copied-dir2/
COPY a.txt /renamed
COPY a.txt b.txt /multi/
COPY --chown=nobody:nogroup --chmod=600 c.md /owned/c.md
COPY --chown=1234 a.txt /numeric
COPY exe.sh keep.log /bin/
WORKDIR /w
COPY a.txt rel/
COPY . /all/
RUN ls /globbed /copied-dir /copied-dir2/sub /multi /w/rel > /listing; \
    stat -c '%U:%G %a' /owned/c.md /owned >> /listing; \
    stat -c '%u:%g' /numeric >> /listing; cat /renamed >> /listing; \
    ls /all | tr '\\n' ' ' >> /listing; exe.sh >> /listing
CMD ["cat", "/listing"]
""")
    assert image, messages
    out = run(sdk, image)
    lines = out.split("\n")
    assert "a.txt\nb.txt" in out                 # the glob
    assert "sub\nx" in out and "y" in lines      # a directory's contents, not the dir
    assert "nobody:nogroup 600" in out           # --chown by name, --chmod
    assert "nobody:nogroup 755" in out           # new parents: the --chown owner, 0755
    assert "1234:1234" in out                    # a lone uid is also the gid
    assert "a\n" in out
    all_line = [l for l in lines if "Dockerfile" in l][0]
    assert "ignored.log" not in all_line and "keep.log" in all_line and "dir" in all_line
    assert out.endswith(" exe\n")               # mode kept: executable


def test_copy_missing_file_names_it(sdk, ctxdir, daemon):
    image, messages = build(sdk, ctxdir, "FROM busybox\nCOPY nothere.txt /\n")
    assert image is None
    assert error_of(messages) == ("COPY failed: file not found in build context or excluded "
                                  "by .dockerignore: stat nothere.txt: file does not exist")
    assert leftovers(daemon) == NOTHING


def test_add_local_archives(sdk, ctxdir):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("top/one", b"1\n"), ("two", b"2\n")):
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.gid = len(data), 42, 43
            tar.addfile(info, io.BytesIO(data))
    write(ctxdir, {"files.tar.gz": gzip.compress(buf.getvalue()), "plain.tar": buf.getvalue(),
                   "note.txt": "n\n"})
    image, messages = build(sdk, ctxdir, """FROM busybox
ADD files.tar.gz /unpacked/
ADD plain.tar /plain
ADD note.txt /notes/
COPY files.tar.gz /kept/
RUN cat /unpacked/top/one /plain/two /notes/note.txt && stat -c '%u:%g' /unpacked/two && \
    ls /kept
""")
    assert image, messages
    out = text_of(messages)
    assert "1\n2\nn\n42:43\nfiles.tar.gz\n" in out


def test_add_url_from_a_loopback_server(sdk, ctxdir):
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"fetched " + self.path.encode() + b"\n"
            self.send_response(200 if self.path != "/missing" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        image, messages = build(sdk, ctxdir, f"FROM busybox\nADD {url}/data.txt /dl/\n"
                                f"ADD {url}/other /named\nRUN stat -c %a /dl/data.txt\n"
                                "CMD cat /dl/data.txt /named\n")
        assert image, messages
        assert run(sdk, image) == "fetched /data.txt\nfetched /other\n"
        assert "600\n" in text_of(messages)                 # docker's mode for URL files
        _, messages = build(sdk, ctxdir, f"FROM busybox\nADD {url}/missing /x\n")
        assert "failed to GET" in error_of(messages)
    finally:
        server.shutdown()
        server.server_close()


def test_exec_form_run_and_run_network_flag(sdk, ctxdir):
    image, messages = build(sdk, ctxdir, 'FROM busybox\nRUN ["sh", "-c", "echo exec > /e"]\n'
                            "RUN --network=none ls /sys/class/net > /n\nCMD cat /e /n\n")
    assert image, messages
    assert run(sdk, image) == "exec\nlo\n"
    history = [h["CreatedBy"] for h in sdk.api.history(image)]
    assert 'sh -c echo exec > /e' in history


def test_heredocs(sdk, ctxdir):
    image, messages = build(sdk, ctxdir, """FROM busybox
ENV NAME=world
RUN <<EOF
echo first > /h1
echo second >> /h1
EOF
RUN cat <<ONE > /h2
hello $NAME
ONE
COPY <<EOT /h3
copied $NAME
EOT
COPY <<"EOT" /h4
literal $NAME
EOT
RUN <<EOF
#!/usr/bin/awk -f
BEGIN { print "awk ran the script" > "/h5" }
EOF
CMD cat /h1 /h2 /h3 /h4 /h5
""")
    assert image, messages
    assert run(sdk, image) == ("first\nsecond\nhello world\ncopied world\nliteral $NAME\n"
                               "awk ran the script\n")
    assert ".skiff-heredoc" not in run(sdk, image, ["ls", "-a", "/"])


def test_multi_stage_target_and_skipped_stages(sdk, ctxdir):
    dockerfile = """FROM busybox AS base
RUN echo base > /base
FROM busybox AS never
RUN echo never-ran && false
FROM base AS builder
RUN echo built > /artifact
FROM busybox
COPY --from=builder /artifact /base /
COPY --from=0 /base /from-index
CMD cat /artifact /base /from-index
"""
    image, messages = build(sdk, ctxdir, dockerfile)
    assert image, messages
    assert "never-ran" not in text_of(messages)
    assert run(sdk, image) == "built\nbase\nbase\n"
    target, messages = build(sdk, ctxdir, target="builder")
    assert run(sdk, target, ["cat", "/base", "/artifact"]) == "base\nbuilt\n"
    with pytest.raises(docker.errors.APIError, match="failed to reach build target nope"):
        list(sdk.api.build(path=ctxdir, target="nope", decode=True))


def test_independent_stages_run_side_by_side(sdk, ctxdir):
    image, messages = build(sdk, ctxdir, """FROM busybox AS a
RUN sleep 2 && echo from-a > /a
FROM busybox AS b
RUN sleep 2 && echo from-b > /b
FROM busybox
COPY --from=a /a /a
COPY --from=b /b /b
CMD cat /a /b
""")
    assert image, messages
    out = text_of(messages)
    # b's RUN starts while a's still runs (a's container is removed only after it)
    assert out.index("Step 4/8 : RUN sleep 2 && echo from-b") < \
        out.index("Removing intermediate container")
    assert run(sdk, image) == "from-a\nfrom-b\n"


def test_a_failing_stage_stops_the_others(sdk, ctxdir, daemon):
    started = time.monotonic()
    image, messages = build(sdk, ctxdir, """FROM busybox AS slow
RUN sleep 30
FROM busybox AS failing
RUN sleep 1; exit 4
FROM busybox
COPY --from=slow /etc/passwd /p1
COPY --from=failing /etc/passwd /p2
""")
    assert image is None
    assert error_of(messages) == ("The command '/bin/sh -c sleep 1; exit 4' returned a "
                                  "non-zero code: 4")
    assert time.monotonic() - started < 25   # the slow stage's container was stopped
    assert leftovers(daemon) == NOTHING


def test_from_scratch_and_copy_from_image(sdk, ctxdir):
    shutil.copy("/bin/busybox", os.path.join(ctxdir, "busybox"))
    image, messages = build(sdk, ctxdir, """FROM scratch
COPY busybox /bin/busybox
COPY --from=busybox /etc/passwd /etc/passwd
ENTRYPOINT ["/bin/busybox"]
CMD ["echo", "from scratch"]
""")
    assert image, messages
    assert run(sdk, image) == "from scratch\n"
    assert run(sdk, image, ["grep", "-c", "nobody", "/etc/passwd"]) == "1\n"
    assert config(sdk, image)["Env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def test_onbuild_triggers(sdk, ctxdir):
    parent, messages = build(sdk, ctxdir, "FROM busybox\nONBUILD RUN echo triggered > /t\n",
                             tag="cat-onbuild-parent:1")
    assert config(sdk, parent)["OnBuild"] == ["RUN echo triggered > /t"]
    child, messages = build(sdk, ctxdir, "FROM cat-onbuild-parent:1\nCMD cat /t\n")
    assert "# Executing 1 build trigger\n" in text_of(messages)
    assert run(sdk, child) == "triggered\n"
    assert not config(sdk, child)["OnBuild"]


def test_failing_run_reports_command_and_code(sdk, ctxdir, daemon):
    image, messages = build(sdk, ctxdir, "FROM busybox\nRUN echo before\nRUN exit 3\n")
    assert image is None
    assert error_of(messages) == "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert [m["errorDetail"] for m in messages if "errorDetail" in m][0]["code"] == 3
    assert leftovers(daemon) == NOTHING
    # the steps before it were kept as cache
    _, messages = build(sdk, ctxdir)
    assert " ---> Using cache\n" in text_of(messages)


def test_parse_errors_are_http_errors_with_the_line(sdk, ctxdir, daemon):
    write(ctxdir, {"Dockerfile": "FROM busybox\nRUN true\nBOGUS x\n"})
    with pytest.raises(docker.errors.APIError) as info:
        list(sdk.api.build(path=ctxdir, decode=True))
    assert info.value.status_code == 400
    assert "dockerfile parse error line 3: unknown instruction: BOGUS" in str(info.value)
    with pytest.raises(docker.errors.APIError, match="Cannot locate specified Dockerfile"):
        list(sdk.api.build(path=ctxdir, dockerfile="Nope", decode=True))
    assert leftovers(daemon) == NOTHING


def test_hostile_context_tar_refused(sdk, daemon):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM busybox\n"), ("../escaped", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    with pytest.raises(docker.errors.APIError) as info:
        list(sdk.api.build(fileobj=buf, custom_context=True, decode=True))
    assert info.value.status_code == 400 and "escaped" in str(info.value)
    assert not os.path.exists(os.path.join(daemon.root, "build", "escaped"))
    assert leftovers(daemon) == NOTHING


def test_cache_content_not_timestamps_and_late_change(sdk, ctxdir):
    files = {f"src/f{i}.txt": f"{i}\n" for i in range(20)}
    write(ctxdir, dict(files, late="v1\n"))
    dockerfile = ("FROM busybox\nRUN echo one > /one\nCOPY src /src\nRUN cat /src/* | wc -l\n"
                  "COPY late /late\nRUN cat /late\n")
    first, _ = build(sdk, ctxdir, dockerfile)
    for name in files:  # new timestamps, same content: still cached
        os.utime(os.path.join(ctxdir, name), (1, 1))
    again, messages = build(sdk, ctxdir)
    assert again == first and text_of(messages).count("Using cache") == 5
    write(ctxdir, {"late": "v2\n"})
    changed, messages = build(sdk, ctxdir)
    out = text_of(messages)
    assert changed != first and out.count("Using cache") == 3 and "v2\n" in out
    nocache, messages = build(sdk, ctxdir, nocache=True)
    assert "Using cache" not in text_of(messages) and nocache != changed


def test_cache_survives_daemon_restart(sdk, ctxdir, daemon):
    first, _ = build(sdk, ctxdir, "FROM busybox\nRUN echo $RANDOM > /r\nCMD cat /r\n")
    daemon.stop()
    daemon.start()
    client = daemon.client()
    again, messages = build(client, ctxdir)
    assert again == first and text_of(messages).count("Using cache") == 2


def test_network_none(sdk, ctxdir):
    image, messages = build(sdk, ctxdir, "FROM busybox\nRUN ls /sys/class/net > /ifs\n"
                            "CMD cat /ifs\n", network_mode="none")
    assert image, messages
    assert run(sdk, image) == "lo\n"


def test_labels_and_several_tags(sdk, ctxdir):
    image, messages = build(sdk, ctxdir, "FROM busybox\n", labels={"x": "1"}, tag="cat-lab:a")
    assert config(sdk, image)["Labels"] == {"x": "1"}
    assert "LABEL" in text_of(messages)


def test_interrupted_build_leaves_nothing(sdk, ctxdir, daemon):
    write(ctxdir, {"Dockerfile": "FROM busybox\nRUN echo started; sleep 30\n"})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(os.path.join(ctxdir, "Dockerfile"), "Dockerfile")
    body = buf.getvalue()
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(daemon.sock)
    sock.sendall(b"POST /v1.45/build HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    seen = b""
    deadline = time.monotonic() + 30
    while b"started" not in seen and time.monotonic() < deadline:
        seen += sock.recv(65536)
    assert b"started" in seen
    assert leftovers(daemon)["containers"]
    sock.close()
    deadline = time.monotonic() + 20
    while leftovers(daemon) != NOTHING and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers(daemon) == NOTHING


def test_daemon_killed_mid_build_leaves_nothing_after_restart(sdk, ctxdir, daemon):
    write(ctxdir, {"Dockerfile": "FROM busybox\nRUN echo started; sleep 30\n"})
    messages = sdk.api.build(path=ctxdir, decode=True, rm=True)
    for m in messages:
        if "started" in (m.get("stream") or ""):
            break
    assert leftovers(daemon)["containers"]
    daemon.proc.kill()            # no chance to clean up
    daemon.proc.wait()
    daemon.start()
    deadline = time.monotonic() + 20
    while leftovers(daemon) != NOTHING and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers(daemon) == NOTHING


def test_builder_prune(sdk, ctxdir, daemon):
    image, _ = build(sdk, ctxdir, "FROM busybox\nRUN echo prune-me > /p\n", tag="cat-prune:1")
    result = sdk.api.post(sdk.api._url("/build/prune"))
    result = sdk.api._result(result, json=True)
    assert result["CachesDeleted"]
    _, messages = build(sdk, ctxdir)
    assert "Using cache" not in text_of(messages)
    assert run(sdk, "cat-prune:1", ["cat", "/p"]) == "prune-me\n"   # the tagged image stays


def test_run_output_large_and_complete(sdk, ctxdir):
    image, messages = build(sdk, ctxdir, "FROM busybox\nRUN seq 1 200000 && echo done-seq\n")
    assert image, messages
    out = text_of(messages)
    assert "\n199999\n200000\ndone-seq\n" in out and out.count("\n") > 200000


def test_rm_false_keeps_step_containers_but_never_failed_ones(sdk, ctxdir, daemon):
    image, messages = build(sdk, ctxdir, "FROM busybox\nRUN echo kept\n", rm=False)
    kept = leftovers(daemon)["containers"]
    assert len(kept) == 1 and "Removing intermediate container" not in text_of(messages)
    sdk.api.remove_container(kept[0], force=True)
    _, messages = build(sdk, ctxdir, "FROM busybox\nRUN exit 2\n", rm=False)
    assert error_of(messages) and leftovers(daemon) == NOTHING


def test_intermediate_images_listed_only_with_all(sdk, ctxdir):
    image, _ = build(sdk, ctxdir, "FROM busybox\nENV STEP=1\nRUN echo x > /x\n",
                     tag="cat-listed:1")
    parent = sdk.api.inspect_image(image)["Parent"]
    assert parent
    assert parent not in [i.id for i in sdk.images.list()]
    assert parent in [i.id for i in sdk.images.list(all=True)]
    history = sdk.api.history(image)   # the steps' images that are here, by id
    assert [h["Id"] for h in history[:2]] == [image, parent]
    assert history[0]["Tags"] == ["cat-listed:1"] and history[1]["Tags"] is None


def test_image_prune_keeps_the_build_cache(sdk, ctxdir):
    first, _ = build(sdk, ctxdir, "FROM busybox\nENV KEPT=1\nRUN echo kept > /k\n",
                     tag="cat-prunekeep:1")
    sdk.images.prune(filters={"dangling": True})   # intermediate images are no heads
    again, messages = build(sdk, ctxdir)
    assert again == first and text_of(messages).count("Using cache") == 2


def test_cache_from_a_loaded_image(sdk, ctxdir, daemon):
    write(ctxdir, {"f": "content\n"})
    dockerfile = ("FROM busybox\nENV A=1\nCOPY f /f\nRUN echo $RANDOM > /r\n"
                  "CMD cat /r\n")
    first, _ = build(sdk, ctxdir, dockerfile, tag="cat-cachefrom:1")
    saved = os.path.join(daemon.dir, "cachefrom.tar")
    assert daemon.cli("save", "-o", saved, "cat-cachefrom:1").returncode == 0
    sdk.api.post(sdk.api._url("/build/prune"))
    sdk.images.remove("cat-cachefrom:1")
    assert daemon.cli("load", "-i", saved).returncode == 0   # no intermediate images now
    os.unlink(saved)
    again, messages = build(sdk, ctxdir, cache_from=["cat-cachefrom:1"])
    assert text_of(messages).count("Using cache") == 4 and again == first
    assert run(sdk, again) == run(sdk, first)


def test_docker_py_high_level_build(sdk, ctxdir):
    write(ctxdir, {"Dockerfile": "FROM busybox\nRUN echo py > /py\nCMD cat /py\n"})
    image, logs = sdk.images.build(path=ctxdir, tag="cat-py:1", rm=True)
    assert image.id == sdk.images.get("cat-py:1").id
    assert "cat-py:1" in image.tags
    assert any("Successfully built" in (l.get("stream") or "") for l in logs)
    assert run(sdk, "cat-py:1") == "py\n"
    with pytest.raises(docker.errors.BuildError, match="returned a non-zero code: 1"):
        sdk.images.build(fileobj=io.BytesIO(b"FROM busybox\nRUN false\n"), rm=True)


def test_docker_cli_classic_builder(daemon, ctxdir):
    if not shutil.which("docker"):
        pytest.skip("no docker CLI")
    write(ctxdir, {"Dockerfile": "FROM busybox\nCOPY hello /\nRUN cat /hello\n"
                                 "CMD [\"cat\", \"/hello\"]\n", "hello": "from docker cli\n"})
    env = dict(os.environ, DOCKER_HOST=daemon.host, DOCKER_BUILDKIT="0",
               DOCKER_CONFIG=tempfile.mkdtemp(prefix="skiff-dcfg-"))
    try:
        result = subprocess.run(["docker", "build", "-t", "cat-dcli:1", ctxdir], env=env,
                                capture_output=True, timeout=120)
        assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
        assert b"Successfully tagged cat-dcli:1" in result.stdout
        assert run(daemon.client(), "cat-dcli:1") == "from docker cli\n"
        write(ctxdir, {"Dockerfile": "FROM busybox\nRUN exit 7\n"})
        result = subprocess.run(["docker", "build", ctxdir], env=env, capture_output=True,
                                timeout=120)
        assert result.returncode == 7
        assert b"The command '/bin/sh -c exit 7' returned a non-zero code: 7" in result.stderr
    finally:
        shutil.rmtree(env["DOCKER_CONFIG"], ignore_errors=True)


@pytest.fixture(scope="module")
def seeded_registry(daemon, test_images, tmp_path_factory):
    """busybox pushed by skiff into a loopback registry (as test_registry.py seeds it)."""
    from tests.integration.test_registry import _registry, load_as

    registry = _registry(tmp_path_factory)
    try:
        load_as(daemon, test_images, f"{registry.host}/library/bb:latest")
        client = daemon.client()
        lines = list(client.api.push(f"{registry.host}/library/bb", "latest", stream=True,
                                     decode=True))
        assert not [line for line in lines if "error" in line], lines
        client.images.remove(f"{registry.host}/library/bb:latest")
        yield f"{registry.host}/library/bb:latest"
    finally:
        registry.stop()


def test_from_pulls_a_missing_image_and_pull_flag(sdk, ctxdir, seeded_registry):
    image, messages = build(sdk, ctxdir, f"FROM {seeded_registry}\nRUN echo on-pulled\n")
    assert image, messages
    statuses = [m.get("status") or "" for m in messages]
    assert any(s.startswith("Status: Downloaded newer image") or "Pulling from" in s
               for s in statuses), messages
    assert "on-pulled\n" in text_of(messages)
    _, messages = build(sdk, ctxdir, pull=True)
    assert any("Image is up to date" in (m.get("status") or "") for m in messages), messages
    _, messages = build(sdk, ctxdir, "FROM nosuchimage-for-skiff:1\n")
    assert "allowed registries" in error_of(messages) or "pull access denied" in \
        error_of(messages)
