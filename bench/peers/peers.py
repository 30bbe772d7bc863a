#!/usr/bin/env python3
"""smsgate against Gammu SMSD, smstools and Kannel on the same simulated modem.

Every system drives its own copy of smsgate's modem simulator (`smsgate simulate`) through a
pseudo-terminal, exactly as it would drive a USB modem. The simulator's JSONL log of the
messages its network delivered is the referee for all of them, and its command log gives the
time each `AT+CMGS` arrived. Run it through bench/peers/run.sh; docs/benchmarks.md explains
each figure.

Python 3 standard library only.
"""

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TEMPLATES = HERE / "templates"
DOC = REPO / "docs" / "benchmarks.md"
SECTION = "## Against Gammu, smstools and Kannel"
BEGIN = "<!-- bench/peers: begin (written by bash bench/peers/run.sh) -->"
END = "<!-- bench/peers: end -->"
TOKEN = "bench-peers-token-0123456789abcdef"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Every process this run started, so that an interrupted run leaves nothing behind.
_LIVE = set()
_LIVE_LOCK = threading.Lock()


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def spawn(args, cwd, out_name, env=None, stdin=subprocess.DEVNULL):
    """Starts a process in its own session (so its whole group can be killed)."""
    out = open(Path(cwd) / out_name, "ab")
    p = subprocess.Popen(
        args,
        cwd=cwd,
        stdin=stdin,
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    out.close()
    with _LIVE_LOCK:
        _LIVE.add(p)
    return p


def end_process(p, sig=signal.SIGTERM, grace=10.0):
    """Ends one process group we started: `sig`, then SIGKILL after `grace` seconds."""
    if p is None:
        return
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=10)
    # Children that outlived the leader (same group).
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    with _LIVE_LOCK:
        _LIVE.discard(p)


def end_all():
    with _LIVE_LOCK:
        live = list(_LIVE)
    for p in live:
        end_process(p, signal.SIGKILL, grace=5)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(template, dest, **values):
    text = string.Template((TEMPLATES / template).read_text()).substitute(
        {k: str(v) for k, v in values.items()}
    )
    Path(dest).write_text(text)


def parse_time(s):
    """RFC 3339 with up to nanoseconds and `Z` → Unix seconds."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", s)
    if not m:
        raise ValueError(f"bad time {s!r}")
    base = dt.datetime.fromisoformat(m.group(1)).replace(tzinfo=dt.timezone.utc)
    frac = float("0." + m.group(2)) if m.group(2) else 0.0
    if m.group(3) != "Z":
        sign = 1 if m.group(3)[0] == "+" else -1
        h, mi = m.group(3)[1:].split(":")
        base -= sign * dt.timedelta(hours=int(h), minutes=int(mi))
    return base.timestamp() + frac


def number(tag, i):
    """A valid US number, distinct per (tag, i): +1 202 2tt iiii."""
    return f"+1202{200 + tag % 100:03d}{i % 10000:04d}"


def text_for(tag, i):
    return f"Reminder {tag}-{i}: invoice INV-{tag}{i:04d} of 120.50 USD is due Dec 1."


# ---- processes: CPU and memory -----------------------------------------------------------------


def group_pids(pgids):
    """Every live process whose process group is one of `pgids`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) in pgids:
            pids.append(int(entry))
    return pids


def cpu_seconds(pids):
    """User + system time of these processes and of their reaped children."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return total / CLK_TCK


def peak_rss_mb(pids):
    """Sum of the processes' peak resident set sizes (VmHWM)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


# ---- the simulator -----------------------------------------------------------------------------


