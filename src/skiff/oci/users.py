"""Resolve `docker run --user` against the image's /etc/passwd and /etc/group contents.

Follows moby/sys/user's GetExecUser: `name`, `uid`, `name:group`, `uid:gid` (any mix). A
numeric user or group need not exist in the files; a name must. Supplementary groups come
from /etc/group membership, and only when no group was given explicitly. The caller reads
the files (None = file absent); this module only parses text.
"""

import dataclasses
import re

from skiff.errors import InvalidArgument

MAX_ID = 2**31 - 1
_GO_ATOI = re.compile(r"[+-]?[0-9]+\Z")


@dataclasses.dataclass(frozen=True)
class ExecUser:
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


def _atoi(text: str) -> int | None:
    """Go's strconv.Atoi: optional sign, ASCII digits only; None when it would fail."""
    return int(text) if _GO_ATOI.match(text) else None


def _entries(text: str | None) -> list[list[str]]:
    """Colon-separated records; blank lines and `#` comments skipped."""
    records = []
    for line in (text or "").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            records.append(line.split(":"))
    return records


def _field(record: list[str], index: int) -> str:
    return record[index] if index < len(record) else ""


def _check_range(value: int) -> int:
    if not 0 <= value <= MAX_ID:
        raise InvalidArgument(f"uids and gids must be in range 0-{MAX_ID}")
    return value


def lookup_user(user_text: str | None, passwd_text: str | None,
                group_text: str | None) -> ExecUser:
    """Full resolution, including the home directory (docker sets HOME from it)."""
    user_arg, _, group_arg = (user_text or "").partition(":")
    group_arg = group_arg.split(":", 1)[0]
    uid_arg, gid_arg = _atoi(user_arg), _atoi(group_arg)
    uid, gid, home = 0, 0, "/"

    matched_name = ""
    for record in _entries(passwd_text):
        name, rec_uid = record[0], _atoi(_field(record, 2)) or 0
        if not user_arg:
            hit = rec_uid == 0  # no --user: the image's root entry, for home and groups
        elif uid_arg is not None:
            hit = rec_uid == uid_arg
        else:
            hit = name == user_arg
        if hit:
            matched_name = name
            uid, gid = rec_uid, _atoi(_field(record, 3)) or 0
            home = _field(record, 5) or "/"
            break  # first match wins, even if there are more
    else:
        if user_arg:
            if uid_arg is None:
                raise InvalidArgument(
                    f"unable to find user {user_arg}: no matching entries in passwd file"
                )
            uid = _check_range(uid_arg)

    additional: list[int] = []
    if group_arg or matched_name:
        groups = []
        for record in _entries(group_text):
            members = _field(record, 3).split(",")
            rec_gid = _atoi(_field(record, 2)) or 0
            if not group_arg:
                hit = matched_name in members
            elif gid_arg is not None:
                hit = rec_gid == gid_arg
            else:
                hit = record[0] == group_arg
            if hit:
                groups.append(rec_gid)
        if group_arg:
            if groups:
                gid = groups[0]
            elif gid_arg is None:
                raise InvalidArgument(
                    f"unable to find group {group_arg}: no matching entries in group file"
                )
            else:
                gid = _check_range(gid_arg)
        else:
            additional = groups
    return ExecUser(uid, gid, tuple(additional), home)


def parse_user(user_text: str | None, passwd_text: str | None,
               group_text: str | None) -> tuple[int, int, list[int]]:
    """`(uid, gid, additional_gids)` for `--user user_text`; InvalidArgument for unknown names."""
    user = lookup_user(user_text, passwd_text, group_text)
    return user.uid, user.gid, list(user.additional_gids)
