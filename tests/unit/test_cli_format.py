"""Output formatting with the docker CLI's exact text: durations, sizes, tables, ids, quoting,
ports, statuses, templates, progress rendering."""

import io

import pytest

from skiff.cli import format as fmt
from skiff.cli import template
from skiff.cli.progress import ProgressRenderer, StreamError, progress_bar, render_stream

DAY = 86400


@pytest.mark.parametrize("seconds, text", [
    (0, "Less than a second"), (0.9, "Less than a second"), (1, "1 second"),
    (2, "2 seconds"), (59.9, "59 seconds"), (60, "About a minute"), (119, "About a minute"),
    (120, "2 minutes"), (3599, "59 minutes"), (3600, "About an hour"),
    (5399, "About an hour"), (5400, "2 hours"), (47 * 3600, "47 hours"),
    (48 * 3600, "2 days"), (13 * DAY, "13 days"), (14 * DAY, "2 weeks"),
    (59 * DAY, "8 weeks"), (60 * DAY, "2 months"), (729 * DAY, "24 months"),
    (730 * DAY, "2 years"), (3000 * DAY, "8 years"),
])
def test_human_duration(seconds, text):
    assert fmt.human_duration(seconds) == text


def test_ago():
    assert fmt.ago(1000, now=1000 + 75) == "About a minute ago"


@pytest.mark.parametrize("size, text", [
    (0, "0B"), (999, "999B"), (1000, "1kB"), (1500, "1.5kB"), (4_264_000, "4.26MB"),
    (1_980_000, "1.98MB"), (123_456_789, "123MB"), (10**9, "1GB"), (7_812_345_678, "7.81GB"),
])
def test_human_size(size, text):
    assert fmt.human_size(size) == text


@pytest.mark.parametrize("size, text", [
    (512, "512B"), (1024, "1KiB"), (25_275_052_032, "23.54GiB"), (16 * 2**30, "16GiB"),
])
def test_bytes_size(size, text):
    assert fmt.bytes_size(size) == text


def test_table_is_tabwriter_with_padding_3_and_minwidth_10():
    text = fmt.table([["CONTAINER ID", "IMAGE", "NAMES"], ["4bcffb1816f3", "busybox", "web"]])
    assert text == ("CONTAINER ID   IMAGE     NAMES\n"
                    "4bcffb1816f3   busybox   web\n")


def test_short_id():
    assert fmt.short_id("sha256:" + "ab" * 32) == "abababababab"
    assert fmt.short_id("0123456789abcdef") == "0123456789ab"
    assert fmt.short_id("sha256:abc", trunc=False) == "sha256:abc"


def test_ellipsis_and_go_quote():
    assert fmt.ellipsis("sh -c 'echo out; echo err'", 20) == "sh -c 'echo out; ec…"
    assert fmt.ellipsis("short", 20) == "short"
    assert fmt.go_quote('say "hi"\\\n\t\x01é') == '"say \\"hi\\"\\\\\\n\\t\\x01é"'


def test_container_names():
    assert fmt.container_names(["/web", "/other/web-link", "/db"]) == "web,db"
    assert fmt.container_names(["/web", "/other/link"], trunc=False) == "web,other/link"


def test_display_ports():
    ports = [
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"PrivatePort": 443, "Type": "tcp"},
        {"IP": "0.0.0.0", "PrivatePort": 9000, "PublicPort": 9000, "Type": "udp"},
        {"IP": "0.0.0.0", "PrivatePort": 9001, "PublicPort": 9001, "Type": "udp"},
    ]
    assert fmt.display_ports(ports) == (
        "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 443/tcp, 0.0.0.0:9000-9001->9000-9001/udp")
    assert fmt.display_ports([]) == ""