class Simulator:
    """`smsgate simulate` on a PTY, with its delivery log and command log."""

    def __init__(self, binary, work, latency_ms):
        self.work = Path(work)
        self.link = self.work / "modem"
        self.sent_path = self.work / "sent.jsonl"
        self.commands_path = self.work / "commands.jsonl"
        self.proc = spawn(
            [
                binary,
                "simulate",
                "--link",
                str(self.link),
                "--log",
                str(self.sent_path),
                "--command-log",
                str(self.commands_path),
                "--latency",
                f"{latency_ms}ms",
                "--status-reports",
                "off",
            ],
            self.work,
            "simulator.out",
        )
        deadline = time.time() + 20
        while not self.link.exists():
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"simulator did not start: see {self.work}/simulator.out")
            time.sleep(0.02)
        self._offset = 0
        self._buf = b""
        self.records = []  # (to, text, at)

    def poll(self):
        """Reads new delivery records; returns how many there are in all."""
        try:
            with open(self.sent_path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return len(self.records)
        self._offset += len(data)
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            if line.strip():
                r = json.loads(line)
                self.records.append((r["to"], r["text"], parse_time(r["at"])))
        return len(self.records)

    def delivered(self, wanted):
        """to → list of delivery times, for the numbers in `wanted`."""
        self.poll()
        out = {}
        for to, _text, at in self.records:
            if to in wanted:
                out.setdefault(to, []).append(at)
        return out

    def cmgs_times(self):
        times = []
        try:
            for line in self.commands_path.read_text().splitlines():
                if not line.strip():
                    continue
                r = json.loads(line)
                if r["line"].upper().startswith("AT+CMGS="):
                    times.append(parse_time(r["at"]))
        except FileNotFoundError:
            pass
        return times

    def stop(self):
        end_process(self.proc)


# ---- the systems -------------------------------------------------------------------------------


class System:
    """One gateway under test: its own directory, processes and simulated modem."""

    name = ""
    label = ""

    def __init__(self, work, sim, binary):
        self.work = Path(work)
        self.sim = sim
        self.binary = binary
        self.procs = []

    # Each system: setup() once, start(), then prepare()/submit() any number of times.
    def setup(self):
        raise NotImplementedError

    def start(self):
        raise NotImplementedError

    def prepare(self, jobs):
        """Everything that may happen before the clock starts (staging files, request bodies)."""
        return jobs

    def submit(self, prepared):
        """Makes the prepared jobs visible to the system; the clock starts just before."""
        raise NotImplementedError

    def flagged(self):
        """The numbers of the messages the system itself marked failed or unknown, by mark
        (`{}`: it keeps no such record the benchmark can read)."""
        return {}

    def pgids(self):
        return {p.pid for p in self.procs if p.poll() is None}

    def pids(self):
        return group_pids(self.pgids())

    def kill9(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.procs:
            p.wait(timeout=10)
            with _LIVE_LOCK:
                _LIVE.discard(p)
        self.procs = []

    def stop(self):
        for p in reversed(self.procs):
            end_process(p)
        self.procs = []

    @staticmethod
    def version():
        return ""


def dpkg_version(pkg):
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


class Smsgate(System):
    name = "smsgate"
    label = "smsgate"

    def setup(self):
        self.port = free_port()
        render(
            "smsgate.toml",
            self.work / "smsgate.toml",
            port=self.port,
            dir=self.work,
            token=TOKEN,
            device=self.sim.link,
        )

    def start(self):
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        self.procs = [
            spawn(
                [self.binary, "serve", "--config", str(self.work / "smsgate.toml")],
                self.work,
                "smsgate.out",
                env=env,
            )
        ]
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                status, _ = self.request("GET", "/readyz")
                if status == 200:
                    return
            except OSError:
                pass
            if self.procs[0].poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"smsgate did not get ready: see {self.work}/smsgate.out")

    def request(self, method, path, body=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def prepare(self, jobs):
        if len(jobs) == 1:
            to, text = jobs[0]
            return ("/v1/messages", json.dumps({"to": to, "text": text}).encode())
        msgs = [{"to": to, "text": text} for to, text in jobs]
        return ("/v1/messages/batch", json.dumps({"messages": msgs}).encode())

    def submit(self, prepared):
        path, body = prepared
        t0 = time.time()
        status, answer = self.request("POST", path, body)
        if status not in (200, 201, 202):
            raise RuntimeError(f"smsgate refused the jobs: {status} {answer[:300]!r}")
        return t0

    def flagged(self):
        out = {}
        for status in ("unknown", "failed"):
            code, body = self.request("GET", f"/v1/messages?status={status}&limit=1000")
            if code != 200:
                raise RuntimeError(f"smsgate: listing {status} messages failed: {code}")
            out[status] = {m["to"] for m in json.loads(body)["messages"]}
        return out

    @staticmethod
    def version():
        return ""


class Gammu(System):
    name = "gammu"
    label = "Gammu SMSD"

    def setup(self):
        for d in ("inbox", "outbox", "sent", "error", "stage"):
            (self.work / d).mkdir(exist_ok=True)
        render("gammu-smsdrc", self.work / "smsdrc", dir=self.work, device=self.sim.link)
        render("gammu-smsdrc-stage", self.work / "smsdrc-stage", dir=self.work, device=self.sim.link)

    def start(self):
        self.procs = [
            spawn(["gammu-smsd", "--config", str(self.work / "smsdrc")], self.work, "gammu.out")
        ]
        time.sleep(0.2)
        if self.procs[0].poll() is not None:
            raise RuntimeError(f"gammu-smsd did not start: see {self.work}/gammu.out")

    def prepare(self, jobs):
        # gammu-smsd-inject writes Gammu's own outbox files (into the staging directory).
        stage = self.work / "stage"
        before = set(os.listdir(stage))
        for to, text in jobs:
            subprocess.run(
                ["gammu-smsd-inject", "-c", str(self.work / "smsdrc-stage"), "TEXT", to, "-text", text],
                check=True,
                capture_output=True,
                timeout=30,
            )
        return sorted(set(os.listdir(stage)) - before)

    def submit(self, prepared):
        t0 = time.time()
        for name in prepared:
            os.rename(self.work / "stage" / name, self.work / "outbox" / name)
        return t0

    def flagged(self):
        # Gammu's outbox file names carry the number: OUTC<date>_<time>_<n>_<number>_<x>.
        names = os.listdir(self.work / "error")
        return {"failed": {m.group(1) for n in names if (m := re.search(r"_(\+\d+)_", n))}}

    @staticmethod
    def version():
        return dpkg_version("gammu-smsd")


class Smstools(System):
    name = "smstools"
    label = "smstools"

    def setup(self):
        for d in ("outgoing", "checked", "failed", "incoming", "sent", "stage"):
            (self.work / d).mkdir(exist_ok=True)
        render("smsd.conf", self.work / "smsd.conf", dir=self.work, device=self.sim.link)

    def start(self):
        self.procs = [
            spawn(["smsd", "-t", f"-c{self.work / 'smsd.conf'}"], self.work, "smsd.out")
        ]
        time.sleep(0.2)
        if self.procs[0].poll() is not None:
            raise RuntimeError(f"smsd did not start: see {self.work}/smsd.out")

    def prepare(self, jobs):
        names = []
        for to, text in jobs:
            name = f"bench-{to.lstrip('+')}"
            # smstools takes the number without "+" (international unless configured otherwise).
            (self.work / "stage" / name).write_text(f"To: {to.lstrip('+')}\n\n{text}\n")
            names.append(name)
        return names

    def submit(self, prepared):
        t0 = time.time()
        for name in prepared:
            os.rename(self.work / "stage" / name, self.work / "outgoing" / name)
        return t0

    def flagged(self):
        return {"failed": {"+" + n.removeprefix("bench-") for n in os.listdir(self.work / "failed")}}

    @staticmethod
    def version():
        return dpkg_version("smstools")


class Kannel(System):
    name = "kannel"
    label = "Kannel"

    def setup(self):
        self.admin_port = free_port()
        self.smsbox_port = free_port()
        self.sendsms_port = free_port()
        render(
            "kannel.conf",
            self.work / "kannel.conf",
            dir=self.work,
            device=self.sim.link,
            admin_port=self.admin_port,
            smsbox_port=self.smsbox_port,
            sendsms_port=self.sendsms_port,
        )

    def start(self):
        conf = str(self.work / "kannel.conf")
        bearerbox = spawn(["bearerbox", conf], self.work, "bearerbox.out")
        self.procs = [bearerbox]
        deadline = time.time() + 30
        while not self._port_open(self.smsbox_port):
            if bearerbox.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"bearerbox did not start: see {self.work}")
            time.sleep(0.05)
        self.procs.append(spawn(["smsbox", conf], self.work, "smsbox.out"))
        while not self._port_open(self.sendsms_port):
            if self.procs[1].poll() is not None or time.time() > deadline:
                raise RuntimeError(f"smsbox did not start: see {self.work}")
            time.sleep(0.05)

    @staticmethod
    def _port_open(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    def prepare(self, jobs):
        return [
            "/cgi-bin/sendsms?"
            + urllib.parse.urlencode(
                {"username": "bench", "password": "bench", "to": to, "text": text}
            )
            for to, text in jobs
        ]

    def submit(self, prepared):
        t0 = time.time()
        c = http.client.HTTPConnection("127.0.0.1", self.sendsms_port, timeout=30)
        try:
            for url in prepared:
                c.request("GET", url)
                r = c.getresponse()
                body = r.read()
                if r.status >= 300:
                    raise RuntimeError(f"kannel refused a message: {r.status} {body[:200]!r}")
                if r.will_close:
                    c.close()
                    c = http.client.HTTPConnection("127.0.0.1", self.sendsms_port, timeout=30)
        finally:
            c.close()
        return t0

    @staticmethod
    def version():
        return dpkg_version("kannel")


SYSTEMS = {c.name: c for c in (Smsgate, Gammu, Smstools, Kannel)}
PEERS = ["gammu", "smstools", "kannel"]


# ---- the measurements --------------------------------------------------------------------------


class Run:
    """One system on its own simulator for one measurement: set up, started, warmed up."""

    def __init__(self, args, system, label, latency_ms):
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix=f"{system}-{label}-", dir=args.work))
        self.sim = Simulator(args.smsgate, self.dir, latency_ms)
        self.sys = SYSTEMS[system](self.dir, self.sim, args.smsgate)

    def __enter__(self):
        self.sys.setup()
        self.sys.start()
        # A first message proves the whole path works and that the system has finished its
        # modem initialisation; it is not counted.
        warm = [(number(99, 0), text_for(99, 0))]
        self.sys.submit(self.sys.prepare(warm))
        self.wait_all({warm[0][0]}, timeout=120, what="the warm-up message")
        return self

    def __exit__(self, *exc):
        self.sys.stop()
        self.sim.stop()
        if not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def wait_all(self, wanted, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.sim.delivered(wanted)) >= len(wanted):
                return
            time.sleep(0.02)
        raise RuntimeError(f"{self.sys.name}: {what} not delivered in {timeout} s (see {self.dir})")


