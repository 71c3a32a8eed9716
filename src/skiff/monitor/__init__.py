"""monitor/: the parent of containers' inits (`skiff-monitor`) and skiffd's client for it.

Owns: container stdio (pipes or a pty master), json-file logs, reaping and exit records
(`exit.json`), and surviving skiffd. Imports only oci/, linux/, runtime/ and skiff.errors.
"""
