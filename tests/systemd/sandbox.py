"""Run a command under the parts of the units' sandbox that need no systemd as PID 1:
``python -m tests.systemd.sandbox COMMAND [ARG...]``.

What it applies, as the units say it:
- ``NoNewPrivileges=yes``: ``PR_SET_NO_NEW_PRIVS``;
- ``MemoryDenyWriteExecute=yes``: the kernel's own form of it, ``PR_SET_MDWE`` (Linux 6.3+;
  systemd's seccomp rules refuse the same mappings);
- ``SystemCallFilter=@system-service`` then ``~@privileged @resources`` with
  ``SystemCallErrorNumber=EPERM``: the groups as this machine's ``systemd-analyze
  syscall-filter`` lists them, in a seccomp filter (libseccomp through ctypes);
- ``RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6``: socket() of any other family fails.

The mount namespaces (``ProtectSystem=``, ``PrivateTmp=``...) are not applied: those need
systemd (or privileges) to set up.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import subprocess
import sys
from typing import Final, NoReturn

ALLOWED_GROUPS: Final = ("@system-service",)
DENIED_GROUPS: Final = ("@privileged", "@resources")
FAMILIES: Final = (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6)

_PR_SET_NO_NEW_PRIVS: Final = 38
_PR_SET_MDWE: Final = 65
_PR_MDWE_REFUSE_EXEC_GAIN: Final = 1
_SCMP_ACT_ALLOW: Final = 0x7FFF0000
_SCMP_ACT_ERRNO_EPERM: Final = 0x00050000 | errno.EPERM
_SCMP_CMP_EQ: Final = 4


class _ArgCmp(ctypes.Structure):  # struct scmp_arg_cmp
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def syscall_groups(listing: str) -> dict[str, list[str]]:
    """``systemd-analyze syscall-filter``'s groups: name -> members (calls and groups)."""
    groups: dict[str, list[str]] = {}
    current: list[str] = []
    for line in listing.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif line.strip() and not line.strip().startswith("#"):
            current.append(line.strip())
    return groups


def expand(names: tuple[str, ...] | list[str], groups: dict[str, list[str]]) -> set[str]:
    calls: set[str] = set()
    for name in names:
        calls |= expand(groups[name], groups) if name.startswith("@") else {name}
    return calls


def allowed_syscalls() -> set[str]:
    """@system-service without @privileged and @resources, as the units filter."""
    listing = subprocess.run(
        ["systemd-analyze", "syscall-filter", "--no-pager"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    groups = syscall_groups(listing)
    return expand(ALLOWED_GROUPS, groups) - expand(DENIED_GROUPS, groups)


def _check(result: int, what: str) -> None:
    if result != 0:
        raise OSError(-result if result < 0 else ctypes.get_errno(), what)


def restrict(allowed: set[str]) -> None:
    """Apply the restrictions to this process; what it executes next keeps them."""
    libc = ctypes.CDLL(None, use_errno=True)
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    _check(libc.prctl(_PR_SET_MDWE, _PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0), "PR_SET_MDWE")
    seccomp = ctypes.CDLL("libseccomp.so.2")
    seccomp.seccomp_init.restype = ctypes.c_void_p
    seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    seccomp.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp)
    ]  # fmt: skip
    seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
    context = seccomp.seccomp_init(_SCMP_ACT_ERRNO_EPERM)
    for name in sorted(allowed - {"socket"}):
        number = seccomp.seccomp_syscall_resolve_name(name.encode())
        if number >= 0:  # not a call of this architecture otherwise
            _check(seccomp.seccomp_rule_add_array(context, _SCMP_ACT_ALLOW, number, 0, None), name)
    socket_call = seccomp.seccomp_syscall_resolve_name(b"socket")
    for family in FAMILIES:
        family_is = _ArgCmp(0, _SCMP_CMP_EQ, int(family), 0)
        rule = seccomp.seccomp_rule_add_array(
            context, _SCMP_ACT_ALLOW, socket_call, 1, ctypes.byref(family_is)
        )
        _check(rule, f"socket({family.name})")
    _check(seccomp.seccomp_load(context), "seccomp_load")


def main(command: list[str]) -> NoReturn:
    restrict(allowed_syscalls())
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