def jobs_for(tag, n):
    return [(number(tag, i), text_for(tag, i)) for i in range(n)]


def measure_throughput(args, system):
    """Zero latency: a batch of N, delivered messages per second (capped at `tp_cap` seconds),
    with the system's CPU time and peak RSS over the same interval."""
    with Run(args, system, "throughput", 0) as run:
        jobs = jobs_for(1, args.tp_messages)
        wanted = {to for to, _ in jobs}
        prepared = run.sys.prepare(jobs)
        pids = run.sys.pids()
        cpu0 = cpu_seconds(pids)
        t0 = run.sys.submit(prepared)
        deadline = t0 + args.tp_cap
        while time.time() < deadline:
            if len(run.sim.delivered(wanted)) >= len(wanted):
                break
            time.sleep(0.01)
        pids = run.sys.pids()
        cpu = cpu_seconds(pids) - cpu0
        rss = peak_rss_mb(pids)
        got = run.sim.delivered(wanted)
        firsts = sorted(min(t) for t in got.values())
        if len(firsts) >= len(wanted):
            rate = len(firsts) / (firsts[-1] - t0)
        else:
            rate = len([t for t in firsts if t <= deadline]) / args.tp_cap
        return {
            "rate": rate,
            "delivered": len(firsts),
            "cpu_per_1000": cpu / max(len(firsts), 1) * 1000,
            "rss": rss,
        }


