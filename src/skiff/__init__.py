"""skiff: a container engine that speaks Docker's language.

Layers (see ../shared/DESIGN.md): cli/ -> client/ -> api/ -> engine/ -> {registry, build,
network, monitor, snapshot, store, runtime} -> {oci, wire, linux}. Top-level helper modules
(errors.py, config.py) may be used by every layer.
"""

__version__ = "0.1.0"
