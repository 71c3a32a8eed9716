"""Every command's usage line, flags and handler: the whole command line as data.

Handlers are "module:function" strings, imported only when their command runs, so that
`skiff ps` does not pay for `run`'s terminal handling.
"""

from __future__ import annotations

from skiff.cli.flags import BOOL, INT, LIST, STRING, Command, Flag

_C = "skiff.cli.commands."

# -- container create / run ------------------------------------------------------------------

CREATE_FLAGS = [
    Flag("add-host", "", LIST, help="Add a custom host-to-IP mapping (host:ip)", metavar="list"),
    Flag("cap-add", "", LIST, help="Add Linux capabilities", metavar="list"),
    Flag("cap-drop", "", LIST, help="Drop Linux capabilities", metavar="list"),
    Flag("entrypoint", "", STRING, help="Overwrite the default ENTRYPOINT of the image"),
    Flag("env", "e", LIST, help="Set environment variables", metavar="list"),
    Flag("env-file", "", LIST, help="Read in a file of environment variables", metavar="list"),
    Flag("expose", "", LIST, help="Expose a port or a range of ports", metavar="list"),
    Flag("health-cmd", "", STRING, help="Command to run to check health"),
    Flag("health-interval", "", STRING, help="Time between running the check (ms|s|m|h)",
         metavar="duration"),
    Flag("health-retries", "", INT, help="Consecutive failures needed to report unhealthy"),
    Flag("health-start-period", "", STRING,
         help="Start period for the container to initialize before counting failures",
         metavar="duration"),
    Flag("health-timeout", "", STRING,
         help="Maximum time to allow one check to run (ms|s|m|h)", metavar="duration"),
    Flag("hostname", "h", STRING, help="Container host name"),
    Flag("init", "", BOOL,
         help="Run an init inside the container that forwards signals and reaps processes"),
    Flag("interactive", "i", BOOL, help="Keep STDIN open even if not attached"),
    Flag("label", "l", LIST, help="Set meta data on a container", metavar="list"),
    Flag("log-driver", "", STRING, help="Logging driver for the container (json-file, none)",
         metavar="string"),
    Flag("log-opt", "", LIST, help="Log driver options (max-size, max-file, labels, "
         "labels-regex, env, env-regex)", metavar="list"),
    Flag("memory", "m", STRING, help="Memory limit", metavar="bytes"),
    Flag("name", "", STRING, help="Assign a name to the container"),
    Flag("no-healthcheck", "", BOOL, help="Disable any container-specified HEALTHCHECK"),
    Flag("network", "", LIST, help="Connect a container to a network (repeatable: the "
         "first is its network mode, the others are joined too)", metavar="network"),
    Flag("platform", "", STRING, help="Set platform if server is multi-platform capable"),
    Flag("privileged", "", BOOL, help="Give extended privileges to this container"),
    Flag("publish", "p", LIST, help="Publish a container's port(s) to the host", metavar="list"),
    Flag("publish-all", "P", BOOL, help="Publish all exposed ports to random ports"),
    Flag("pull", "", STRING, "missing",
         help='Pull image before running ("always", "missing", "never")'),
    Flag("quiet", "q", BOOL, help="Suppress the pull output"),
    Flag("read-only", "", BOOL, help="Mount the container's root filesystem as read only"),
    Flag("runtime", "", STRING, help="Runtime to use for this container"),
    Flag("userns", "", STRING, help="User namespace to use"),
    Flag("restart", "", STRING, "no", help="Restart policy to apply when a container exits"),
    Flag("rm", "", BOOL,
         help="Automatically remove the container and its associated anonymous volumes when "
              "it exits"),
    Flag("stop-signal", "", STRING, help="Signal to stop the container"),
    Flag("stop-timeout", "", INT, help="Timeout (in seconds) to stop a container"),
    Flag("tmpfs", "", LIST, help="Mount a tmpfs directory", metavar="list"),
    Flag("tty", "t", BOOL, help="Allocate a pseudo-TTY"),
    Flag("user", "u", STRING,
         help="Username or UID (format: <name|uid>[:<group|gid>])"),
    Flag("volume", "v", LIST, help="Bind mount a volume", metavar="list"),
    Flag("workdir", "w", STRING, help="Working directory inside the container"),
]