def measure_efficiency(args, system):
    """500 ms per AT+CMGS: ideal time (N × 0.5 s) / real time for N messages."""
    with Run(args, system, "efficiency", 500) as run:
        jobs = jobs_for(2, args.eff_messages)
        wanted = {to for to, _ in jobs}
        prepared = run.sys.prepare(jobs)
        t0 = run.sys.submit(prepared)
        run.wait_all(wanted, timeout=args.eff_messages * 15 + 60, what="the efficiency batch")
        last = max(min(t) for t in run.sim.delivered(wanted).values())
        ideal = args.eff_messages * 0.5
        return {"efficiency": ideal / (last - t0), "real": last - t0}


def measure_latency(args, system):
    """At idle: time from submitting one message to its AT+CMGS, several samples."""
    samples = []
    with Run(args, system, "latency", 0) as run:
        rng = random.Random()
        for i in range(args.latency_samples):
            # Idle for a while, at a random phase of whatever the system polls.
            time.sleep(rng.uniform(2.0, 4.0))
            jobs = [(number(3, i), text_for(3, i))]
            prepared = run.sys.prepare(jobs)
            t0 = run.sys.submit(prepared)
            run.wait_all({jobs[0][0]}, timeout=120, what="a latency sample")
            cmgs = [t for t in run.sim.cmgs_times() if t >= t0]
            if not cmgs:
                raise RuntimeError(f"{system}: no AT+CMGS after the submission (see {run.dir})")
            samples.append(min(cmgs) - t0)
    return {"latency": statistics.median(samples), "samples": samples}


