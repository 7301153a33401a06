"""ratecast compose smoke test: the checks of scripts/compose-smoke.sh, which builds and
starts the stack and then runs this file. Every client goes through the load balancer
on 127.0.0.1; replicas are inspected inside the compose network (`docker exec`).

Environment (set by compose-smoke.sh):
  SMOKE_URL      ws://127.0.0.1:PORT/ of the load balancer
  SMOKE_HTTP     http://127.0.0.1:PORT of the load balancer
  SMOKE_ASSETS   the ASSET_LIST the services run with
  SMOKE_PROJECT  the compose project name (containers carry it as a label)
  SMOKE_COMPOSE  the compose command with its -p and -f options, as a JSON list

Every wait has a deadline; a failed check raises Fail and the script exits 1.
"""

import contextlib
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import connect

URL = os.environ["SMOKE_URL"]
HTTP = os.environ["SMOKE_HTTP"]
ASSETS = os.environ["SMOKE_ASSETS"].split(",")
PROJECT = os.environ["SMOKE_PROJECT"]
COMPOSE = json.loads(os.environ["SMOKE_COMPOSE"])
ASSET_ID = 1
ASSET = ASSETS[ASSET_ID - 1]
API_PORT = 8080
STOP_GRACE = 15  # stop_grace_period of the api service in docker-compose.yaml
FOLLOWERS = 6  # subscribed clients during the crash and stop tests
# A crash is SIGKILL of the container's main process from the host (`docker kill` is a
# manual stop, which no restart policy undoes). Containers' processes belong to root
# on the host: a non-root user (a hosted CI runner) needs sudo for it.
KILL = ["kill", "-9"] if os.geteuid() == 0 else ["sudo", "-n", "kill", "-9"]


class Fail(Exception):
    """A check failed: the test fails."""


def say(text):
    print(f"   {text}", flush=True)


def check(condition, text):
    if not condition:
        raise Fail(text)


def wait_until(what, deadline_s, probe, every=0.5):
    """Calls probe() until it returns a true value, for at most deadline_s seconds."""
    deadline = time.monotonic() + deadline_s
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise Fail(f"{what}: not within {deadline_s} s")
        time.sleep(every)


# --- docker ----------------------------------------------------------------------


def run(*args, check_rc=True):
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=120)
    if check_rc and done.returncode != 0:
        raise Fail(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.strip()[-400:]}")
    return done.stdout.strip()


def compose(*args):
    return run(*COMPOSE, *args)


def containers(service=None, running=True):
    """Ids of the project's containers (compose v1 and v2 label them alike)."""
    cmd = ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=com.docker.compose.project={PROJECT}"]
    if service:
        cmd += ["--filter", f"label=com.docker.compose.service={service}"]
    if not running:
        cmd.insert(2, "-a")
    return sorted(run(*cmd).split())


def inspect(cid, fmt):
    return run("docker", "inspect", "-f", fmt, cid)


def health(cid):
    return inspect(cid, "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}")


def short(cid):
    return cid[:12]


def exec_http(cid, path, port=API_PORT):
    """HTTP status and body of GET path inside the container (curl in the image)."""
    out = run("docker", "exec", cid, "curl", "-s", "-m", "3", "-w", "\n%{http_code}",
              f"http://127.0.0.1:{port}{path}", check_rc=False)
    body, _, status = out.rpartition("\n")
    return (int(status) if status.isdigit() else 0), body


def gauge(cid, series):
    """Value of one Prometheus series (exact name with labels) of an api replica."""
    status, body = exec_http(cid, "/metrics")
    check(status == 200, f"/metrics of {short(cid)} answered {status}")
    for line in body.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    return 0.0


def subscribers(cid):
    return int(gauge(cid, f'ratecast_ws_subscriptions{{asset="{ASSET}"}}'))


def wait_healthy(cid, deadline_s, what):
    wait_until(f"{what} {short(cid)} healthy", deadline_s, lambda: health(cid) == "healthy", every=1)


def started_at(cid):
    """The container's last start, in Unix seconds."""
    raw = inspect(cid, "{{.State.StartedAt}}")
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$", raw)
    check(m is not None, f"unexpected StartedAt {raw!r}")
    whole = datetime.fromisoformat(m.group(1) + "+00:00").timestamp()
    return whole + (float(m.group(2)) if m.group(2) else 0.0)


