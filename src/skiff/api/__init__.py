"""api/: skiffd, the Docker Engine API server (and skiff's /skiff/ extensions later).

Owns: HTTP (h11 on asyncio, with hijacked connections), routing, version prefixes, mapping
`skiff.errors` to Docker's status codes and error bodies. Imports engine/, oci/, wire/ only.
"""