def measure_kill(args, system):
    """N messages at 200 ms per AT+CMGS; kill -9 of every process of the system in the middle
    of a send once a quarter are delivered; restart; count what the network got."""
    latency = 0.2
    run = Run(args, system, "kill", int(latency * 1000))
    with run:
        jobs = jobs_for(4, args.kill_messages)
        wanted = {to for to, _ in jobs}
        prepared = run.sys.prepare(jobs)
        run.sys.submit(prepared)
        threshold = max(1, args.kill_messages // 4)
        deadline = time.time() + args.kill_messages * 15 + 120
        while len(run.sim.delivered(wanted)) < threshold:
            if time.time() > deadline:
                raise RuntimeError(f"{system}: kill test stalled before the kill (see {run.dir})")
            time.sleep(0.01)
        # The next AT+CMGS: the kill lands while the network is still working on it.
        seen = len(run.sim.cmgs_times())
        while len(run.sim.cmgs_times()) <= seen:
            if time.time() > deadline:
                raise RuntimeError(f"{system}: no AT+CMGS to kill in (see {run.dir})")
            time.sleep(0.005)
        cmgs_at = run.sim.cmgs_times()[seen]
        kill_at = cmgs_at + random.uniform(0.05, latency * 0.9)
        time.sleep(max(0.0, kill_at - time.time()))
        run.sys.kill9()
        at_kill = len(run.sim.delivered(wanted))
        time.sleep(0.5)
        run.sys.start()
        # Until every message arrived and nothing more came for a while, or nothing moves.
        last_change, last_count = time.time(), -1
        hard = time.time() + args.kill_messages * 15 + 120
        while time.time() < hard:
            run.sim.poll()
            count = len(run.sim.records)
            if count != last_count:
                last_change, last_count = time.time(), count
            got = run.sim.delivered(wanted)
            quiet = time.time() - last_change
            if len(got) >= len(wanted) and quiet >= args.kill_settle:
                break
            if quiet >= args.kill_stall:
                break
            time.sleep(0.05)
        got = run.sim.delivered(wanted)
        flagged = {k: v & wanted for k, v in run.sys.flagged().items()}
        marked = set().union(*flagged.values())
        # Lost: never reached the network and not marked by the system either (a message the
        # system reports as failed or unknown is in the operator's hands, not silently gone).
        lost = [to for to in wanted if to not in got and to not in marked]
        duplicated = sum(len(v) - 1 for v in got.values())
        return {
            "lost": len(lost),
            "duplicated": duplicated,
            "flagged": {k: len(v) for k, v in flagged.items()},
            "at_kill": at_kill,
            "unknown": len(flagged.get("unknown", ())),
        }


def run_system(args, system, reps, kinds, results, lock):
    for rep in range(reps):
        for kind in kinds:
            fn = {
                "throughput": measure_throughput,
                "efficiency": measure_efficiency,
                "latency": measure_latency,
                "kill": measure_kill,
            }[kind]
            log(f"{system}: {kind}, run {rep + 1} of {reps}")
            try:
                r = fn(args, system)
            except Exception as e:  # a failed run is reported, the others go on
                log(f"{system}: {kind} run {rep + 1} failed: {e}")
                r = {"error": str(e)}
            log(f"{system}: {kind} run {rep + 1}: {brief(r)}")
            with lock:
                results.setdefault(system, {}).setdefault(kind, []).append(r)


def brief(r):
    return ", ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items() if k != "samples"
    )