def test_container_status_from_state():
    now = 1_700_000_000
    running = {"Running": True, "StartedAt": "2023-11-14T22:13:17.123456789Z"}
    assert fmt.container_status(running, now) == "Up 2 seconds"  # 2.88 s
    exited = {"Running": False, "ExitCode": 3, "StartedAt": "2023-11-14T22:00:00Z",
              "FinishedAt": "2023-11-14T22:11:20Z"}
    assert fmt.container_status(exited, now) == "Exited (3) 2 minutes ago"
    created = {"Running": False, "StartedAt": "0001-01-01T00:00:00Z",
               "FinishedAt": "0001-01-01T00:00:00Z"}
    assert fmt.container_status(created, now) == "Created"


def test_parse_rfc3339():
    assert fmt.parse_rfc3339("1970-01-01T00:01:00Z") == 60
    assert fmt.parse_rfc3339("1970-01-01T01:00:00.5+01:00") == 0.5
    assert fmt.parse_rfc3339("0001-01-01T00:00:00Z") is None


# -- templates -------------------------------------------------------------------------------


def test_template_fields_functions_and_values():
    data = {"Id": "abc", "State": {"Status": "running", "Pid": 42, "Running": True},
            "Config": {"Env": ["A=1", "B=2"], "Labels": {"k": "v"}}, "Missing": None}
    assert template.render("{{.State.Status}} {{.State.Pid}} {{.State.Running}}", data) == \
        "running 42 true"
    assert template.render("{{json .Config.Labels}}", data) == '{"k":"v"}'
    assert template.render('{{index .Config.Labels "k"}}', data) == "v"
    assert template.render('{{join .Config.Env ","}}', data) == "A=1,B=2"
    assert template.render("{{.Config.Env}} {{.Config.Labels}}", data) == \
        "[A=1 B=2] map[k:v]"
    assert template.render("{{.Nope}}", data) == "<no value>"
    assert template.render("{{upper .Id}}", data) == "ABC"
    with pytest.raises(template.TemplateError):
        template.render("{{nosuchfunc .Id}}", data)


# -- progress --------------------------------------------------------------------------------

PULL = [
    {"status": "Pulling from library/busybox", "id": "latest"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "a1b2"},
    {"status": "Downloading", "progressDetail": {"current": 1000, "total": 2000},
     "progress": "[=====>    ]", "id": "a1b2"},
    {"status": "Download complete", "progressDetail": {}, "id": "a1b2"},
    {"status": "Pull complete", "progressDetail": {}, "id": "a1b2"},
    {"status": "Digest: sha256:abc"},
    {"status": "Status: Downloaded newer image for busybox:latest"},
]


def test_progress_off_a_terminal_skips_bars():
    out = io.StringIO()
    render_stream(PULL, out, is_terminal=False)
    assert out.getvalue() == (
        "latest: Pulling from library/busybox\n"
        "a1b2: Pulling fs layer\n"
        "a1b2: Download complete\n"
        "a1b2: Pull complete\n"
        "Digest: sha256:abc\n"
        "Status: Downloaded newer image for busybox:latest\n")


def test_progress_on_a_terminal_rewrites_lines():
    out = io.StringIO()
    render_stream(PULL[:4], out, is_terminal=True, width=120)
    text = out.getvalue()
    assert "\x1b[1A" in text and "\x1b[2K\r" in text
    assert "[=========================>                         ]" in text
    assert "1kB/2kB" in text


def test_progress_bar_width():
    assert progress_bar({"current": 1000, "total": 2000}, 80) == "     1kB/2kB"
    assert progress_bar({}, 200) == ""


def test_stream_messages_and_errors():
    out = io.StringIO()
    aux = render_stream([{"stream": "Loaded image: busybox:latest\n"}, {"aux": {"ID": "x"}}],
                        out, False)
    assert out.getvalue() == "Loaded image: busybox:latest\n" and aux == [{"ID": "x"}]
    with pytest.raises(StreamError) as info:
        ProgressRenderer(io.StringIO(), False).feed(
            {"errorDetail": {"message": "manifest unknown"}, "error": "manifest unknown"})
    assert info.value.message == "manifest unknown"