# --- websocket clients -------------------------------------------------------------


def open_ws():
    # proxy=None: never route 127.0.0.1 through an HTTP(S)_PROXY from the environment.
    return connect(URL, open_timeout=10, close_timeout=2, max_size=8 * 1024 * 1024, proxy=None)


def send(ws, action, message):
    ws.send(json.dumps({"action": action, "message": message}))


def recv(ws, timeout):
    try:
        raw = ws.recv(timeout=timeout)
    except TimeoutError:
        raise Fail(f"no message within {timeout} s") from None
    check(isinstance(raw, str), f"expected a text frame, got {type(raw).__name__}")
    msg = json.loads(raw)
    check(isinstance(msg, dict) and isinstance(msg.get("message"), dict), f"bad envelope: {raw[:200]}")
    check(msg.get("action") != "error", f"server error: {msg.get('message')}")
    return msg["action"], msg["message"]


def expect(ws, action, timeout=10):
    got, message = recv(ws, timeout)
    check(got == action, f"expected {action!r}, got {got!r}: {json.dumps(message)[:200]}")
    return message


def check_point(p, asset_ids=(ASSET_ID,)):
    """A well-formed point of one of `asset_ids` (by default the one asset followed)."""
    check(isinstance(p, dict), f"point is not an object: {p!r}")
    check(set(p) == {"assetId", "assetName", "time", "value"}, f"point members: {sorted(p)}")
    check(p["assetId"] in asset_ids and p["assetName"] == ASSETS[p["assetId"] - 1],
          f"point of the wrong asset: {p}")
    check(type(p["time"]) is int, f"time is not an integer: {p}")
    value = p["value"]
    check(type(value) in (int, float) and math.isfinite(value) and value > 0, f"bad value: {p}")


def subscribe(ws, since=None):
    message = {"assetId": ASSET_ID}
    if since is not None:
        message["since"] = since
    send(ws, "subscribe", message)
    points = expect(ws, "asset_history")["points"]
    check(isinstance(points, list), "asset_history.points is not a list")
    for p in points:
        check_point(p)
    times = [p["time"] for p in points]
    check(all(a < b for a, b in zip(times, times[1:])), "asset_history is not strictly ascending")
    check(since is None or all(t > since for t in times), f"asset_history holds points at or before since={since}")
    return points


def stored_times():
    """The asset's points as the stack holds them: a new client's full asset_history."""
    with open_ws() as ws:
        return [p["time"] for p in subscribe(ws)]


class Follower(threading.Thread):
    """A client that follows the asset through the load balancer the way docs/protocol.md
    tells clients to: on any disconnect it reconnects and subscribes with `since` = the
    time of its last point. It records every point it got, each close code, and when."""

    def __init__(self, name):
        super().__init__(name=name, daemon=True)
        self.stop = threading.Event()
        self.times = []
        self.closes = []  # (monotonic time, close code or None)
        self.connects = 0
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set():
                self.session()
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            self.error = e

    def session(self):
        deadline = time.monotonic() + 60
        while True:
            try:
                ws = open_ws().__enter__()
                break
            except (OSError, WebSocketException) as e:
                if time.monotonic() > deadline or self.stop.is_set():
                    raise Fail(f"{self.name}: no reconnect within 60 s: {e}") from None
                time.sleep(0.5)
        self.connects += 1
        try:
            since = self.times[-1] if self.times else None
            for p in subscribe(ws, since):
                self.times.append(p["time"])
            while not self.stop.is_set():
                try:
                    raw = ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                msg = json.loads(raw)
                if msg.get("action") == "point":
                    check_point(msg["message"])
                    self.times.append(msg["message"]["time"])
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd is not None else None
            self.closes.append((time.monotonic(), code))
            return
        except (OSError, WebSocketException) as e:
            self.closes.append((time.monotonic(), f"error: {e}"))
            return
        finally:
            ws.close()

    def finish(self):
        self.stop.set()
        self.join(timeout=10)
        check(not self.is_alive(), f"{self.name} did not stop")
        if self.error:
            raise Fail(f"{self.name}: {self.error}")


