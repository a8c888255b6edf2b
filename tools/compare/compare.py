#!/usr/bin/env python3
"""Runs AlertFanout's engine and its peers side by side on loopback and prints one table.

Throughput: the same URL on one loopback nginx, the same connections and duration, for `fanout load`, wrk, hey,
a C libcurl multi_socket + epoll loop, a C multi_perform loop, AsyncHTTPClient and URLSession; req/s and client
CPU per request (user + system time of the client process), each with its ratio to `fanout load`.
Then: idle cost (1,000 requests waiting 3 s), fan-out overhead (5 targets at 50/80/120/150/200 ms, 200 alerts/s, one
at a time and in bursts of 10, next to a raw burst of 50 for fanout load and hey),
connection churn (a new connection per request) against C libcurl, and the publish path's CPU per delivery
against a raw 1 KB POST of `fanout load` on the same nginx. Called by compare.sh, which builds
everything first. Traffic goes to 127.0.0.1 only.
"""

import json, os, re, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUICK = "--quick" in sys.argv
SECS = 3 if QUICK else 10
CONNS = 64
NGINX = "http://127.0.0.1:18090/"
B = os.path.join(ROOT, ".build")
FANOUT = os.path.join(B, "release/fanout")
MOCK = os.path.join(B, "release/mock-target")
C_SOCKET = os.path.join(B, "compare/curl_multi_socket")
C_PERFORM = os.path.join(B, "compare/curl_multi_perform")
AHC = os.path.join(ROOT, "tools/compare/ahc/.build/release/ahc-load")
URLSESSION = os.path.join(ROOT, "tools/compare/urlsession/.build/release/urlsession-load")


def timed(cmd):
    """Runs cmd under GNU time; returns (stdout+stderr, cpu seconds, wall seconds)."""
    t0 = time.time()
    p = subprocess.run(["/usr/bin/time", "-f", "TIME %U %S"] + cmd, capture_output=True, text=True)
    out = p.stdout + p.stderr
    m = re.findall(r"TIME ([\d.]+) ([\d.]+)", out)
    cpu = float(m[-1][0]) + float(m[-1][1]) if m else float("nan")
    return out, cpu, time.time() - t0


def requests_from(name, out):
    if name.startswith("fanout"):
        j = json.loads(out[out.index("{"):out.rindex("}") + 1])
        return j["requests"], j["elapsed_s"]
    if name in ("wrk",):
        n = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
        secs = float(n.group(2)) * (0.001 if n.group(3) == "ms" else 1)
        return int(n.group(1)), secs
    if name == "hey":
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        total = float(re.search(r"Total:\s+([\d.]+) secs", out).group(1))
        return int(rps * total), total
    m = re.search(r"requests (\d+) errors (\d+) seconds ([\d.]+)", out)
    return int(m.group(1)), float(m.group(3))


def rotating_rounds(tools, rounds):
    """Runs each (name, command) once per round, starting each round one tool later; returns name → [(req/s, CPU µs
    per request)]. A tool that is not built is skipped; a run whose output cannot be read is left out."""
    runs = {name: [] for name, _ in tools}
    for r in range(rounds):
        for name, cmd in tools[r % len(tools):] + tools[:r % len(tools)]:
            if not os.path.exists(cmd[0]) and not cmd[0].startswith(("wrk", "hey")):
                continue
            out, cpu, _ = timed(cmd)
            try:
                n, secs = requests_from(name, out)
            except Exception:
                print(f"  {name}: could not read its output:\n{out[-500:]}", file=sys.stderr)
                continue
            runs[name].append((n / secs, cpu / max(n, 1) * 1e6))
    return runs


