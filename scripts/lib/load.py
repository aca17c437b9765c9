#!/usr/bin/env python3
"""Clients for scripts/abuse (Python 3 standard library only), against heard on 127.0.0.1:PORT.

  load.py burst PORT COUNT            COUNT POST /v1/feedback at once (HEARD_KEY), each on its own
                                      connection; prints one line per answer: status, Retry-After,
                                      seconds taken (or "none" if no answer within 60 s)
  load.py probe PORT SECONDS RATE     GET /healthz on a new connection RATE times a second for
                                      SECONDS; prints count, failures, p50, p99 and max in ms
  load.py soak PORT PID MINUTES RATE  POST /v1/feedback and GET it back (HEARD_KEY), RATE requests a
                                      second in all, for MINUTES; every minute PID's RSS (VmRSS)
                                      with that minute's requests, failures and p99
"""

import http.client
import json
import os
import sys
import threading
import time


def feedback_body(external_id):
    return json.dumps({
        "source_system": "abuse", "external_id": external_id,
        "channel": "survey", "respondent_role": "parent_carer", "age_band": "adult",
        "service_area": "early_help", "team": "south", "stage": "closure", "kind": "general",
        "given_at": "2026-11-20T10:00:00Z", "subject_ref": "P-1",
        "responses": [{"measure": "listened_to", "score": 4}],
        "comment": "Soak record", "consent_to_follow_up": False,
    }, separators=(",", ":")).encode()


def headers():
    return {"Authorization": "Bearer " + os.environ["HEARD_KEY"], "Content-Type": "application/json"}


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def burst(port, count):
    results = [None] * count
    barrier = threading.Barrier(count)

    def one(index):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.connect()
        barrier.wait()
        started = time.monotonic()
        try:
            conn.request("POST", "/v1/feedback", body=feedback_body("burst-%d-%d" % (os.getpid(), index)), headers=headers())
            response = conn.getresponse()
            response.read()
            results[index] = (response.status, response.getheader("Retry-After"), time.monotonic() - started)
        except (OSError, http.client.HTTPException) as error:
            results[index] = (type(error).__name__, None, time.monotonic() - started)
        conn.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for status, retry_after, seconds in results:
        print("%s %s %.3f" % (status, retry_after or "-", seconds))


def probe(port, seconds, rate):
    times, failures = [], 0
    interval = 1.0 / rate
    next_at = time.monotonic()
    end = next_at + seconds
    while next_at < end:
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += interval
        started = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status != 200:
                failures += 1
                continue
        except (OSError, http.client.HTTPException):
            failures += 1
            continue
        times.append((time.monotonic() - started) * 1000)
    print("probe: %d GET /healthz on new connections, %d failed; p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (
        len(times) + failures, failures, percentile(times, 0.5), percentile(times, 0.99), max(times or [float("nan")])))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def soak(port, pid, minutes, rate):
    """CLIENTS threads, each on a keep-alive connection, share the rate: each posts a record and
    reads it back, one request every CLIENTS / RATE seconds."""
    clients = 8
    lock = threading.Lock()
    minute = {"requests": 0, "failures": 0, "times": []}
    statuses = {}
    stop = threading.Event()

    def client(index):
        conn, n = None, 0
        interval = clients / rate
        next_at = time.monotonic() + index * interval / clients
        created = None
        while not stop.is_set():
            time.sleep(max(0.0, next_at - time.monotonic()))
            # A steady rate: a client that fell behind goes on from now, it does not catch up.
            next_at = max(next_at + interval, time.monotonic())
            n += 1
            if created is None:
                method, path, body = "POST", "/v1/feedback", feedback_body("soak-%d-%d" % (index, n))
            else:
                method, path, body = "GET", created, None
            started = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request(method, path, body=body, headers=headers())
                response = conn.getresponse()
                response.read()
                status = response.status
                created = response.getheader("Location") if method == "POST" and status == 201 else None
            except (OSError, http.client.HTTPException) as error:
                status = type(error).__name__
                if conn:
                    conn.close()
                conn, created = None, None
            elapsed = (time.monotonic() - started) * 1000
            with lock:
                minute["requests"] += 1
                minute["times"].append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
                if status not in (200, 201):
                    minute["failures"] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    samples = [rss_kb(pid)]
    print("soak: %d requests/s (POST /v1/feedback, then GET it back), %d clients, %d minutes; RSS at start %.1f MB" % (
        rate, clients, minutes, samples[0] / 1024), flush=True)
    for number in range(1, minutes + 1):
        time.sleep(60)
        with lock:
            taken = dict(minute)
            minute.update(requests=0, failures=0, times=[])
        samples.append(rss_kb(pid))
        print("soak: minute %2d: RSS %.1f MB, %d requests, %d failed, p99 %.1f ms" % (
            number, samples[-1] / 1024, taken["requests"], taken["failures"], percentile(taken["times"], 0.99)), flush=True)
    stop.set()
    for thread in threads:
        thread.join()
    print("soak: RSS by minute (MB): %s; minute 1 to %d: %+.1f MB; answers %s" % (
        " ".join("%.1f" % (kb / 1024) for kb in samples), minutes, (samples[-1] - samples[1]) / 1024,
        ", ".join("%s x%d" % (k, v) for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0])))))


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "burst":
        burst(int(args[0]), int(args[1]))
    elif command == "probe":
        probe(int(args[0]), float(args[1]), float(args[2]))
    elif command == "soak":
        soak(int(args[0]), int(args[1]), int(args[2]), float(args[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