def start_followers(count, tag):
    followers = [Follower(f"{tag}-{i}") for i in range(count)]
    for f in followers:
        f.start()
        time.sleep(0.1)
    wait_until(f"{count} {tag} clients subscribed with live points", 30,
               lambda: all(len(f.times) >= 2 for f in followers) or any(f.error for f in followers))
    for f in followers:
        check(not f.error, f"{f.name}: {f.error}")
    return followers


def check_continuity(followers, after_s):
    """Every follower got each stored point of its span once, in order: nothing lost
    across its reconnects, nothing repeated."""
    newest = max(f.times[-1] for f in followers)
    stored = wait_until("a new client's history reaches the clients' newest point", 15,
                        lambda: (lambda s: s if s and s[-1] >= newest else None)(stored_times()))
    for f in followers:
        got = f.times
        check(all(a < b for a, b in zip(got, got[1:])), f"{f.name} got a point twice or out of order: {got}")
        want = [t for t in stored if got[0] <= t <= got[-1]]
        lost = sorted(set(want) - set(got))
        check(not lost, f"{f.name} lost points at {lost}")
        check(got[-1] >= after_s, f"{f.name} has no point after {after_s} (last {got[-1]})")
    say(f"{len(followers)} clients: every stored point of their span once, in order "
        f"({min(len(f.times) for f in followers)}..{max(len(f.times) for f in followers)} points each)")


def finish_all(followers):
    for f in followers:
        f.finish()


# --- the checks --------------------------------------------------------------------


def http_status(path):
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(HTTP + path, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def check_nonroot():
    ids = containers()
    check(ids, "no running container in the project")
    for cid in ids:
        name = inspect(cid, "{{.Name}}").lstrip("/")
        user = inspect(cid, "{{.Config.User}}")
        check(user not in ("", "0", "root") and not user.startswith(("0:", "root:")),
              f"{name} has no non-root user configured (User={user!r})")
        rows = run("docker", "top", cid, "-eo", "pid,uid,comm").splitlines()[1:]
        uids = {row.split()[1] for row in rows if row.strip()}
        check(uids and "0" not in uids and "root" not in uids, f"{name} runs a process as root: {rows}")
        say(f"{name}: user {user}, process uids {sorted(uids)}")


def image_sizes():
    seen = {}
    for cid in containers():
        image = inspect(cid, "{{.Config.Image}}")
        seen[image] = int(inspect(image, "{{.Size}}"))
    for image, size in sorted(seen.items()):
        print(f"   image {image}: {size / 1e6:.0f} MB", flush=True)


def check_lb_paths():
    check(http_status("/healthz") == 200, "GET /healthz through the load balancer is not 200")
    status = http_status("/metrics")
    check(status == 404, f"GET /metrics through the load balancer answered {status}, not 404")
    say("load balancer: /healthz 200, /metrics 404")


def check_protocol():
    with open_ws() as ws:
        send(ws, "assets", {})
        listed = expect(ws, "assets")["assets"]
        expected = [{"id": i, "name": n} for i, n in enumerate(ASSETS, start=1)]
        check(listed == expected, f"assets: expected {expected}, got {listed}")
        say(f"assets: {', '.join(a['name'] for a in listed)}")
        history = subscribe(ws)
        check(history, "asset_history is empty although the fetcher has been storing points")
        times = [p["time"] for p in history]
        newest = int(time.time())
        check(newest - times[-1] <= 5, f"asset_history ends at {times[-1]}, {newest - times[-1]} s ago")
        check(times[0] >= newest - 1800 - 5, f"asset_history starts at {times[0]}, beyond the 30-minute window")
        say(f"asset_history: {len(times)} points {times[0]}..{times[-1]}, ascending, the whole window")
        last = times[-1]
        live = []
        for _ in range(3):
            p = expect(ws, "point", 15)
            check_point(p)
            check(p["time"] > last, f"point {p['time']} does not follow {last}: the seam repeats a point")
            last = p["time"]
            live.append(last)
        say(f"live points {live} follow the history without a repeat")


def http_get(path, headers=None, timeout=10):
    """GET through the load balancer: (status, headers, body bytes), errors included."""
    request = urllib.request.Request(HTTP + path, headers=headers or {})
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def sse_events(response, deadline_s):
    """The events of an open text/event-stream response, as dicts of their fields."""
    event = {}
    while True:
        if time.monotonic() > deadline_s:
            raise Fail("the event stream stalled")
        line = response.readline()
        check(line, "the event stream ended")
        line = line.decode().rstrip("\r\n")
        if not line:
            if event:
                yield event
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            event[field] = value[1:] if value.startswith(" ") else value


def open_stream(path, last_event_id=None):
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    request = urllib.request.Request(HTTP + path, headers=headers)
    response = urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=15)
    check(response.status == 200, f"GET {path} answered {response.status}")
    kind = response.headers.get("Content-Type", "")
    check(kind.startswith("text/event-stream"), f"GET {path}: Content-Type {kind!r}")
    return response


