"""The `skiff` command: a client of the Docker Engine API, like the docker CLI, so that it works
against skiffd and against a real dockerd alike.

Owns: command-line parsing with docker's rules and messages (flags.py, spec.py), the mapping of
each command to the API calls the docker CLI makes (commands/), docker's output formats
(format.py, template.py, progress.py), the local end of attached containers (attach.py) and
starting skiffd when the default socket is silent and we are root (autostart.py).

Must not import: engine/, api/ or anything below them; only client/, oci/, wire/ and
skiff.errors. Start-up time counts in every command: modules import lazily, and the hot path
(`ps`, `run`) loads no module it does not use.

Layout:
    main.py        entry point (`skiff.cli.main:main`): global flags, dispatch, errors -> exit status
    spec.py        every command's usage, flags and handler, as data
    flags.py       pflag-compatible parser, usage errors, --help text
    context.py     `Cli` (host, lazily connected client, stdio) and `StatusError`
    autostart.py   start skiffd detached and wait for /_ping
    config.py      run/create flags -> POST /containers/create body (pure)
    refs.py        image references for pull (`fromImage`/`tag`) and messages
    format.py      durations, sizes, tables, ids, ports (pure)
    template.py    the `--format` subset of Go templates
    progress.py    JSON progress stream rendering
    attach.py      stdio <-> hijacked stream pump, raw terminal, SIGWINCH, signal proxy
    commands/      run.py (run, create, start), containers.py, images.py, system.py
"""
