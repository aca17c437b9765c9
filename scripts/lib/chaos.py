#!/usr/bin/env python3
"""The clients, the chaos and the journal check of scripts/chaos (which prepares the cluster,
the database, the tenant and the key, then runs this). Python 3 standard library only.

Clients: WORKERS threads post new feedback (natural key `chaos:<worker>-<n>`, one in four with
an Idempotency-Key, one in eight a safeguarding concern), each on a keep-alive connection,
retrying a request on a connection error, a timeout, 503, 429, or 409 "idempotency key in use",
until it is answered 201 or 200. A request put aside to retry later does not hold its worker
up: the worker posts new ones meanwhile. Every acknowledged answer (201/200) goes to the
journal (natural key, id, status, SHA-256 of the body, Idempotency-Key) once: for a request with
an Idempotency-Key that is its first answer.

Chaos: `heard serve --no-migrate` SIGKILLed and started again KILLS times, PostgreSQL restarted
with `pg_ctl restart -m immediate` RESTARTS times, in a random order at random intervals. A
supervisor starts heard again whenever it exits (start-up fails while PostgreSQL is down).

Check, against the database as its superuser: every journaled write is there with its id,
exactly one row per natural key, each record with one audit row of its creation and, for a
concern, one alert; then every Idempotency-Key request is sent again and must be answered with
the status and body it was first answered with. Rows nobody journaled are allowed (committed,
but the answer was lost in a kill). Exits 1 on any loss, duplicate, differing replay, unexpected
answer, request left unanswered for 15 s or logged by heard as taking over 10 s (a hang), or
heard exiting on its own once it was serving (a SIGTERM from some other process is reported, not
counted: heard logs which signal stopped it).
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

SOURCE = "chaos"


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--heard", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pg-dir", required=True)
    p.add_argument("--pg-bin", required=True)
    p.add_argument("--database", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--restarts", type=int, default=20)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--gap", type=float, nargs=2, default=(1.0, 4.0), help="seconds between faults, min and max")
    p.add_argument("--grace", type=float, default=90, help="seconds the workers get to finish after the chaos")
    p.add_argument("--seed", type=int, default=None)
    return p.parse_args()


def as_postgres(command):
    """PostgreSQL's own tools run as its owner: `postgres` when we are root."""
    return (["runuser", "-u", "postgres", "--"] + command) if os.getuid() == 0 else command


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def feedback_body(external_id, concern):
    return json.dumps({
        "source_system": SOURCE, "external_id": external_id,
        "channel": "cic_review", "respondent_role": "young_person", "age_band": "13_to_15",
        "service_area": "children_looked_after", "team": "north", "stage": "review",
        "kind": "concern" if concern else "compliment",
        "given_at": "2026-11-20T10:00:00Z", "subject_ref": "P-" + external_id,
        "responses": [{"measure": "listened_to", "score": 5}, {"measure": "worker_knows_me", "score": 4}],
        "comment": "Chaos record " + external_id, "consent_to_follow_up": False,
        "safeguarding_concern": concern,
        "equality": {"gender": "female", "ethnicity": "white_british"},
    }, separators=(",", ":")).encode()


