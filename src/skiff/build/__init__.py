"""build/: the Dockerfile frontend and the build context, below the engine.

Owns: the Dockerfile language (dockerfile.py: text -> instructions; expand.py: variable
substitution; plan.py: stages, global ARGs, --target; steps.py: what metadata instructions do
to an image config, with docker's history text), the context on the daemon's side
(context.py: sources of COPY/ADD, content digests, copying into a layer directory;
context_store.py: contexts kept between builds for incremental transfers). The matcher of
.dockerignore is the top-level skiff/dockerignore.py, since the CLI uses it too.

Imports oci/, store/ and snapshot/ only; the builder that runs steps in containers and
records images is engine/builder.py, which uses this package.
"""