def throughput():
    tools = [
        ("fanout load", [FANOUT, "load", NGINX, "-c", str(CONNS), "-d", f"{SECS}s", "--no-progress", "--json"]),
        ("fanout --epoll", [FANOUT, "load", NGINX, "-c", str(CONNS), "-d", f"{SECS}s", "--no-progress", "--json", "--epoll"]),
        ("fanout --per-socket", [FANOUT, "load", NGINX, "-c", str(CONNS), "-d", f"{SECS}s", "--no-progress", "--json", "--per-socket"]),
        ("fanout load -t 2", [FANOUT, "load", NGINX, "-c", str(CONNS), "-d", f"{SECS}s", "--no-progress", "--json", "-t", "2"]),
        ("wrk", ["wrk", "-t1", "-c", str(CONNS), "-d", f"{SECS}s", NGINX]),
        ("hey", ["hey", "-c", str(CONNS), "-z", f"{SECS}s", NGINX]),
        ("C multi_socket", [C_SOCKET, NGINX, str(CONNS), str(SECS)]),
        ("C multi_perform", [C_PERFORM, NGINX, str(CONNS), str(SECS)]),
        ("AsyncHTTPClient", [AHC, NGINX, str(CONNS), str(SECS)]),
        ("URLSession", [URLSESSION, NGINX, str(CONNS), str(SECS)]),
    ]
    # Rounds rotate the order and each figure is the median of its rounds: one 10 s run on this shared 2-core VM
    # varies by up to a fifth (the same `fanout load` took 25.6k and 30.9k req/s back to back).
    rounds = 1 if QUICK else 3
    runs = rotating_rounds(tools, rounds)
    rows = [(name, statistics.median(x for x, _ in runs[name]), statistics.median(y for _, y in runs[name])) for name, _ in tools if runs[name]]
    skipped = [name for name, _ in tools if not runs[name]]
    base = rows[0]
    print(f"throughput: loopback nginx (1 worker), {CONNS} connections, {SECS} s each, keep-alive, median of {rounds} round(s)")
    print(f"  {'client':<20}{'req/s':>10}{'CPU µs/req':>12}{'req/s ÷ fanout':>16}{'CPU ÷ fanout':>14}   runs (req/s)")
    for name, rps, us in rows:
        each = ", ".join(f"{x:.0f}" for x, _ in runs[name])
        print(f"  {name:<20}{rps:>10.0f}{us:>12.1f}{rps / base[1]:>16.2f}{us / base[2]:>14.2f}   {each}")
    if skipped:
        print(f"  not built, so not run: {', '.join(skipped)} (tools/compare/compare.sh builds them)")
    return rows


def head_to_head():
    """`fanout load` against the C multi_socket loop and hey in short runs taken in turn, each compared with the
    runs beside it: on this shared VM the same client's req/s drifts by a third within minutes, so the medians of
    the table above (runs a minute apart) mix that drift into their ratios; a ratio per round does not."""
    secs = 3 if QUICK else 5
    rounds = 1 if QUICK else 7
    tools = [
        ("fanout load", [FANOUT, "load", NGINX, "-c", str(CONNS), "-d", f"{secs}s", "--no-progress", "--json"]),
        ("C multi_socket", [C_SOCKET, NGINX, str(CONNS), str(secs)]),
        ("hey", ["hey", "-c", str(CONNS), "-z", f"{secs}s", NGINX]),
    ]
    tools = [(n, c) for n, c in tools if os.path.exists(c[0]) or c[0] == "hey"]
    runs = rotating_rounds(tools, rounds)
    if any(len(runs[n]) != rounds for n, _ in tools):
        print("head to head: a run failed (see above); no ratios")
        return
    print(f"head to head: {secs} s runs in turn, {rounds} round(s), {CONNS} connections; ratios per round, then their median")
    f = runs["fanout load"]
    for peer in [n for n, _ in tools if n != "fanout load"]:
        p = runs[peer]
        rps = [a[0] / b[0] for a, b in zip(f, p)]
        cpu = [a[1] / b[1] for a, b in zip(f, p)]
        print(f"  fanout ÷ {peer:<15} req/s {statistics.median(rps):.2f}× ({', '.join(f'{x:.2f}' for x in rps)})   "
              f"CPU/req {statistics.median(cpu):.2f}× ({', '.join(f'{x:.2f}' for x in cpu)})")
    for name, _ in tools:
        print(f"  {name:<15} req/s {', '.join(f'{x:.0f}' for x, _ in runs[name])}   µs/req {', '.join(f'{y:.1f}' for _, y in runs[name])}")