# resources and security (HostConfig fields; translated by skiff.engine.hostconfig)
CREATE_FLAGS = sorted(CREATE_FLAGS + [
    Flag("blkio-weight", "", INT, help="Block IO (relative weight), between 10 and 1000, "
         "or 0 to disable (default 0)", metavar="uint16"),
    Flag("blkio-weight-device", "", LIST, help="Block IO weight (relative device weight)",
         metavar="list"),
    Flag("cpu-period", "", INT, help="Limit CPU CFS (Completely Fair Scheduler) period"),
    Flag("cpu-quota", "", INT, help="Limit CPU CFS (Completely Fair Scheduler) quota"),
    Flag("cpu-shares", "c", INT, help="CPU shares (relative weight)"),
    Flag("cpus", "", STRING, help="Number of CPUs", metavar="decimal"),
    Flag("cpuset-cpus", "", STRING, help="CPUs in which to allow execution (0-3, 0,1)"),
    Flag("cpuset-mems", "", STRING, help="MEMs in which to allow execution (0-3, 0,1)"),
    Flag("device", "", LIST, help="Add a host device to the container", metavar="list"),
    Flag("device-cgroup-rule", "", LIST, help="Add a rule to the cgroup allowed devices list",
         metavar="list"),
    Flag("device-read-bps", "", LIST, help="Limit read rate (bytes per second) from a device",
         metavar="list"),
    Flag("device-read-iops", "", LIST, help="Limit read rate (IO per second) from a device",
         metavar="list"),
    Flag("device-write-bps", "", LIST, help="Limit write rate (bytes per second) to a device",
         metavar="list"),
    Flag("device-write-iops", "", LIST, help="Limit write rate (IO per second) to a device",
         metavar="list"),
    Flag("group-add", "", LIST, help="Add additional groups to join", metavar="list"),
    Flag("ipc", "", STRING, help="IPC mode to use"),
    Flag("memory-reservation", "", STRING, help="Memory soft limit", metavar="bytes"),
    Flag("memory-swap", "", STRING, help="Swap limit equal to memory plus swap: '-1' to enable "
         "unlimited swap", metavar="bytes"),
    Flag("memory-swappiness", "", INT, -1, help="Tune container memory swappiness (0 to 100)"),
    Flag("oom-kill-disable", "", BOOL, help="Disable OOM Killer"),
    Flag("oom-score-adj", "", INT, help="Tune host's OOM preferences (-1000 to 1000)"),
    Flag("pid", "", STRING, help="PID namespace to use"),
    Flag("pids-limit", "", INT, help="Tune container pids limit (set -1 for unlimited)"),
    Flag("security-opt", "", LIST, help="Security Options", metavar="list"),
    Flag("shm-size", "", STRING, help="Size of /dev/shm", metavar="bytes"),
    Flag("sysctl", "", LIST, help="Sysctl options", metavar="map"),
    Flag("ulimit", "", LIST, help="Ulimit options", metavar="ulimit"),
    Flag("uts", "", STRING, help="UTS namespace to use"),
], key=lambda f: f.long)

# volumes and mounts (`-v` is above)
CREATE_FLAGS = sorted(CREATE_FLAGS + [
    Flag("mount", "", LIST, help="Attach a filesystem mount to the container", metavar="mount"),
    Flag("volumes-from", "", LIST, help="Mount volumes from the specified container(s)",
         metavar="list"),
], key=lambda f: f.long)

