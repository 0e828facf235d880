"""Real Asterisk as the bridge benchmark's callers (bridge_bench.py --caller=asterisk).

audiosocket-call is our own picture of Asterisk: one thread for every call,
reading each call's socket when that thread gets round to it. Real Asterisk
runs a thread per call that sleeps in poll() on the call's socket, so every
frame a server writes wakes that call's thread, whoever the server is. The
kernel charges that wake-up to the writer on loopback, which makes the
emulator's figures flatter a server that answers at once (the plain echo
answers while the emulator is still awake sending) over one that paces its
frames. This module puts stock Asterisk in the emulator's place:

  - one Asterisk for the whole run, pinned to the emulator's core, its
    configuration generated under a fresh /tmp directory (its control socket
    path must stay short), AMI on a free port;
  - path "app": a call is AMI Originate of Local/<n>@bridge: the ";2" leg
    runs the AudioSocket() application toward the server under test (the
    usual dialplan use), the ";1" leg plays a 440 Hz tone (Playtones, paced
    by Asterisk's own timer) and reads whatever comes back, as the
    emulator's --source=tone:440 does;
  - path "channel": a call is AMI Originate of AudioSocket/<server>/<uuid>,
    the channel driver's own channel, running the same tone in the dialplan:
    one channel per call instead of a Local pair, so Asterisk's share of its
    core per call is smaller and more calls fit;
  - between steps every channel is hung up and the next step waits until
    none is left.

What Asterisk does not report (jitter at the caller, frames it sent) is left
empty in the rows; the server's side (CPU, memory, the bridge's /metrics, the
backend's counters) is measured as with the emulator.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

DIALPLAN = """
[bridge]
exten => _X.,1,Answer()
 same => n,AudioSocket(00000000-0000-4000-8000-${EXTEN},${GLOBAL(TARGET)})
 same => n,Hangup()

[caller]
exten => s,1,Answer()
 same => n,Playtones(440)
 same => n,Wait(86400)
"""

# Only what the calls need: fewer modules, less of Asterisk's own work on
# the callers' core.
MODULES = ["pbx_config", "app_audiosocket", "chan_audiosocket", "res_audiosocket",
           "app_playtones", "res_timing_timerfd", "func_global"]
PATHS = ("app", "channel")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def established_connections(port):
    """TCP connections in ESTABLISHED state whose local port is `port`
    (/proc/net/tcp): how many callers a server on `port` has."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        n += 1
        except FileNotFoundError:
            pass
    return n