# ---- the report --------------------------------------------------------------------------------


def med(results, system, kind, key):
    vals = [r[key] for r in results.get(system, {}).get(kind, []) if key in r]
    return statistics.median(vals) if vals else None


def all_vals(results, system, kind, key):
    return [r[key] for r in results.get(system, {}).get(kind, []) if key in r]


def machine():
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    debian = ""
    try:
        debian = "Debian " + Path("/etc/debian_version").read_text().strip()
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {mem}, {model}, Linux {platform.release()}, {debian}".strip(", ")


def smsgate_version(binary):
    try:
        v = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        version = v.stdout.strip().split()[-1]
    except (OSError, subprocess.SubprocessError, IndexError):
        version = "?"
    try:
        c = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        commit = c.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version} ({commit})" if commit else version


def num(v):
    """Three significant figures, without an exponent."""
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def fmt(v, spec, suffix=""):
    return "—" if v is None else f"{v:{spec}}{suffix}"


def ratio(mine, best, higher_is_better):
    if mine is None or best is None:
        return "—"
    if best == 0:
        return "—" if mine == 0 else "∞"
    return f"{mine / best:.3g}×"


def report(args, results, systems, started, elapsed):
    names = [s for s in ["smsgate"] + PEERS if s in systems]
    rows = []
    figures = {}
    for s in names:
        f = {
            "rate": med(results, s, "throughput", "rate"),
            "efficiency": med(results, s, "efficiency", "efficiency"),
            "cpu": med(results, s, "throughput", "cpu_per_1000"),
            "rss": med(results, s, "throughput", "rss"),
            "latency": med(results, s, "latency", "latency"),
            "lost": med(results, s, "kill", "lost"),
            "dup": med(results, s, "kill", "duplicated"),
            "unknown": med(results, s, "kill", "unknown"),
        }
        figures[s] = f
    versions = {s: (smsgate_version(args.smsgate) if s == "smsgate" else SYSTEMS[s].version()) for s in names}
    for s in names:
        f = figures[s]
        kill = "—"
        if f["lost"] is not None:
            kill = f"{f['lost']:g} / {f['dup']:g}"
            if s == "smsgate":
                kill += f" ({f['unknown']:g} unknown)"
        label = SYSTEMS[s].label + (f" {versions[s]}" if versions[s] else "")
        rows.append(
            f"| {label} | {fmt(f['rate'], '.3g')} | {fmt(f['efficiency'] and f['efficiency'] * 100, '.1f', ' %')} "
            f"| {fmt(f['cpu'], '.3g', ' s')} | {fmt(f['rss'], '.1f', ' MB')} "
            f"| {fmt(f['latency'] and f['latency'] * 1000, '.0f', ' ms')} | {kill} |"
        )
    peers = [s for s in names if s != "smsgate"]
    if "smsgate" in names and peers:

        def best(key, higher):
            vals = [figures[p][key] for p in peers if figures[p][key] is not None]
            if not vals:
                return None
            return max(vals) if higher else min(vals)

        g = figures["smsgate"]
        kill_ratio = "—"
        bl, bd = best("lost", False), best("dup", False)
        if g["lost"] is not None and bl is not None:
            kill_ratio = f"{g['lost']:g} / {g['dup']:g} vs {bl:g} / {bd:g}"
        rows.append(
            f"| **smsgate / best peer** | {ratio(g['rate'], best('rate', True), True)} "
            f"| {ratio(g['efficiency'], best('efficiency', True), True)} "
            f"| {ratio(g['cpu'], best('cpu', False), False)} "
            f"| {ratio(g['rss'], best('rss', False), False)} "
            f"| {ratio(g['latency'], best('latency', False), False)} | {kill_ratio} |"
        )
    head = (
        "| System | Messages/s, 0 latency | Efficiency, 500 ms × "
        f"{args.eff_messages} | CPU per 1000 messages | Peak RSS | Idle latency to `AT+CMGS` "
        f"| kill -9 during {args.kill_messages}: lost / duplicated |\n|---|---|---|---|---|---|---|"
    )
    table = head + "\n" + "\n".join(rows)

    # Every run's value, for the spread behind each median.
    detail = ["| System | Figure | Runs |", "|---|---|---|"]
    for s in names:
        for kind, key, scale, unit in (
            ("throughput", "rate", 1, " msg/s"),
            ("efficiency", "efficiency", 100, " %"),
            ("throughput", "cpu_per_1000", 1, " s"),
            ("throughput", "rss", 1, " MB"),
            ("latency", "latency", 1000, " ms"),
        ):
            vals = all_vals(results, s, kind, key)
            if vals:
                detail.append(
                    f"| {SYSTEMS[s].label} | {key.replace('_', ' ')} | "
                    + ", ".join(f"{num(v * scale)}{unit}" for v in vals)
                    + " |"
                )
        samples = [x for r in results.get(s, {}).get("latency", []) for x in r.get("samples", [])]
        if samples:
            detail.append(
                f"| {SYSTEMS[s].label} | latency samples | "
                + ", ".join(f"{x * 1000:.0f}" for x in samples)
                + " ms |"
            )
        kills = results.get(s, {}).get("kill", [])
        if kills:
            parts = []
            for r in kills:
                if "error" in r:
                    parts.append("failed: " + r["error"][:80])
                    continue
                fl = ", ".join(f"{k} {v}" for k, v in (r.get("flagged") or {}).items())
                parts.append(
                    f"lost {r['lost']}, duplicated {r['duplicated']} (killed after {r['at_kill']} delivered"
                    + (f"; marked {fl}" if fl else "")
                    + ")"
                )
            detail.append(f"| {SYSTEMS[s].label} | kill -9 | " + "; ".join(parts) + " |")
        errors = [
            f"{kind}: {r['error'][:100]}"
            for kind, rs in results.get(s, {}).items()
            if kind != "kill"
            for r in rs
            if "error" in r
        ]
        if errors:
            detail.append(f"| {SYSTEMS[s].label} | failed runs | " + "; ".join(errors) + " |")

    mode = "quick" if args.quick else "full"
    header = (
        f"Measured {started} ({mode} run, {args.reps} run(s) per figure, median shown; "
        f"{elapsed / 60:.1f} min) on: {machine()}. "
        f"Command: `bash bench/peers/run.sh{' --quick' if args.quick else ''}`."
    )
    return header + "\n\n" + table + "\n\n" + "\n".join(detail) + "\n"