# networking (--network, -p, -P, --add-host, --expose and --hostname are above)
CREATE_FLAGS = sorted(CREATE_FLAGS + [
    Flag("dns", "", LIST, help="Set custom DNS servers", metavar="list"),
    Flag("dns-option", "", LIST, help="Set DNS options", metavar="list"),
    Flag("dns-search", "", LIST, help="Set custom DNS search domains", metavar="list"),
    Flag("domainname", "", STRING, help="Container NIS domain name"),
    Flag("ip", "", STRING, help="IPv4 address (e.g., 172.30.100.104)"),
    Flag("mac-address", "", STRING, help="Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
    Flag("network-alias", "", LIST, help="Add network-scoped alias for the container",
         metavar="list"),
], key=lambda f: f.long)

RUN_FLAGS = sorted(
    CREATE_FLAGS
    + [
        Flag("detach", "d", BOOL, help="Run container in background and print container ID"),
        Flag("detach-keys", "", STRING, help="Override the key sequence for detaching a container"),
        Flag("sig-proxy", "", BOOL, True, help="Proxy received signals to the process"),
    ],
    key=lambda f: f.long,
)

COMMANDS: list[Command] = [
    Command("run", "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
            "Create and run a new container from an image", _C + "run:cmd_run",
            RUN_FLAGS, min_args=1, interspersed=False,
            aliases=("container run", "run")),
    Command("create", "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
            "Create a new container", _C + "run:cmd_create",
            CREATE_FLAGS, min_args=1, interspersed=False,
            aliases=("container create", "create")),
    Command("start", "start [OPTIONS] CONTAINER [CONTAINER...]",
            "Start one or more stopped containers", _C + "run:cmd_start",
            [
                Flag("attach", "a", BOOL, help="Attach STDOUT/STDERR and forward signals"),
                Flag("detach-keys", "", STRING,
                     help="Override the key sequence for detaching a container"),
                Flag("interactive", "i", BOOL, help="Attach container's STDIN"),
            ], min_args=1, aliases=("container start", "start")),
    Command("ps", "ps [OPTIONS]", "List containers", _C + "containers:cmd_ps",
            [
                Flag("all", "a", BOOL, help="Show all containers (default shows just running)"),
                Flag("filter", "f", LIST, help="Filter output based on conditions provided",
                     metavar="filter"),
                Flag("format", "", STRING,
                     help="Format output using a template ('table', 'table TEMPLATE', 'json' "
                          "or 'TEMPLATE' with {{.Field}} placeholders)"),
                Flag("last", "n", INT, -1,
                     help="Show n last created containers (includes all states)"),
                Flag("latest", "l", BOOL,
                     help="Show the latest created container (includes all states)"),
                Flag("no-trunc", "", BOOL, help="Don't truncate output"),
                Flag("quiet", "q", BOOL, help="Only display container IDs"),
                Flag("size", "s", BOOL, help="Display total file sizes"),
            ], max_args=0,
            aliases=("container ls", "container list", "container ps", "ps")),
    Command("rm", "rm [OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
            _C + "containers:cmd_rm",
            [
                Flag("force", "f", BOOL,
                     help="Force the removal of a running container (uses SIGKILL)"),
                Flag("link", "l", BOOL, help="Remove the specified link"),
                Flag("volumes", "v", BOOL,
                     help="Remove anonymous volumes associated with the container"),
            ], min_args=1, aliases=("container rm", "container remove", "rm")),
    Command("logs", "logs [OPTIONS] CONTAINER", "Fetch the logs of a container",
            _C + "containers:cmd_logs",
            [
                Flag("details", "", BOOL, help="Show extra details provided to logs"),
                Flag("follow", "f", BOOL, help="Follow log output"),
                Flag("since", "", STRING,
                     help='Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative '
                          '(e.g. "42m" for 42 minutes)'),
                Flag("tail", "n", STRING, "all",
                     help="Number of lines to show from the end of the logs"),
                Flag("timestamps", "t", BOOL, help="Show timestamps"),
                Flag("until", "", STRING,
                     help='Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or '
                          'relative (e.g. "42m" for 42 minutes)'),
            ], min_args=1, max_args=1, aliases=("container logs", "logs")),
    Command("wait", "wait CONTAINER [CONTAINER...]",
            "Block until one or more containers stop, then print their exit codes",
            _C + "containers:cmd_wait", [], min_args=1, aliases=("container wait", "wait")),
    Command("stop", "stop [OPTIONS] CONTAINER [CONTAINER...]",
            "Stop one or more running containers", _C + "containers:cmd_stop",
            [
                Flag("signal", "s", STRING, help="Signal to send to the container"),
                Flag("timeout", "t", INT,
                     help="Seconds to wait before killing the container"),
            ], min_args=1, aliases=("container stop", "stop")),
    Command("kill", "kill [OPTIONS] CONTAINER [CONTAINER...]",
            "Kill one or more running containers", _C + "containers:cmd_kill",
            [Flag("signal", "s", STRING, help="Signal to send to the container")],
            min_args=1, aliases=("container kill", "kill")),
    Command("restart", "restart [OPTIONS] CONTAINER [CONTAINER...]",
            "Restart one or more containers", _C + "lifecycle:cmd_restart",
            [
                Flag("signal", "s", STRING, help="Signal to send to the container"),
                Flag("timeout", "t", INT,
                     help="Seconds to wait before killing the container"),
            ], min_args=1, aliases=("container restart", "restart")),
    Command("rename", "rename CONTAINER NEW_NAME", "Rename a container",
            _C + "lifecycle:cmd_rename", [], min_args=2, max_args=2,
            aliases=("container rename", "rename")),
    Command("container prune", "container prune [OPTIONS]", "Remove all stopped containers",
            _C + "lifecycle:cmd_container_prune",
            [
                Flag("filter", "", LIST, help='Provide filter values (e.g. "until=<timestamp>")',
                     metavar="filter"),
                Flag("force", "f", BOOL, help="Do not prompt for confirmation"),
            ], max_args=0, aliases=("container prune",)),
    Command("attach", "attach [OPTIONS] CONTAINER",
            "Attach local standard input, output, and error streams to a running container",
            _C + "lifecycle:cmd_attach",
            [
                Flag("detach-keys", "", STRING,
                     help="Override the key sequence for detaching a container"),
                Flag("no-stdin", "", BOOL, help="Do not attach STDIN"),
                Flag("sig-proxy", "", BOOL, True,
                     help="Proxy all received signals to the process"),
            ], min_args=1, max_args=1, aliases=("container attach", "attach")),
    Command("events", "events [OPTIONS]", "Get real time events from the server",
            _C + "lifecycle:cmd_events",
            [
                Flag("filter", "f", LIST, help="Filter output based on conditions provided",
                     metavar="filter"),
                Flag("format", "", STRING, help="Format output using a custom template"),
                Flag("since", "", STRING, help="Show all events created since timestamp"),
                Flag("until", "", STRING, help="Stream events until this timestamp"),
            ], max_args=0, aliases=("system events", "events")),
    Command("stats", "stats [OPTIONS] [CONTAINER...]",
            "Display a live stream of container(s) resource usage statistics",
            _C + "lifecycle:cmd_stats",
            [
                Flag("all", "a", BOOL, help="Show all containers (default shows just running)"),
                Flag("no-stream", "", BOOL,
                     help="Disable streaming stats and only pull the first result"),
            ], aliases=("container stats", "stats")),
    Command("inspect", "inspect [OPTIONS] NAME|ID [NAME|ID...]",
            "Return low-level information on containers, images, networks and volumes", _C + "system:cmd_inspect",
            [
                Flag("format", "f", STRING,
                     help="Format output using a template ({{.Field.Sub}}, {{json .Field}})"),
                Flag("size", "s", BOOL, help="Display total file sizes if the type is container"),
                Flag("type", "", STRING, help="Only inspect objects of the given type"),
            ], min_args=1),
    Command("images", "images [OPTIONS] [REPOSITORY[:TAG]]", "List images",
            _C + "images:cmd_images",
            [
                Flag("all", "a", BOOL,
                     help="Show all images (default hides intermediate images)"),
                Flag("digests", "", BOOL, help="Show digests"),
                Flag("filter", "f", LIST, help="Filter output based on conditions provided",
                     metavar="filter"),
                Flag("format", "", STRING,
                     help="Format output using a template ('table', 'json' or 'TEMPLATE')"),
                Flag("no-trunc", "", BOOL, help="Don't truncate output"),
                Flag("quiet", "q", BOOL, help="Only show image IDs"),
            ], max_args=1, aliases=("image ls", "image list", "images")),
    Command("load", "load [OPTIONS]", "Load an image from a tar archive or STDIN",
            _C + "images:cmd_load",
            [
                Flag("input", "i", STRING,
                     help="Read from tar archive file, instead of STDIN"),
                Flag("quiet", "q", BOOL, help="Suppress the load output"),
            ], max_args=0, aliases=("image load", "load")),
    Command("rmi", "rmi [OPTIONS] IMAGE [IMAGE...]", "Remove one or more images",
            _C + "images:cmd_rmi",
            [
                Flag("force", "f", BOOL, help="Force removal of the image"),
                Flag("no-prune", "", BOOL, help="Do not delete untagged parents"),
            ], min_args=1, aliases=("image rm", "image remove", "rmi")),
    Command("pull", "pull [OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry",
            _C + "images:cmd_pull",
            [
                Flag("all-tags", "a", BOOL, help="Download all tagged images in the repository"),
                Flag("platform", "", STRING, help="Set platform if server is multi-platform capable"),
                Flag("quiet", "q", BOOL, help="Suppress verbose output"),
            ], min_args=1, max_args=1, aliases=("image pull", "pull")),
    Command("push", "push [OPTIONS] NAME[:TAG]", "Upload an image to a registry",
            _C + "registry:cmd_push",
            [
                Flag("all-tags", "a", BOOL, help="Push all tags of an image to the repository"),
                Flag("quiet", "q", BOOL, help="Suppress verbose output"),
            ], min_args=1, max_args=1, aliases=("image push", "push")),
    Command("login", "login [OPTIONS] [SERVER]", "Log in to a registry",
            _C + "registry:cmd_login",
            [
                Flag("password", "p", STRING, help="Password"),
                Flag("password-stdin", "", BOOL, help="Take the password from stdin"),
                Flag("username", "u", STRING, help="Username"),
            ], max_args=1),
    Command("logout", "logout [SERVER]", "Log out from a registry",
            _C + "registry:cmd_logout", [], max_args=1),
    Command("commit", "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
            "Create a new image from a container's changes", _C + "images:cmd_commit",
            [
                Flag("author", "a", STRING,
                     help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")'),
                Flag("change", "c", LIST, help="Apply Dockerfile instruction to the created "
                     "image", metavar="list"),
                Flag("message", "m", STRING, help="Commit message"),
                Flag("pause", "p", BOOL, True, help="Pause container during commit"),
            ], min_args=1, max_args=2, aliases=("container commit", "commit")),
    Command("diff", "diff CONTAINER",
            "Inspect changes to files or directories on a container's filesystem",
            _C + "images:cmd_diff", [], min_args=1, max_args=1,
            aliases=("container diff", "diff")),
    Command("cp", "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n"
            "       skiff cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
            "Copy files/folders between a container and the local filesystem\n\n"
            "Use '-' as the source to read a tar archive from stdin and extract it to a "
            "directory destination in a container.\nUse '-' as the destination to stream a "
            "tar archive of a container source to stdout.", _C + "cp:cmd_cp",
            [Flag("archive", "a", BOOL, help="Archive mode (copy all uid/gid information)"),
             Flag("follow-link", "L", BOOL, help="Always follow symbol link in SRC_PATH"),
             Flag("quiet", "q", BOOL,
                  help="Suppress progress output during copy. Progress output is "
                       "automatically suppressed if no terminal is attached")],
            min_args=2, max_args=2, aliases=("container cp", "cp")),
    Command("export", "export [OPTIONS] CONTAINER",
            "Export a container's filesystem as a tar archive", _C + "images:cmd_export",
            [Flag("output", "o", STRING, help="Write to a file, instead of STDOUT")],
            min_args=1, max_args=1, aliases=("container export", "export")),
    Command("exec", "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
            "Execute a command in a running container", _C + "exec:cmd_exec",
            [
                Flag("detach", "d", BOOL, help="Detached mode: run command in the background"),
                Flag("detach-keys", "", STRING,
                     help="Override the key sequence for detaching a container"),
                Flag("env", "e", LIST, help="Set environment variables", metavar="list"),
                Flag("env-file", "", LIST, help="Read in a file of environment variables",
                     metavar="list"),
                Flag("interactive", "i", BOOL, help="Keep STDIN open even if not attached"),
                Flag("privileged", "", BOOL,
                     help="Give extended privileges to the command"),
                Flag("tty", "t", BOOL, help="Allocate a pseudo-TTY"),
                Flag("user", "u", STRING,
                     help='Username or UID (format: "<name|uid>[:<group|gid>]")'),
                Flag("workdir", "w", STRING, help="Working directory inside the container"),
            ], min_args=2, interspersed=False, aliases=("container exec", "exec")),
    Command("top", "top CONTAINER [ps OPTIONS]",
            "Display the running processes of a container", _C + "exec:cmd_top", [],
            min_args=1, interspersed=False, aliases=("container top", "top")),
    Command("update", "update [OPTIONS] CONTAINER [CONTAINER...]",
            "Update configuration of one or more containers", _C + "update:cmd_update",
            [
                Flag("blkio-weight", "", INT, help="Block IO (relative weight), between 10 "
                     "and 1000, or 0 to disable (default 0)", metavar="uint16"),
                Flag("cpu-period", "", INT, help="Limit CPU CFS (Completely Fair Scheduler) "
                     "period"),
                Flag("cpu-quota", "", INT, help="Limit CPU CFS (Completely Fair Scheduler) "
                     "quota"),
                Flag("cpu-shares", "c", INT, help="CPU shares (relative weight)"),
                Flag("cpus", "", STRING, help="Number of CPUs", metavar="decimal"),
                Flag("cpuset-cpus", "", STRING,
                     help="CPUs in which to allow execution (0-3, 0,1)"),
                Flag("cpuset-mems", "", STRING,
                     help="MEMs in which to allow execution (0-3, 0,1)"),
                Flag("memory", "m", STRING, help="Memory limit", metavar="bytes"),
                Flag("memory-reservation", "", STRING, help="Memory soft limit",
                     metavar="bytes"),
                Flag("memory-swap", "", STRING, help="Swap limit equal to memory plus swap: "
                     "-1 to enable unlimited swap", metavar="bytes"),
                Flag("pids-limit", "", INT,
                     help="Tune container pids limit (set -1 for unlimited)"),
                Flag("restart", "", STRING,
                     help="Restart policy to apply when a container exits"),
            ], min_args=1, aliases=("container update", "update")),
    Command("pause", "pause CONTAINER [CONTAINER...]",
            "Pause all processes within one or more containers", _C + "exec:cmd_pause", [],
            min_args=1, aliases=("container pause", "pause")),
    Command("unpause", "unpause CONTAINER [CONTAINER...]",
            "Unpause all processes within one or more containers", _C + "exec:cmd_unpause",
            [], min_args=1, aliases=("container unpause", "unpause")),
    Command("save", "save [OPTIONS] IMAGE [IMAGE...]",
            "Save one or more images to a tar archive (streamed to STDOUT by default)",
            _C + "images:cmd_save",
            [Flag("output", "o", STRING, help="Write to a file, instead of STDOUT")],
            min_args=1, aliases=("image save", "save")),
    Command("tag", "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
            "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", _C + "images:cmd_tag",
            [], min_args=2, max_args=2, aliases=("image tag", "tag")),
    Command("history", "history [OPTIONS] IMAGE", "Show the history of an image",
            _C + "images:cmd_history",
            [
                Flag("format", "", STRING,
                     help="Format output using a template ('table', 'json' or 'TEMPLATE')"),
                Flag("human", "H", BOOL, True,
                     help="Print sizes and dates in human readable format"),
                Flag("no-trunc", "", BOOL, help="Don't truncate output"),
                Flag("quiet", "q", BOOL, help="Only show image IDs"),
            ], min_args=1, max_args=1, aliases=("image history", "history")),
    Command("image prune", "image prune [OPTIONS]", "Remove unused images",
            _C + "images:cmd_image_prune",
            [
                Flag("all", "a", BOOL, help="Remove all unused images, not just dangling ones"),
                Flag("filter", "", LIST, help='Provide filter values (e.g. "until=<timestamp>")',
                     metavar="filter"),
                Flag("force", "f", BOOL, help="Do not prompt for confirmation"),
            ], max_args=0, aliases=("image prune",)),
    Command("import", "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
            "Import the contents from a tarball to create a filesystem image",
            _C + "images:cmd_import",
            [
                Flag("change", "c", LIST, help="Apply Dockerfile instruction to the created "
                     "image", metavar="list"),
                Flag("message", "m", STRING, help="Set commit message for imported image"),
            ], min_args=1, max_args=2, aliases=("image import", "import")),
    Command("system df", "system df [OPTIONS]", "Show skiff disk usage",
            _C + "images:cmd_system_df",
            [Flag("format", "", STRING,
                  help="Format output using a template ('table', 'json' or 'TEMPLATE')"),
             Flag("verbose", "v", BOOL, help="Show detailed information on space usage")],
            max_args=0, aliases=("system df",)),
    Command("system prune", "system prune [OPTIONS]", "Remove unused data",
            _C + "prune:cmd_system_prune",
            [
                Flag("all", "a", BOOL, help="Remove all unused images not just dangling ones"),
                Flag("filter", "", LIST, help='Provide filter values (e.g. "label=<key>=<value>")',
                     metavar="filter"),
                Flag("force", "f", BOOL, help="Do not prompt for confirmation"),
                Flag("volumes", "", BOOL, help="Prune anonymous volumes"),
            ], max_args=0, aliases=("system prune",)),
    Command("version", "version [OPTIONS]", "Show the skiff version information",
            _C + "system:cmd_version",
            [Flag("format", "f", STRING, help="Format output using a template ({{.Client.Version}}) or 'json'")],
            max_args=0),
    Command("info", "info [OPTIONS]", "Display system-wide information",
            _C + "system:cmd_info",
            [Flag("format", "f", STRING, help="Format output using a template or 'json'")],
            max_args=0, aliases=("system info", "info")),
]

# volumes
COMMANDS += [
    Command("volume create", "volume create [OPTIONS] [VOLUME]", "Create a volume",
            _C + "volumes:cmd_volume_create",
            [
                Flag("driver", "d", STRING, "local", help="Specify volume driver name",
                     metavar="string"),
                Flag("label", "", LIST, help="Set metadata for a volume", metavar="list"),
                Flag("name", "", STRING, help="Specify volume name"),
                Flag("opt", "o", LIST, help="Set driver specific options", metavar="map"),
            ], max_args=1, aliases=("volume create",)),
    Command("volume ls", "volume ls [OPTIONS]", "List volumes", _C + "volumes:cmd_volume_ls",
            [
                Flag("filter", "f", LIST, help="Provide filter values (e.g. \"dangling=true\")",
                     metavar="filter"),
                Flag("format", "", STRING,
                     help="Format output using a template ('table', 'table TEMPLATE', 'json' "
                          "or 'TEMPLATE' with {{.Field}} placeholders)"),
                Flag("quiet", "q", BOOL, help="Only display volume names"),
            ], max_args=0, aliases=("volume ls", "volume list")),
    Command("volume inspect", "volume inspect [OPTIONS] VOLUME [VOLUME...]",
            "Display detailed information on one or more volumes",
            _C + "volumes:cmd_volume_inspect",
            [Flag("format", "f", STRING,
                  help="Format output using a template ({{.Field.Sub}}, {{json .Field}})")],
            min_args=1, aliases=("volume inspect",)),
    Command("volume rm", "volume rm [OPTIONS] VOLUME [VOLUME...]",
            "Remove one or more volumes. You cannot remove a volume that is in use by a "
            "container.", _C + "volumes:cmd_volume_rm",
            [Flag("force", "f", BOOL, help="Force the removal of one or more volumes")],
            min_args=1, aliases=("volume rm", "volume remove")),
    Command("volume prune", "volume prune [OPTIONS]", "Remove unused local volumes",
            _C + "volumes:cmd_volume_prune",
            [
                Flag("all", "a", BOOL, help="Remove all unused volumes, not just anonymous ones"),
                Flag("filter", "", LIST, help='Provide filter values (e.g. "label=<label>")',
                     metavar="filter"),
                Flag("force", "f", BOOL, help="Do not prompt for confirmation"),
            ], max_args=0, aliases=("volume prune",)),
]

# -- build (the builder) -------------------------------------------------------------------------
COMMANDS += [
    Command("build", "build [OPTIONS] PATH | URL | -", "Build an image from a Dockerfile",
            _C + "build:cmd_build",
            [
                Flag("build-arg", "", LIST, help="Set build-time variables", metavar="list"),
                Flag("cache-from", "", LIST, help="Images to consider as cache sources",
                     metavar="strings"),
                Flag("file", "f", STRING,
                     help="Name of the Dockerfile (Default is 'PATH/Dockerfile')"),
                Flag("force-rm", "", BOOL, help="Always remove intermediate containers"),
                Flag("iidfile", "", STRING, help="Write the image ID to the file"),
                Flag("label", "", LIST, help="Set metadata for an image", metavar="list"),
                Flag("network", "", STRING,
                     help='Set the networking mode for the RUN instructions during build',
                     metavar="string"),
                Flag("no-cache", "", BOOL, help="Do not use cache when building the image"),
                Flag("output", "o", LIST,
                     help='Output destination (format: "type=local,dest=path" or '
                          '"type=tar,dest=path")', metavar="stringArray"),
                Flag("platform", "", STRING, help="Set platform if server is multi-platform "
                     "capable"),
                Flag("pull", "", BOOL, help="Always attempt to pull a newer version of the "
                     "image"),
                Flag("quiet", "q", BOOL, help="Suppress the build output and print image ID "
                     "on success"),
                Flag("rm", "", BOOL, True,
                     help="Remove intermediate containers after a successful build"),
                Flag("tag", "t", LIST,
                     help='Name and optionally a tag in the "name:tag" format', metavar="list"),
                Flag("target", "", STRING, help="Set the target build stage to build."),
            ], min_args=1, max_args=1, aliases=("image build", "builder build", "build")),
    Command("builder prune", "builder prune", "Remove build cache",
            _C + "build:cmd_builder_prune",
            [
                Flag("all", "a", BOOL, help="Remove all unused build cache, not just dangling "
                     "ones"),
                Flag("force", "f", BOOL, help="Do not prompt for confirmation"),
            ], max_args=0, aliases=("builder prune",)),
]

# networks
COMMANDS += [
    Command("network create", "network create [OPTIONS] NETWORK", "Create a network",
            _C + "networks:cmd_network_create",
            [
                Flag("attachable", "", BOOL, help="Enable manual container attachment"),
                Flag("driver", "d", STRING, "bridge", help="Driver to manage the Network"),
                Flag("gateway", "", LIST, help="IPv4 or IPv6 Gateway for the master subnet",
                     metavar="strings"),
                Flag("internal", "", BOOL, help="Restrict external access to the network"),
                Flag("ip-range", "", LIST, help="Allocate container ip from a sub-range",
                     metavar="strings"),
                Flag("ipam-driver", "", STRING, "default", help="IP Address Management Driver"),
                Flag("ipam-opt", "", LIST, help="Set IPAM driver specific options",
                     metavar="map"),
                Flag("ipv6", "", BOOL, help="Enable or disable IPv6 networking"),
                Flag("label", "", LIST, help="Set metadata on a network", metavar="list"),
                Flag("opt", "o", LIST, help="Set driver specific options", metavar="map"),
                Flag("subnet", "", LIST, help="Subnet in CIDR format that represents a "
                     "network segment", metavar="strings"),
            ], min_args=1, max_args=1, aliases=("network create",)),
    Command("network ls", "network ls [OPTIONS]", "List networks",
            _C + "networks:cmd_network_ls",
            [
                Flag("filter", "f", LIST, help="Provide filter values (e.g. \"driver=bridge\")",
                     metavar="filter"),
                Flag("format", "", STRING,
                     help="Format output using a custom template ('table', 'table TEMPLATE', "
                          "'json' or 'TEMPLATE')"),
                Flag("no-trunc", "", BOOL, help="Do not truncate the output"),
                Flag("quiet", "q", BOOL, help="Only display network IDs"),
            ], max_args=0, aliases=("network ls", "network list")),
    Command("network inspect", "network inspect [OPTIONS] NETWORK [NETWORK...]",
            "Display detailed information on one or more networks",
            _C + "networks:cmd_network_inspect",
            [
                Flag("format", "f", STRING,
                     help="Format output using a template ({{.Field.Sub}}, {{json .Field}})"),
                Flag("verbose", "v", BOOL, help="Verbose output for diagnostics"),
            ], min_args=1, aliases=("network inspect",)),
    Command("network rm", "network rm NETWORK [NETWORK...]", "Remove one or more networks",
            _C + "networks:cmd_network_rm",
            [Flag("force", "f", BOOL, help="Do not error if the network does not exist")],
            min_args=1, aliases=("network rm", "network remove")),
    Command("network prune", "network prune [OPTIONS]", "Remove all unused networks",
            _C + "networks:cmd_network_prune",
            [
                Flag("filter", "", LIST, help='Provide filter values (e.g. "until=<timestamp>")',
                     metavar="filter"),
                Flag("force", "f", BOOL, help="Do not prompt for confirmation"),
            ], max_args=0, aliases=("network prune",)),
    Command("network connect", "network connect [OPTIONS] NETWORK CONTAINER",
            "Connect a container to a network", _C + "networks:cmd_network_connect",
            [
                Flag("alias", "", LIST, help="Add network-scoped alias for the container",
                     metavar="strings"),
                Flag("driver-opt", "", LIST, help="driver options for the network",
                     metavar="strings"),
                Flag("ip", "", STRING, help="IPv4 address (e.g., \"172.30.100.104\")"),
                Flag("link", "", LIST, help="Add link to another container", metavar="list"),
            ], min_args=2, max_args=2, aliases=("network connect",)),
    Command("network disconnect", "network disconnect [OPTIONS] NETWORK CONTAINER",
            "Disconnect a container from a network", _C + "networks:cmd_network_disconnect",
            [Flag("force", "f", BOOL, help="Force the container to disconnect from a network")],
            min_args=2, max_args=2, aliases=("network disconnect",)),
    Command("port", "port CONTAINER [PRIVATE_PORT[/PROTO]]",
            "List port mappings or a specific mapping for the container",
            _C + "networks:cmd_port", [], min_args=1, max_args=2,
            aliases=("container port", "port")),
]

BY_NAME = {c.name: c for c in COMMANDS}

# Management commands: `skiff container ls` is `skiff ps`.
GROUPS = {
    "container": {
        "run": "run", "create": "create", "start": "start", "ls": "ps", "list": "ps",
        "ps": "ps", "rm": "rm", "remove": "rm", "logs": "logs", "wait": "wait",
        "stop": "stop", "kill": "kill", "inspect": "inspect",
        "exec": "exec", "top": "top", "pause": "pause", "unpause": "unpause",
        "commit": "commit", "diff": "diff", "export": "export", "cp": "cp",
        "restart": "restart", "rename": "rename", "prune": "container prune",
        "attach": "attach", "stats": "stats", "update": "update",
    },
    "image": {
        "ls": "images", "list": "images", "load": "load", "rm": "rmi", "remove": "rmi",
        "pull": "pull", "inspect": "inspect",
        "save": "save", "tag": "tag", "history": "history", "prune": "image prune",
        "import": "import",
    },
    "system": {"df": "system df", "info": "info", "events": "events",
               "prune": "system prune"},
}

GROUP_HELP = {
    "container": "Manage containers",
    "image": "Manage images",
    "system": "Manage skiff",
}

GROUPS["volume"] = {"create": "volume create", "ls": "volume ls", "list": "volume ls",
                    "inspect": "volume inspect", "rm": "volume rm", "remove": "volume rm",
                    "prune": "volume prune"}
GROUP_HELP["volume"] = "Manage volumes"

# build
GROUPS["builder"] = {"build": "build", "prune": "builder prune"}
GROUP_HELP["builder"] = "Manage builds"
GROUPS["image"]["build"] = "build"

# networks
GROUPS["network"] = {"create": "network create", "ls": "network ls", "list": "network ls",
                     "inspect": "network inspect", "rm": "network rm",
                     "remove": "network rm", "prune": "network prune",
                     "connect": "network connect", "disconnect": "network disconnect"}
GROUP_HELP["network"] = "Manage networks"
GROUPS["container"]["port"] = "port"

COMMON = ["run", "ps", "pull", "images", "version", "info"]


def lookup(words: list[str]) -> tuple[Command | None, list[str], str | None]:
    """(command, remaining words, group) for `words` after the global flags."""
    if not words:
        return None, [], None
    first = words[0]
    if first in GROUPS:
        if len(words) < 2 or words[1].startswith("-"):
            return None, words[1:], first
        target = GROUPS[first].get(words[1])
        if target is None:
            return None, words[1:], first
        return BY_NAME[target], words[2:], first
    return BY_NAME.get(first), words[1:], None
