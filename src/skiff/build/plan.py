"""From a parsed Dockerfile to the stages a build must run: pure, unit-tested as values.

    plan = plan_build(parse(text), build_args={"V": "2"}, target="app")
    plan.stages        -> [Stage(index=0, name="base", base="busybox", ...), Stage(1, "app", ...)]
    plan.needed        -> [0, 1]    # stages the target depends on, in order (others skipped)

What it decides, as docker does:
  - global ARGs (before the first FROM) and their defaults, `--build-arg` overrides; they are
    usable in FROM lines, and inside a stage only after an `ARG NAME` re-declares them;
  - FROM's image after expansion; `scratch`; a FROM naming an earlier stage (by name or
    index) makes that stage its base;
  - `COPY --from=NAME` dependencies (a name that is no stage is an image);
  - `--target` (unknown: "failed to reach build target X in Dockerfile").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from skiff.build.dockerfile import DockerfileError, Dockerfile, Instruction
from skiff.build.expand import ExpansionError, expand_word

# Predefined ARGs: usable without an ARG line, and left out of the image's history (docker's
# "builtin" args).
PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
              "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")


@dataclass
class Stage:
    index: int
    name: str                         # "" when unnamed
    base: str                         # expanded FROM argument (image, "scratch" or a stage)
    base_stage: int | None            # index of the stage it starts from
    from_instruction: Instruction
    instructions: list[Instruction] = field(default_factory=list)
    platform: str = ""
    copy_from: set[int] = field(default_factory=set)   # stages COPY --from uses

    @property
    def label(self) -> str:
        return self.name or str(self.index)


@dataclass
class BuildPlan:
    stages: list[Stage]
    needed: list[int]                 # stage indexes to build, dependencies first
    global_args: dict[str, str | None]   # declared before the first FROM (values resolved)
    meta_args: list[Instruction]


def _expand(text: str, env: dict, escape: str, line: int) -> str:
    try:
        return expand_word(text, env, escape)
    except ExpansionError as e:
        raise DockerfileError(str(e), line) from None


def plan_build(df: Dockerfile, build_args: dict[str, str | None] | None = None,
               target: str = "") -> BuildPlan:
    build_args = dict(build_args or {})
    global_args: dict[str, str | None] = {}
    meta: list[Instruction] = []
    stages: list[Stage] = []
    by_name: dict[str, int] = {}
    for inst in df.instructions:
        if inst.cmd == "from":
            env = {k: v for k, v in global_args.items() if v is not None}
            base = _expand(inst.args[0], env, df.escape, inst.line)
            platform = _expand(str(inst.flags.get("platform", "")), env, df.escape, inst.line)
            if not base:
                raise DockerfileError("base name (${" + inst.args[0].strip("${}") +
                                      "}) should not be blank", inst.line)
            name = inst.args[1] if len(inst.args) > 1 else ""
            if name and name in by_name:
                raise DockerfileError(f"duplicate stage name \"{name}\"", inst.line)
            base_stage = by_name.get(base.lower())
            if base_stage is None and base.isdigit() and int(base) < len(stages):
                base_stage = int(base)
            stage = Stage(index=len(stages), name=name, base=base, base_stage=base_stage,
                          from_instruction=inst, platform=platform)
            stages.append(stage)
            if name:
                by_name[name] = stage.index
        elif not stages:
            if inst.cmd != "arg":
                raise DockerfileError("no build stage in current context" if inst.cmd != "from"
                                      else "", inst.line)
            meta.append(inst)
            for word in inst.args:
                key, eq, value = word.partition("=")
                env = {k: v for k, v in global_args.items() if v is not None}
                default = _expand(value, env, df.escape, inst.line) if eq else None
                global_args[key] = build_args[key] if key in build_args and \
                    build_args[key] is not None else default
        else:
            stage = stages[-1]
            stage.instructions.append(inst)
            if inst.cmd == "copy" and inst.flags.get("from"):
                source = str(inst.flags["from"]).lower()
                if source in by_name:
                    stage.copy_from.add(by_name[source])
                elif source.isdigit():
                    if int(source) >= stage.index:
                        raise DockerfileError(f"invalid from flag value {source}: refers to "
                                              f"current or future build stage", inst.line)
                    stage.copy_from.add(int(source))
    if not stages:
        raise DockerfileError("file with no instructions" if not df.instructions else
                              "no build stage in current context")
    if target:
        wanted = by_name.get(target.lower())
        if wanted is None:
            raise DockerfileError(f"failed to reach build target {target} in Dockerfile")
    else:
        wanted = len(stages) - 1
    needed: list[int] = []

    def visit(index: int, path: tuple[int, ...]) -> None:
        if index in needed:
            return
        stage = stages[index]
        deps = set(stage.copy_from)
        if stage.base_stage is not None:
            deps.add(stage.base_stage)
        for dep in sorted(deps):
            if dep in path or dep >= index and dep == index:
                raise DockerfileError("circular dependency detected on stage: " +
                                      stages[dep].label, stage.from_instruction.line)
            visit(dep, path + (index,))
        needed.append(index)

    visit(wanted, ())
    return BuildPlan(stages=stages, needed=needed, global_args=global_args, meta_args=meta)
