"""Fork template: a Python runtime that has run a function's init once and
then forks new instances of that function from its initialised state
(docs/isolation.md, "Fork of an initialised instance").

The launcher starts it like an instance, with NIMBUS_TEMPLATE_FD in its
environment: that descriptor is a SOCK_SEQPACKET socket to the launcher.
After the handler's module is imported, serve() says "r" and waits. Each
message from the launcher ("p" + the instances' seccomp program, one
descriptor attached: a SOCK_SEQPACKET "sync" socket) asks for one spare: a
child forked ahead of time, which waits for the instance it becomes. The
child:

1. unshares a user, mount, IPC and UTS namespace, then a PID namespace
   (the template's seccomp filter allows exactly these two calls), forks
   once more (its child, pid 1 of that namespace, goes on; it ends), loads
   the instances' program on top of the template's, warms up (runs the runtime's own invocation path
   once against canned answers, so that copy-on-write has copied those
   pages already), says "u" on the sync socket and waits;
2. the launcher, which learns the child's pid from the socket's
   credentials, mounts a /proc of its PID namespace; once an instance is
   wanted it maps its uid and gid into the user namespace, moves the child
   into the instance's cgroup, mounts a fresh /tmp into its mount namespace
   and sends
       "g" {"uid": U, "gid": G, "env": ["KEY=VALUE", ...]}
   with the instance's output pipe attached;
3. the child makes that pipe its stdout and stderr, becomes U:G with no
   supplementary groups, drops every capability, says "s", takes the
   instance's environment and returns to the runtime loop, which connects
   to its own Runtime API session.

serve() returns only in such a child; in the template it loops until the
launcher closes the socket. Standard library only (ctypes for the system
calls Python 3.11 has no wrapper for).
"""

import ctypes
import gc
import json
import os
import signal
import socket

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
FORK_NAMESPACES = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS

PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
LINUX_CAPABILITY_VERSION_3 = 0x20080522
SOCK_FILTER_SIZE = 8  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k

_libc = ctypes.CDLL(None, use_errno=True)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


class _Calls:
    """What a spare calls once its instance comes, looked up and built
    while it waits: every page a forked child touches first is copied
    (copy-on-write), and that copying is most of what a fork costs."""

    def __init__(self):
        self.unshare = _libc.unshare
        self.capset = _libc.capset
        self.prctl = _libc.prctl
        self.cap_header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
        self.cap_data = (_CapData * 2)()
        self.prog = _SockFprog()

    def drop_capabilities(self):
        """Capabilities in the new user namespace survive the uid change (the
        process was never uid 0 there), so they are dropped explicitly."""
        _check(self.capset(ctypes.byref(self.cap_header), ctypes.byref(self.cap_data)), "capset")

    def load_seccomp(self, program):
        if not program:
            return
        if len(program) % SOCK_FILTER_SIZE != 0:
            raise OSError(0, "seccomp program of %d bytes" % len(program))
        buffer = ctypes.create_string_buffer(program, len(program))
        self.prog.len = len(program) // SOCK_FILTER_SIZE
        self.prog.filter = ctypes.cast(buffer, ctypes.c_void_p)
        _check(self.prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER),
                          ctypes.byref(self.prog), ctypes.c_ulong(0), ctypes.c_ulong(0)), "seccomp")

    def set_dumpable(self):
        _check(self.prctl(ctypes.c_int(PR_SET_DUMPABLE), ctypes.c_ulong(1), ctypes.c_ulong(0),
                          ctypes.c_ulong(0), ctypes.c_ulong(0)), "prctl dumpable")


def _become_instance(sync, program, warm_up):
    calls = _Calls()
    _check(calls.unshare(ctypes.c_int(FORK_NAMESPACES)), "unshare")
    # A PID namespace of its own, owned by the new user namespace: this
    # process forks once more and its child, pid 1 there, is the instance
    # (this one ends; the template reaps the instance in the end).
    _check(calls.unshare(ctypes.c_int(CLONE_NEWPID)), "unshare pid")
    if os.fork() != 0:
        os._exit(0)
    # The instance's filter, on top of the template's: from here on no
    # unshare, and only what every instance may do (setresuid, capset and
    # prctl included).
    calls.load_seccomp(program)
    warm_up()
    json.loads(json.dumps({"uid": 1, "gid": 1, "env": ["A=B"]}))
    sync.send(b"u")
    message, fds, _, _ = socket.recv_fds(sync, 1 << 20, 1)
    if not message.startswith(b"g") or len(fds) != 1:
        raise OSError(0, "the launcher dropped this spare")
    request = json.loads(message[1:])
    os.dup2(fds[0], 1)
    os.dup2(fds[0], 2)
    os.close(fds[0])
    uid, gid = int(request["uid"]), int(request["gid"])
    os.setresgid(gid, gid, gid)
    os.setgroups([])
    os.setresuid(uid, uid, uid)
    calls.drop_capabilities()
    # The uid change made the process undumpable, which would leave its
    # /proc/self owned by nobody it knows; an exec'd instance is dumpable.
    calls.set_dumpable()
    sync.send(b"s")
    sync.close()
    environment = {}
    for entry in request["env"]:
        key, _, value = entry.partition("=")
        environment[key] = value
    os.environ.clear()
    os.environ.update(environment)
    os.chdir(os.environ.get("LAMBDA_TASK_ROOT") or "/var/task")


def serve(flush_output, warm_up):
    """Runs in the template after init; returns in each forked instance.
    warm_up() runs in each spare while it waits (the runtime's own first
    steps, to copy their pages before the instance needs them)."""
    control = socket.socket(fileno=int(os.environ["NIMBUS_TEMPLATE_FD"]))
    # What init made is never collected in a child; without this the first
    # full collection there would write to (and so copy) every page of it.
    gc.freeze()
    # Children are reaped by the kernel: their exits reach the launcher
    # through its pidfds, not through this process.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    control.send(b"r")
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 16, 1)
        except InterruptedError:
            continue
        if not message:
            os._exit(0)  # the launcher dropped this template
        if len(fds) != 1 or not message.startswith(b"p"):
            for fd in fds:
                os.close(fd)
            continue
        flush_output()
        pid = os.fork()
        if pid != 0:
            os.close(fds[0])
            continue
        control.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sync = socket.socket(fileno=fds[0])
        try:
            _become_instance(sync, message[1:], warm_up)
        except Exception as e:  # noqa: BLE001 - any failure ends this child
            try:
                sync.send(b"e" + str(e).encode())
            except OSError:
                pass
            os._exit(1)
        return