def check_http_face():
    """REST, compressed, and Server-Sent Events through the load balancer: the
    stream's first live point must arrive at once, so nginx does not buffer it."""
    status, headers, body = http_get("/v1/assets", {"Accept-Encoding": "gzip"})
    check(status == 200, f"GET /v1/assets answered {status}")
    check(headers.get("Content-Encoding") in (None, "gzip"), f"GET /v1/assets: {headers.get('Content-Encoding')}")
    status, _, body = http_get("/v1/latest")
    check(status == 200, f"GET /v1/latest answered {status}")
    latest = json.loads(body)["points"]
    check({p["assetName"] for p in latest} == set(ASSETS), f"/v1/latest: {latest}")
    now = int(time.time())
    status, _, body = http_get(f"/v1/candles?asset={ASSET}&interval=1m&from={now - 600}&to={now}")
    check(status == 200, f"GET /v1/candles answered {status}: {body[:200]!r}")
    candles = json.loads(body)["candles"]
    check(candles and not candles[-1]["closed"], f"/v1/candles: no running candle in {candles[-2:]}")
    say(f"REST: /v1/assets, /v1/latest ({len(latest)} assets), /v1/candles ({len(candles)} 1m candles)")

    names = ",".join(ASSETS[:2])
    path = f"/v1/stream?assets={names}&history=1"
    response = open_stream(path)
    opened = time.monotonic()
    # Two points a second: four within 10 s. A buffering proxy holds them back until
    # a buffer (4 or 8 KiB, 25 or more points) fills.
    deadline = opened + 10
    histories, points, last_id = 0, [], None
    try:
        for event in sse_events(response, deadline):
            kind = event.get("event", "message")
            if kind == "asset_history":
                histories += 1
            elif kind == "point":
                point = json.loads(event["data"])
                check_point(point, (1, 2))
                points.append(point)
                last_id = event.get("id", last_id)
                if len(points) == 4:
                    break
    finally:
        response.close()
    check(histories == 2, f"{histories} asset_history events for 2 assets")
    check(last_id, "the stream's points carry no id")
    first_after = time.monotonic() - opened
    say(f"SSE: 2 histories and {len(points)} live points in {first_after:.1f} s, last id {last_id!r}")
    newest = {}
    for p in points:
        newest[p["assetId"]] = max(newest.get(p["assetId"], 0), p["time"])
    # Resume as a browser does: only later points, none repeated.
    response = open_stream(f"/v1/stream?assets={names}", last_id)
    try:
        event = next(e for e in sse_events(response, time.monotonic() + 20) if e.get("event") == "point")
    finally:
        response.close()
    point = json.loads(event["data"])
    check(point["time"] > newest.get(point["assetId"], 0),
          f"resumed with Last-Event-ID {last_id!r}, got {point['time']} of asset {point['assetId']} again")
    say(f"SSE resume with Last-Event-ID: the next point is {point['time']} of asset {point['assetId']}, nothing repeated")


def check_scale():
    say("docker compose up -d --scale api=3")
    compose("up", "-d", "--no-recreate", "--scale", "api=3")
    apis = wait_until("3 api replicas running", 60, lambda: (lambda c: c if len(c) == 3 else None)(containers("api")))
    for cid in apis:
        wait_healthy(cid, 120, "api replica")
    say(f"api replicas: {', '.join(short(c) for c in apis)} healthy")

    # nginx re-resolves `api` every 10 s: open subscribed connections until each of
    # the three replicas holds some.
    with contextlib.ExitStack() as opened:
        def spread():
            subscribe(opened.enter_context(open_ws()))
            counts = {short(c): subscribers(c) for c in apis}
            return counts if all(counts.values()) else None

        counts = wait_until("new connections reach all three replicas", 60, spread, every=0.3)
        say(f"new connections spread over the replicas: subscribers {counts}")
    return apis


