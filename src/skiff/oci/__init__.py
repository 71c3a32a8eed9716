"""Pure data of the OCI and Docker image and runtime specifications.

Owns: image references and their Docker normalisation (`reference`), content digests and
streaming verification (`digest`), descriptors, manifests, indexes and image configs
(`image`), the `Mount` hand-off between snapshot/ and runtime/ (`mount`), and runtime-spec
`config.json` defaults and helpers (`spec`, with `capabilities` and `users` behind it).

Rules: no I/O (no files, no sockets, no subprocesses) - callers pass bytes and text in and
get values back. Imports nothing of skiff except `skiff.errors`; every invalid input raises
`skiff.errors.InvalidArgument` with Docker's wording where Docker has one.
"""