def idle_cost():
    mock = subprocess.Popen([MOCK, "--port", "18091", "--no-record"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    try:
        url = "http://127.0.0.1:18091/idle?delay_ms=3000"
        fast = "http://127.0.0.1:18091/fast"
        # Start-up and one request, to subtract: what remains is the cost of 1,000 requests and their wait.
        _, fbase, _ = timed([FANOUT, "load", fast, "-c", "1", "-n", "1", "--no-progress"])
        have_urlsession = os.path.exists(URLSESSION)
        _, ubase, _ = timed([URLSESSION, fast, "1", "0"]) if have_urlsession else ("", 0.0, 0.0)
        _, fcpu, fwall = timed([FANOUT, "load", url, "-c", "1000", "-n", "1000", "--timeout", "20s", "--no-progress"])
        _, ucpu, uwall = timed([URLSESSION, url, "1000", "0"]) if have_urlsession else ("", 0.0, 0.0)
    finally:
        mock.terminate()
        mock.wait()
    print("idle cost: 1,000 requests each waiting 3 s on a loopback server (process CPU minus a one-request run's)")
    print(f"  fanout load  {fcpu - fbase:.3f} CPU-s over {fwall:.1f} s  (whole process {fcpu:.3f}, start-up {fbase:.3f})")
    if have_urlsession:
        print(f"  URLSession   {ucpu - ubase:.3f} CPU-s over {uwall:.1f} s  (whole process {ucpu:.3f}, start-up {ubase:.3f})")
    else:
        print("  URLSession   not built, so not run")
    out = subprocess.run([FANOUT, "measure", "idle", "--requests", "1000", "--wait", "3s"], capture_output=True, text=True).stdout
    print("  " + out.strip().splitlines()[-1].strip() + "  (fanout, in-process server)")
    return fcpu - fbase, ucpu - ubase


def overhead():
    print("fan-out overhead (alerts/s 200, targets at 50/80/120/150/200 ms):")
    for label, extra in (("one at a time ", []), ("bursts of 10  ", ["--burst", "10"])):
        out = subprocess.run([FANOUT, "measure", "overhead", "-d", f"{SECS}s"] + extra, capture_output=True, text=True).stdout
        print(f"  {label}" + out.strip().splitlines()[-1].strip())
    # The same burst without the publisher: 50 requests answered at the same instant by one server, for fanout load
    # and hey; their lateness above the server's 200 ms is the machine's (scheduling, the server), not the fan-out's.
    mock = subprocess.Popen([MOCK, "--port", "18092", "--no-record"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    try:
        url = "http://127.0.0.1:18092/burst?delay_ms=200"
        secs = 3 if QUICK else 5
        out, _, _ = timed([FANOUT, "load", url, "-c", "50", "-d", f"{secs}s", "--no-progress", "--json"])
        j = json.loads(out[out.index("{"):out.rindex("}") + 1])
        f50, f99 = j["latency_us"]["p50"] / 1000 - 200, j["latency_us"]["p99"] / 1000 - 200
        out, _, _ = timed(["hey", "-c", "50", "-z", f"{secs}s", url])
        h50 = float(re.search(r"50% in ([\d.]+) secs", out).group(1)) * 1000 - 200
        h99 = float(re.search(r"99% in ([\d.]+) secs", out).group(1)) * 1000 - 200
        print(f"  raw burst, 50 requests answered at once after 200 ms: above 200 ms, fanout load p50 {f50:.2f} p99 {f99:.2f} ms; "
              f"hey p50 {h50:.2f} p99 {h99:.2f} ms")
    except (ValueError, AttributeError, KeyError, FileNotFoundError) as e:
        print(f"  raw burst: not measured ({e})")
    finally:
        mock.terminate()
        mock.wait()


def churn():
    rows = []
    out, cpu, _ = timed([FANOUT, "load", NGINX, "-c", str(CONNS), "-d", f"{SECS}s", "--no-keepalive", "--no-progress", "--json"])
    n, secs = requests_from("fanout load", out)
    rows.append(("fanout load", n / secs, cpu / n * 1e6))
    out, cpu, _ = timed([C_SOCKET, NGINX, str(CONNS), str(SECS), "churn"])
    n, secs = requests_from("C", out)
    rows.append(("C multi_socket", n / secs, cpu / n * 1e6))
    out, cpu, _ = timed([FANOUT, "load", NGINX, "-c", str(CONNS), "-d", f"{SECS}s", "--no-keepalive", "--no-progress", "--json", "--epoll"])
    n, secs = requests_from("fanout load", out)
    rows.append(("fanout --epoll", n / secs, cpu / n * 1e6))
    print(f"connection churn: a new connection per request, {CONNS} in flight, {SECS} s")
    for name, rps, us in rows:
        print(f"  {name:<17}{rps:>10.0f} req/s{us:>10.1f} µs/request  ({rps / rows[1][1]:.2f}× C's req/s)")


def publish_cost():
    """CPU per delivery of `fanout publish` (alerts × 5 webhook targets on the loopback nginx) against CPU per
    request of `fanout load` POSTing a body of the same size to the same nginx, with the same 64 connections."""
    import tempfile
    alerts = 1000 if QUICK else 4000
    targets = 5
    with tempfile.TemporaryDirectory() as d:
        tf, af = os.path.join(d, "targets.yaml"), os.path.join(d, "alerts.json")
        with open(tf, "w") as f:
            f.write("targets:\n" + "".join(f"  - {{name: t{k}, type: webhook, url: '{NGINX}t{k}'}}\n" for k in range(targets)))
        with open(af, "w") as f:
            json.dump([{"labels": {"alertname": "CompareCost", "severity": "warning", "instance": f"host-{i}:9100", "i": str(i)},
                        "annotations": {"summary": f"alert {i} for the publish-cost comparison"}} for i in range(alerts)], f)
        body_len = 1024  # the yardstick: a 1 KB POST (a webhook body for these alerts is of that order)
        # Interleaved rounds, compared by their medians: one pair of short runs on a shared 2-core VM varies by a third.
        rounds = 1 if QUICK else 7
        publish_us, load_us, walls = [], [], []
        for _ in range(rounds):
            out, cpu, wall = timed([FANOUT, "publish", "--targets", tf, "--alerts", af, "--strategy", "publish_to_all", "--deadline", "60s", "--json"])
            try:
                reports = json.loads(out[out.index("["):out.rindex("]") + 1])
                delivered = sum(1 for r in reports for t in r["results"] if t["outcome"] == "succeeded")
            except ValueError:
                delivered = 0
            lout, lcpu, _ = timed([FANOUT, "load", NGINX + "raw", "-m", "POST", "--body", "x" * body_len, "-H", "Content-Type: application/json",
                                   "-n", str(alerts * targets), "-c", str(CONNS), "--no-progress", "--json"])
            n, _ = requests_from("fanout load", lout)
            if delivered == 0 or n == 0:
                print(f"publish path: a run failed (delivered {delivered}, requests {n}); no figures")
                return
            publish_us.append(cpu / delivered * 1e6)
            load_us.append(lcpu / n * 1e6)
            walls.append(wall)
    print(f"publish path: {alerts} alerts × {targets} webhook targets on the loopback nginx, against {alerts * targets} raw {body_len}-byte POSTs, "
          f"{rounds} interleaved round(s)")
    p, l = statistics.median(publish_us), statistics.median(load_us)
    print(f"  fanout publish  {statistics.median(walls):.2f} s, µs CPU per delivery: median {p:.1f} (runs {', '.join(f'{x:.1f}' for x in publish_us)})")
    print(f"  fanout load     µs CPU per request: median {l:.1f} (runs {', '.join(f'{x:.1f}' for x in load_us)})")
    ratios = [a / b for a, b in zip(publish_us, load_us)]
    print(f"  publish ÷ load  {p / l:.2f}× CPU, medians (goal ≤ 1.5×); per round {', '.join(f'{r:.2f}' for r in ratios)}, "
          f"median {statistics.median(ratios):.2f}×")


def main():
    nginx = subprocess.Popen(["nginx", "-c", os.path.join(ROOT, "tools/compare/nginx.conf"), "-p", "/tmp"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    try:
        print(f"machine: {os.cpu_count()} cores; {subprocess.run(['uname', '-sr'], capture_output=True, text=True).stdout.strip()}; "
              f"{subprocess.run(['curl-config', '--version'], capture_output=True, text=True).stdout.strip() or 'libcurl'}")
        throughput()
        head_to_head()
        churn()
        publish_cost()
    finally:
        nginx.terminate()
        nginx.wait()
    idle_cost()
    overhead()


if __name__ == "__main__":
    main()
