"""The Docker Engine API's wire formats, shared by api/ (server) and client/ - sans-IO.

Owns: stdout/stderr stream framing (`framing`), API versions and their negotiation
(`version`), JSON progress messages and the JSON-stream decoder (`progress`), the error
body and `ProtocolError` (`errors`), the `filters` query parameter (`filters`), and JSON
through the C codec without the `json` package's imports (`jsonfast`).

Rules: bytes or text in, values or events out; no I/O (no sockets, files or event
loops). Every decoder names a limit on what it buffers and raises `ProtocolError` (saying
that the remote side broke the protocol) beyond it. Imports nothing of skiff except
`skiff.errors`.
"""