def check_crash(apis):
    followers = start_followers(FOLLOWERS, "crash")
    counts = {c: subscribers(c) for c in apis}
    victim = max(counts, key=counts.get)
    on_victim = counts[victim]
    check(on_victim >= 1, f"no follower on any replica: {counts}")
    restarts = int(inspect(victim, "{{.RestartCount}}"))
    pid = inspect(victim, "{{.State.Pid}}")
    say(f"kill -9 {pid} (main process of api {short(victim)}, {on_victim} of {FOLLOWERS} clients on it)")
    run(*KILL, pid)
    t_kill = time.monotonic()

    # While the replica is down or not ready, every new client must land elsewhere at
    # the first attempt: nginx skips a peer that refuses the connection or answers 503.
    probes = 0
    while True:
        with open_ws() as ws:
            subscribe(ws)
        probes += 1
        state = inspect(victim, "{{.RestartCount}} {{.State.Running}}")
        if state == f"{restarts + 1} true" and health(victim) == "healthy":
            break
        check(time.monotonic() - t_kill < 120, f"api {short(victim)} not restarted and healthy within 120 s ({state}, {health(victim)})")
        time.sleep(0.3)
    say(f"restarted by its policy (RestartCount {restarts + 1}) and healthy after "
        f"{time.monotonic() - t_kill:.0f} s; {probes} new clients meanwhile, each served at its first attempt")

    healthy_at = int(time.time())
    wait_until("every client has live points after the restart", 30,
               lambda: all(f.times and f.times[-1] > healthy_at + 1 for f in followers) or any(f.error for f in followers))
    finish_all(followers)
    dropped = [f for f in followers if f.closes]
    check(len(dropped) >= on_victim, f"{on_victim} clients were on the killed replica, only {len(dropped)} saw a drop")
    say(f"{len(dropped)} clients dropped and reconnected with since: "
        f"{[(f.name, f.connects) for f in dropped]}")
    check_continuity(followers, healthy_at)

    # Back in the rotation: new clients reach it again (after nginx's fail_timeout).
    with contextlib.ExitStack() as opened:
        def reached():
            subscribe(opened.enter_context(open_ws()))
            return subscribers(victim) >= 1

        wait_until(f"new clients reach the restarted api {short(victim)}", 60, reached, every=0.5)
        say("new clients reach the restarted replica again")


def check_stop(apis):
    followers = start_followers(FOLLOWERS, "stop")
    counts = {c: subscribers(c) for c in apis}
    victim = max(counts, key=counts.get)
    on_victim = counts[victim]
    say(f"docker stop api {short(victim)} ({on_victim} of {FOLLOWERS} clients on it)")
    t0 = time.monotonic()
    run("docker", "stop", "-t", str(STOP_GRACE), victim)
    stopped_in = time.monotonic() - t0
    exit_code = inspect(victim, "{{.State.ExitCode}}")
    check(exit_code == "0", f"api {short(victim)} exited with {exit_code}, not 0")
    away = [f for f in followers if any(code == 1001 and at - t0 <= STOP_GRACE for at, code in f.closes)]
    other = [(f.name, f.closes) for f in followers if f.closes and f not in away]
    check(len(away) == on_victim, f"{on_victim} clients on the stopped replica, {len(away)} got 1001; others: {other}")
    check(not other, f"clients of other replicas were closed: {other}")
    say(f"exit code 0 after {stopped_in:.1f} s; its {len(away)} clients got close 1001 "
        f"within {max(at - t0 for f in away for at, code in f.closes if code == 1001):.1f} s")
    run("docker", "start", victim)
    wait_healthy(victim, 120, "restarted api")
    resumed_at = int(time.time())
    wait_until("every client has live points after the stop", 30,
               lambda: all(f.times and f.times[-1] > resumed_at for f in followers) or any(f.error for f in followers))
    finish_all(followers)
    check_continuity(followers, resumed_at)
    say(f"api {short(victim)} started again and healthy")


