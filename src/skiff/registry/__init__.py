"""registry/: the OCI distribution client (pull, push, auth) that engine/ drives.

Owns the wire side of registries: which host serves a reference (`docker.io` ->
`registry-1.docker.io`), the transport (HTTPS by default, `certs.d/HOST:PORT/` CA and client
certificates, plain HTTP only for insecure registries and loopback), authentication from
`WWW-Authenticate` challenges (bearer tokens per repository scope, basic auth), manifests and
indexes (Docker schema 2, OCI) with platform selection, and blob transfer: downloads streamed
into the ContentStore (which verifies digest and size while it writes), resumed with HTTP
ranges after a broken connection, retried with back-off; uploads (monolithic).

Pure parts, unit-tested without sockets: `auth` (challenges, scopes, token answers,
credentials in docker's config.json), `manifest` (media types, Accept header, platform
selection, registry error bodies), `hosts` (reference -> endpoint).
I/O: `client.RegistryClient` (http.client; one connection per thread and host).

May import: oci/, store/ (the ContentStore it ingests into), skiff.errors. Never engine/, api/,
cli/.
"""