class Ami:
    """A minimal Asterisk Manager Interface client: one action at a time or
    many sent ahead, responses matched by ActionID; events are turned off."""

    def __init__(self, port, user, secret, timeout=60):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError(f"Asterisk's AMI did not open port {port}")
                time.sleep(0.2)
        self.buf = b""
        self.next_id = 0
        while b"\r\n" not in self.buf:  # the banner line
            self.buf += self.sock.recv(4096)
        self.buf = self.buf.split(b"\r\n", 1)[1]
        r = self.action({"Action": "Login", "Username": user, "Secret": secret, "Events": "off"})
        if r.get("Response") != "Success":
            raise RuntimeError(f"AMI login refused: {r}")

    def _read_message(self):
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise RuntimeError("Asterisk closed the AMI connection")
            self.buf += data
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        msg = {"Output": []}
        for line in raw.decode(errors="replace").split("\r\n"):
            key, sep, value = line.partition(": ")
            if not sep:
                continue
            if key == "Output":
                msg["Output"].append(value)
            else:
                msg[key] = value
        return msg

    def send(self, fields):
        self.next_id += 1
        fields = dict(fields, ActionID=str(self.next_id))
        self.sock.sendall(("".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n").encode())
        return str(self.next_id)

    def wait_response(self, action_id):
        while True:
            msg = self._read_message()
            if msg.get("ActionID") == action_id and "Response" in msg:
                return msg

    def action(self, fields):
        return self.wait_response(self.send(fields))

    def command(self, text):
        return self.action({"Action": "Command", "Command": text})["Output"]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class AsteriskCaller:
    """Stock Asterisk placing the benchmark's calls. Threads: one owner."""

    def __init__(self, prefix, log_dir, core, command_prefix, path="app"):
        if path not in PATHS:
            raise ValueError(f"Asterisk path {path!r} is not one of {PATHS}")
        self.path = path
        if not os.access(os.path.join(prefix, "sbin", "asterisk"), os.X_OK):
            raise RuntimeError(f"no Asterisk at {prefix}/sbin/asterisk "
                               "(tests/asterisk/build-asterisk.sh builds one)")
        self.dir = tempfile.mkdtemp(prefix="asterisk-bench-")
        for sub in ("etc", "run", "log", "spool", "lib"):
            os.makedirs(os.path.join(self.dir, sub))
        etc = os.path.join(self.dir, "etc")
        data = os.path.join(prefix, "var", "lib", "asterisk")
        ami_port = free_port()
        files = {
            "asterisk.conf": "[directories]\n" + "".join(
                f"{k} => {v}\n" for k, v in (
                    ("astcachedir", self.dir + "/lib"), ("astetcdir", etc),
                    ("astmoddir", prefix + "/lib/asterisk/modules"),
                    ("astvarlibdir", self.dir + "/lib"), ("astdbdir", self.dir + "/lib"),
                    ("astkeydir", self.dir + "/lib"), ("astdatadir", data),
                    ("astagidir", data + "/agi-bin"), ("astspooldir", self.dir + "/spool"),
                    ("astrundir", self.dir + "/run"), ("astlogdir", self.dir + "/log"),
                    ("astsbindir", prefix + "/sbin")))
            + "[options]\nverbose = 0\nnocolor = yes\nhideconnect = yes\n"
            # Thousands of calls: Asterisk's own default cap is far above,
            # but say it so a later default cannot cut a step short.
            + "maxcalls = 100000\n",
            "modules.conf": "[modules]\nautoload = no\n"
            + "".join(f"load => {m}.so\n" for m in MODULES),
            "logger.conf": "[general]\n[logfiles]\nfull => notice,warning,error\n",
            "manager.conf": f"[general]\nenabled = yes\nbindaddr = 127.0.0.1\nport = {ami_port}\n\n"
                            "[bench]\nsecret = bench\nread = all\nwrite = all\n",
            # Playtones needs a country's indications.
            "indications.conf": "[general]\ncountry = us\n\n[us]\ndescription = United States\n"
                                "ringcadence = 2000,4000\ndial = 350+440\n",
            "extensions.conf": "[globals]\nTARGET=127.0.0.1:9\n" + DIALPLAN,
        }
        for name, text in files.items():
            with open(os.path.join(etc, name), "w") as f:
                f.write(text)
        self.log_dir = log_dir
        out = open(os.path.join(log_dir, "asterisk.out"), "w")
        self.proc = subprocess.Popen(
            command_prefix + ["taskset", "-c", str(core), "env",
                              f"LD_LIBRARY_PATH={prefix}/lib", prefix + "/sbin/asterisk",
                              "-C", etc + "/asterisk.conf", "-f", "-n"],
            stdout=out, stderr=subprocess.STDOUT)
        try:
            self.ami = Ami(ami_port, "bench", "bench")
            self.ami.command("core waitfullybooted")
            loaded = " ".join(self.ami.command("module show like audiosocket"))
            for module in ("app_audiosocket", "chan_audiosocket"):
                if module not in loaded:
                    raise RuntimeError(f"Asterisk started without {module}: " + loaded)
        except Exception:
            self.stop()
            raise

    @property
    def pid(self):
        return self.proc.pid

    def place(self, target, calls, per_second):
        """Starts `calls` calls to `target` (host:port), `per_second` a second."""
        self.ami.action({"Action": "Setvar", "Variable": "TARGET", "Value": target})
        start = time.time()
        pending = []
        for i in range(1, calls + 1):
            channel = (f"Local/{i:012d}@bridge" if self.path == "app"
                       else f"AudioSocket/{target}/00000000-0000-4000-8000-{i:012d}")
            pending.append(self.ami.send({
                "Action": "Originate", "Channel": channel, "Context": "caller",
                "Exten": "s", "Priority": "1", "Async": "true"}))
            if i % 50 == 0:
                for action_id in pending:
                    r = self.ami.wait_response(action_id)
                    if r.get("Response") != "Success":
                        raise RuntimeError(f"Originate refused: {r}")
                pending = []
                time.sleep(max(0.0, start + i / per_second - time.time()))
        for action_id in pending:
            r = self.ami.wait_response(action_id)
            if r.get("Response") != "Success":
                raise RuntimeError(f"Originate refused: {r}")

    def channels(self):
        for line in self.ami.command("core show channels count"):
            if line.endswith("active channels"):
                return int(line.split()[0])
        return None

    def hang_up_all(self, timeout=30):
        """Hangs every call up and waits until no channel is left."""
        self.ami.command("channel request hangup all")
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.channels() == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"Asterisk still had {self.channels()} channels {timeout} s after "
                           "hanging them all up")

    def stop(self):
        ami = getattr(self, "ami", None)
        if ami is not None:
            try:
                ami.command("core stop now")
            except (OSError, RuntimeError):
                pass
            ami.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        log = os.path.join(self.dir, "log", "full")
        if os.path.exists(log):
            shutil.copy(log, os.path.join(self.log_dir, "asterisk-full.log"))
        shutil.rmtree(self.dir, ignore_errors=True)