def check_fetcher_crash():
    (fetcher,) = wait_until("one fetcher running", 10, lambda: containers("fetcher"))
    restarts = int(inspect(fetcher, "{{.RestartCount}}"))
    pid = inspect(fetcher, "{{.State.Pid}}")
    say(f"kill -9 {pid} (main process of the fetcher {short(fetcher)})")
    t_kill = time.time()
    run(*KILL, pid)
    wait_until("fetcher restarted", 60,
               lambda: inspect(fetcher, "{{.RestartCount}} {{.State.Running}}") == f"{restarts + 1} true")
    t_start = started_at(fetcher)
    wait_healthy(fetcher, 90, "restarted fetcher")
    stored = wait_until("points stored after the restart", 30,
                        lambda: (lambda s: s if s and s[-1] >= int(t_start) + 5 else None)(stored_times()))
    before = [t for t in stored if t < t_kill]
    after = [t for t in stored if t >= t_kill]
    check(before and after, "no points on one side of the fetcher crash")
    # Seconds stored before the kill, and from the restarted fetcher's first point on,
    # are each present: only the outage itself is a gap.
    span = set(stored)
    lost_before = [t for t in range(int(t_kill) - 20, before[-1]) if t not in span]
    lost_after = [t for t in range(after[0], stored[-1]) if t not in span]
    check(not lost_before, f"seconds missing before the crash: {lost_before}")
    check(not lost_after, f"seconds missing after the restart: {lost_after}")
    gap = after[0] - before[-1] - 1
    outage = t_start - t_kill
    check(before[-1] >= int(t_kill) - 2, f"last point before the crash {before[-1]} is {t_kill - before[-1]:.1f} s before it")
    check(after[0] <= t_start + 10, f"first point after the restart {after[0]} is {after[0] - t_start:.1f} s after the start")
    say(f"restarted after {outage:.1f} s; gap {gap} s ({before[-1] + 1}..{after[0] - 1}), "
        f"no second missing before the kill or after the restart's first point")


def check_network_cut(apis):
    victim = apis[-1]
    (network,) = run("docker", "network", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
                     "--filter", "label=com.docker.compose.network=database").split()
    name = inspect(network, "{{.Name}}")
    say(f"docker network disconnect {name} api {short(victim)}")
    run("docker", "network", "disconnect", name, victim)
    t0 = time.monotonic()
    try:
        status, body = wait_until(f"/readyz of {short(victim)} turns 503", 90,
                                  lambda: (lambda r: r if r[0] == 503 else None)(exec_http(victim, "/readyz")), every=1)
        say(f"/readyz {status} after {time.monotonic() - t0:.0f} s: {body.strip()}")
        with open_ws() as ws:
            subscribe(ws)
        say("the load balancer still serves new clients")
    finally:
        run("docker", "network", "connect", name, victim)
    t1 = time.monotonic()
    status, body = wait_until(f"/readyz of {short(victim)} back to 200", 90,
                              lambda: (lambda r: r if r[0] == 200 else None)(exec_http(victim, "/readyz")), every=1)
    say(f"reconnected: /readyz {status} after {time.monotonic() - t1:.0f} s")
    wait_healthy(victim, 60, "reconnected api")


def main():
    apis = []
    phases = [
        ("containers run as non-root users", check_nonroot),
        ("image sizes", image_sizes),
        ("load balancer paths", check_lb_paths),
        ("protocol through the load balancer", check_protocol),
        ("REST and Server-Sent Events through the load balancer", check_http_face),
        ("scale the api to 3 replicas", lambda: apis.extend(check_scale())),
        ("kill -9 of an api replica under subscribed clients", lambda: check_crash(apis)),
        ("docker stop of an api replica", lambda: check_stop(apis)),
        ("kill -9 of the fetcher", check_fetcher_crash),
        ("an api replica cut off from the database network", lambda: check_network_cut(apis)),
        ("containers still run as non-root users", check_nonroot),
    ]
    for title, phase in phases:
        print(f"-- {title}", flush=True)
        started = time.monotonic()
        phase()
        say(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    try:
        main()
    except Fail as e:
        print(f"client: FAIL: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    except (OSError, WebSocketException, subprocess.SubprocessError, ValueError) as e:
        print(f"client: FAIL: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    print("client: ok", flush=True)