class Heard:
    """One `heard serve` at a time on a fixed port; its supervisor (the only one to start it after
    the first time) starts it again whenever it exits."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.proc = None
        self.serving = False      # answered /healthz since it was started
        self.starts = 0
        self.startup_failures = 0  # exited before serving (PostgreSQL down at start-up)
        self.crashes = []          # exited on its own while serving: a defect
        self.stopping = False
        self.killed = set()        # pids SIGKILLed on purpose
        self.stopped_from_outside = []  # SIGTERM/SIGINT from some other process: logged, then exit 0
        self.logs = os.path.join(args.work, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.env = dict(os.environ, LOG_LEVEL="info", RATE_LIMIT_PER_SECOND="1000000", RATE_LIMIT_BURST="1000000")

    def start(self):
        with self.lock:
            self.starts += 1
            self.serving = False
            with open(self.log_path(self.starts), "wb") as log:
                self.proc = subprocess.Popen([self.args.heard, "serve", "--no-migrate", "--port", str(self.args.port)],
                                             env=self.env, stdout=log, stderr=subprocess.STDOUT)
            self.proc.start_number = self.starts
            proc = self.proc
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if healthz(self.args.port):
                with self.lock:
                    if self.proc is proc:
                        self.serving = True
                return True
            time.sleep(0.05)
        return False

    def log_path(self, number):
        return os.path.join(self.logs, "heard-%03d.log" % number)

    def kill(self):
        """SIGKILL the running process; the supervisor starts the next. Waits until it serves."""
        deadline = time.monotonic() + 60
        while True:
            with self.lock:
                proc = self.proc
                if proc is not None and proc.poll() is None:
                    self.killed.add(proc.pid)
                    proc.send_signal(signal.SIGKILL)
                    break
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        while time.monotonic() < deadline:
            with self.lock:
                if self.proc is not proc and self.serving:
                    return True
            time.sleep(0.05)
        return False

    def wait_serving(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.serving and healthz(self.args.port):
                return True
            time.sleep(0.1)
        return False

    def supervise(self):
        while not self.stopping:
            with self.lock:
                proc, serving = self.proc, self.serving
            if proc is not None and proc.poll() is not None and not self.stopping:
                if proc.pid in self.killed:
                    delay = 0.1
                elif serving:
                    with open(self.log_path(proc.start_number), "rb") as log:
                        told = [json.loads(line) for line in log if b'"message":"shutting down"' in line]
                    what = "%s at %s" % (proc.returncode, time.strftime("%H:%M:%S"))
                    if proc.returncode == 0 and told:
                        self.stopped_from_outside.append(what + " on " + told[-1].get("signal", "?"))
                    else:
                        self.crashes.append(what)
                    delay = 0.3
                else:
                    self.startup_failures += 1
                    delay = 0.3
                time.sleep(delay)
                if not self.stopping:
                    self.start()
            time.sleep(0.05)

    def stop(self):
        """SIGTERM, as a deployment stops it: it must exit 0."""
        self.stopping = True
        with self.lock:
            proc = self.proc
        if proc is None:
            return None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            return "hung"


def healthz(port):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except (OSError, http.client.HTTPException):
        return False


class Journal:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.entries = []
        self.file = open(path, "w")

    def add(self, entry):
        with self.lock:
            self.entries.append(entry)
            self.file.write(json.dumps(entry) + "\n")
            self.file.flush()


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.values = {}
        self.unexpected = []
        self.timeouts = []  # requests not answered within 15 s: natural key and time

    def add(self, name, n=1):
        with self.lock:
            self.values[name] = self.values.get(name, 0) + n

    def get(self, name):
        return self.values.get(name, 0)


class Worker(threading.Thread):
    def __init__(self, index, args, key, journal, counters, stop_new, deadline):
        super().__init__(daemon=True)
        self.index, self.args, self.key = index, args, key
        self.journal, self.counters = journal, counters
        self.stop_new, self.deadline = stop_new, deadline
        self.conn = None
        self.pending = []  # requests put aside to retry: dicts with next_at
        self.n = 0

    def new_request(self):
        self.n += 1
        external_id = "%d-%d" % (self.index, self.n)
        concern = self.n % 8 == 0
        idempotency_key = "chaos-%s" % external_id if self.n % 4 == 1 else None
        return {"external_id": external_id, "body": feedback_body(external_id, concern), "concern": concern,
                "idempotency_key": idempotency_key, "attempts": 0, "next_at": 0.0}

    def run(self):
        while True:
            now = time.monotonic()
            if self.stop_new.is_set():
                if not self.pending:
                    break
                if now > self.deadline[0]:
                    self.counters.add("abandoned", len(self.pending))
                    break
            due = min(self.pending, key=lambda r: r["next_at"]) if self.pending else None
            if due is not None and due["next_at"] <= now:
                self.pending.remove(due)
                request = due
            elif not self.stop_new.is_set():
                request = self.new_request()
            else:
                time.sleep(min(0.1, max(0.0, due["next_at"] - now)))
                continue
            self.attempt(request)
        if self.conn:
            self.conn.close()

    def retry_later(self, request, delay, counter):
        self.counters.add(counter)
        request["next_at"] = time.monotonic() + delay * random.uniform(0.8, 1.2)
        self.pending.append(request)
        time.sleep(0.1)  # as a client backs off: no new request at once either

    def attempt(self, request):
        request["attempts"] += 1
        headers = {"Authorization": "Bearer " + self.key, "Content-Type": "application/json"}
        if request["idempotency_key"]:
            headers["Idempotency-Key"] = request["idempotency_key"]
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.args.port, timeout=15)
            self.conn.request("POST", "/v1/feedback", body=request["body"], headers=headers)
            response = self.conn.getresponse()
            body = response.read()
            status = response.status
            if response.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
        except socket.timeout:
            self.close()
            with self.counters.lock:
                self.counters.timeouts.append("%s at %s" % (request["external_id"], time.strftime("%H:%M:%S")))
            return self.retry_later(request, 0.2, "timeouts")
        except (OSError, http.client.HTTPException):
            self.close()
            return self.retry_later(request, 0.1, "connection_errors")
        if status in (200, 201):
            try:
                record_id = json.loads(body)["id"]
            except (ValueError, KeyError, TypeError):
                record_id = None
            self.counters.add("acknowledged")
            self.journal.add({"external_id": request["external_id"], "id": record_id, "status": status,
                              "body_sha256": sha256(body), "idempotency_key": request["idempotency_key"],
                              "concern": request["concern"], "attempts": request["attempts"]})
        elif status == 503:
            self.retry_later(request, 0.3, "answered_503")
        elif status == 429:
            self.retry_later(request, 1.0, "answered_429")
        elif status == 409 and b"idempotency-key-in-use" in body:
            self.retry_later(request, 1.0, "answered_409_in_flight")
        else:
            with self.counters.lock:
                self.counters.unexpected.append((request["external_id"], status, body[:300].decode("utf-8", "replace")))

    def close(self):
        if self.conn:
            self.conn.close()
        self.conn = None


def restart_postgres(args):
    subprocess.run(as_postgres([os.path.join(args.pg_bin, "pg_ctl"), "-D", args.pg_dir, "-l", os.path.join(args.pg_dir, "server.log"),
                                "-m", "immediate", "-w", "-t", "60", "restart"]),
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def psql(args, sql):
    out = subprocess.run([os.path.join(args.pg_bin, "psql"), "-h", args.pg_dir, "-U", "postgres", "-d", args.database,
                          "-qAt", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


class Replayer:
    """Sends Idempotency-Key requests again, on one keep-alive connection."""

    def __init__(self, args, key):
        self.args, self.key, self.conn = args, key, None

    def replay(self, entry):
        """(status, body SHA-256) of the answer to the request sent again."""
        for _ in range(50):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.args.port, timeout=15)
                self.conn.request("POST", "/v1/feedback", body=feedback_body(entry["external_id"], entry["concern"]),
                                  headers={"Authorization": "Bearer " + self.key, "Content-Type": "application/json",
                                           "Idempotency-Key": entry["idempotency_key"]})
                response = self.conn.getresponse()
                body = response.read()
                if response.status != 503:
                    return response.status, sha256(body)
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
            time.sleep(0.2)
        return None, None


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops heard
    heard = Heard(args)
    try:
        run(args, heard)
    finally:
        heard.stopping = True  # whatever happened, no heard is left running
        with heard.lock:
            if heard.proc is not None and heard.proc.poll() is None:
                heard.proc.kill()


def run(args, heard):
    key = os.environ["HEARD_KEY"]
    rng = random.Random(args.seed)
    if not heard.start():
        sys.exit("chaos: heard serve did not start")
    supervisor = threading.Thread(target=heard.supervise, daemon=True)
    supervisor.start()

    journal = Journal(os.path.join(args.work, "journal.jsonl"))
    counters = Counters()
    stop_new = threading.Event()
    deadline = [float("inf")]
    workers = [Worker(i + 1, args, key, journal, counters, stop_new, deadline) for i in range(args.workers)]
    for worker in workers:
        worker.start()

    faults = ["kill"] * args.kills + ["restart"] * args.restarts
    rng.shuffle(faults)
    kills = restarts = slow_recoveries = 0
    started = time.monotonic()
    for number, fault in enumerate(faults, 1):
        time.sleep(rng.uniform(*args.gap))
        if fault == "kill":
            if not heard.kill():
                slow_recoveries += 1
            kills += 1
        else:
            restart_postgres(args)
            restarts += 1
        print("chaos: %s %3.0fs fault %d/%d: %s; %d acknowledged so far" % (
            time.strftime("%H:%M:%S"), time.monotonic() - started, number, len(faults),
            "heard SIGKILLed and started" if fault == "kill" else "postgres restarted -m immediate",
            counters.get("acknowledged")), file=sys.stderr, flush=True)
    time.sleep(rng.uniform(*args.gap))
    chaos_seconds = time.monotonic() - started

    deadline[0] = time.monotonic() + args.grace
    stop_new.set()
    for worker in workers:
        worker.join()
    print("chaos: clients done %.0fs after the last fault" % (time.monotonic() - started - chaos_seconds),
          file=sys.stderr, flush=True)
    if not heard.wait_serving(60):
        sys.exit("chaos: heard serve is not serving for the check")

    # --- The journal against the database (superuser: every row, no row-level security) -----
    entries = journal.entries
    stored = {row[0]: row[1] for row in psql(args, "SELECT external_id, id FROM feedback WHERE source_system = '%s'" % SOURCE)}
    lost = [e for e in entries if stored.get(e["external_id"]) != e["id"]]
    duplicates = psql(args, "SELECT external_id, count(*) FROM feedback WHERE source_system = '%s' "
                            "GROUP BY tenant_id, external_id HAVING count(*) > 1" % SOURCE)
    # Joins on counts grouped once (audit_events has no index on resource_id: a subquery per
    # record would scan it once per record).
    unaudited = psql(args, "SELECT f.external_id FROM feedback f LEFT JOIN "
                           "(SELECT tenant_id, resource_id, count(*) AS n FROM audit_events "
                           " WHERE action = 'create' AND resource_type = 'feedback' GROUP BY 1, 2) a "
                           "ON a.tenant_id = f.tenant_id AND a.resource_id = f.id::text "
                           "WHERE f.source_system = '%s' AND coalesce(a.n, 0) <> 1" % SOURCE)
    alerts_wrong = psql(args, "SELECT f.external_id FROM feedback f LEFT JOIN "
                              "(SELECT tenant_id, feedback_id, count(*) AS n FROM safeguarding_alerts GROUP BY 1, 2) a "
                              "ON a.tenant_id = f.tenant_id AND a.feedback_id = f.id "
                              "WHERE f.source_system = '%s' AND coalesce(a.n, 0) <> CASE WHEN f.safeguarding_concern THEN 1 ELSE 0 END" % SOURCE)
    journaled = {e["external_id"] for e in entries}
    unjournaled = len(set(stored) - journaled)

    replays = [e for e in entries if e["idempotency_key"]]
    differing = []
    replayer = Replayer(args, key)
    for entry in replays:
        status, digest = replayer.replay(entry)
        if (status, digest) != (entry["status"], entry["body_sha256"]):
            differing.append((entry["idempotency_key"], entry["status"], status))
    exit_status = heard.stop()
    durations = []
    for name in os.listdir(heard.logs):
        with open(os.path.join(heard.logs, name), "rb") as log:
            durations += [json.loads(line)["duration_ms"] for line in log if b'"duration_ms"' in line]

    print("chaos: %s acknowledged writes, %d lost, %d duplicates, %d of %d replays identical; %d heard kills, %d postgres restarts" % (
        format(len(entries), ","), len(lost), len(duplicates), len(replays) - len(differing), len(replays), kills, restarts))
    print("chaos: %.0fs of faults, %d workers; retried: %d connection errors, %d timeouts, %d answered 503, %d answered 409 (key in flight), "
          "%d answered 429; records committed but never acknowledged: %d; requests abandoned unanswered at the end: %d; "
          "heard start-ups that failed (database down): %d; heard exits on its own while serving: %d; SIGTERM at the end: exit %s" % (
              chaos_seconds, args.workers, counters.get("connection_errors"), counters.get("timeouts"),
              counters.get("answered_503"), counters.get("answered_409_in_flight"), counters.get("answered_429"),
              unjournaled, counters.get("abandoned"), heard.startup_failures, len(heard.crashes), exit_status))
    print("chaos: heard's own log: %d requests, the slowest answered in %.0f ms" % (len(durations), max(durations or [0])))
    if counters.timeouts:
        print("chaos: not answered within 15 s (then retried): %s" % ", ".join(counters.timeouts[:10]))
    if heard.stopped_from_outside:
        print("chaos: heard stopped by a signal from another process (not a fault of heard, started again): %s"
              % ", ".join(heard.stopped_from_outside))

    failures = []
    if not entries:
        failures.append("no write was acknowledged")
    if lost:
        failures.append("%d acknowledged writes lost or with another id, e.g. %s" % (len(lost), lost[:3]))
    if duplicates:
        failures.append("%d natural keys with more than one row, e.g. %s" % (len(duplicates), duplicates[:3]))
    if unaudited:
        failures.append("%d records without exactly one audit row of their creation, e.g. %s" % (len(unaudited), unaudited[:3]))
    if alerts_wrong:
        failures.append("%d records with the wrong number of safeguarding alerts, e.g. %s" % (len(alerts_wrong), alerts_wrong[:3]))
    if differing:
        failures.append("%d Idempotency-Key replays answered differently (key, first, replay), e.g. %s" % (len(differing), differing[:3]))
    if counters.timeouts:
        failures.append("%d requests were not answered within 15 s" % len(counters.timeouts))
    slow = [d for d in durations if d > 10000]
    if slow:
        failures.append("heard took over 10 s to answer %d requests (the slowest %.0f ms)" % (len(slow), max(slow)))
    if counters.unexpected:
        failures.append("%d unexpected answers, e.g. %s" % (len(counters.unexpected), counters.unexpected[:3]))
    if heard.crashes:
        failures.append("heard exited on its own while serving, %d times (exit status and time: %s)" % (len(heard.crashes), heard.crashes[:5]))
    if slow_recoveries:
        failures.append("heard was not serving again within 60 s of a kill, %d times" % slow_recoveries)
    if exit_status != 0:
        failures.append("heard serve did not exit 0 on SIGTERM (%s)" % exit_status)
    for failure in failures:
        print("chaos: FAILED: " + failure, file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