def write_doc(text):
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n{text}{END}"
    if BEGIN in doc and END in doc:
        pre, rest = doc.split(BEGIN, 1)
        post = rest.split(END, 1)[1]
        doc = pre + block + post
    elif SECTION in doc:
        pre, rest = doc.split(SECTION, 1)
        nxt = rest.find("\n## ")
        body, post = (rest, "") if nxt < 0 else (rest[:nxt], rest[nxt:])
        doc = pre + SECTION + body.rstrip("\n") + "\n\n" + block + "\n" + post
    else:
        doc = doc.rstrip("\n") + f"\n\n{SECTION}\n\n{block}\n"
    DOC.write_text(doc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smsgate", required=True, help="the smsgate binary (release build)")
    ap.add_argument("--quick", action="store_true", help="one run each, smaller batches (a few minutes)")
    ap.add_argument("--reps", type=int, help="runs per figure (default 3; 1 with --quick)")
    ap.add_argument("--only", help="comma-separated systems: smsgate,gammu,smstools,kannel")
    ap.add_argument("--serial", action="store_true", help="run the peers one after another, not side by side")
    ap.add_argument("--no-write", action="store_true", help="print the table, leave docs/benchmarks.md alone")
    ap.add_argument("--keep", action="store_true", help="keep the working directories (logs, spools)")
    args = ap.parse_args()
    args.reps = args.reps or (1 if args.quick else 3)
    args.tp_messages = 100 if args.quick else 200
    args.tp_cap = 20.0 if args.quick else 45.0
    args.eff_messages = 40
    args.latency_samples = 3 if args.quick else 5
    args.kill_messages = 40 if args.quick else 200
    args.kill_settle = 5.0
    # Long enough for a system that restarts against a modem still waiting for the PDU of
    # the killed send: the simulator gives up on it after 60 s, the way real modems do.
    args.kill_stall = 150.0
    systems = args.only.split(",") if args.only else ["smsgate"] + PEERS
    for s in systems:
        if s not in SYSTEMS:
            ap.error(f"unknown system {s}")
    args.work = tempfile.mkdtemp(prefix="smsgate-bench-peers-")
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    t_start = time.time()

    def on_signal(signum, _frame):
        end_all()
        sys.exit(128 + signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    results, lock = {}, threading.Lock()
    kinds = ["throughput", "efficiency", "latency"]
    try:
        # smsgate alone first: at zero latency it is CPU-bound, the peers are not.
        if "smsgate" in systems:
            run_system(args, "smsgate", args.reps, kinds + ["kill"], results, lock)
        # The peers spend nearly all their time in their own sleeps and timeouts, so they run
        # side by side (each on its own simulator), every run of the kill test in parallel too.
        peers = [s for s in PEERS if s in systems]
        chains = []
        for s in peers:
            chains.append((s, args.reps, kinds))
            for _ in range(args.reps):
                chains.append((s, 1, ["kill"]))
        if args.serial:
            for s, reps, ks in chains:
                run_system(args, s, reps, ks, results, lock)
        else:
            threads = [
                threading.Thread(target=run_system, args=(args, s, reps, ks, results, lock))
                for s, reps, ks in chains
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        end_all()
        if not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)
        else:
            log(f"working directories kept in {args.work}")
    text = report(args, results, systems, started, time.time() - t_start)
    print(text)
    if not args.no_write:
        write_doc(text)
        log(f"written to {DOC}")


if __name__ == "__main__":
    main()
