#!/usr/bin/env python3
"""Load client of scripts/bench-gateway (Python 3 stdlib only).

Speaks `zonal workload`'s session protocol: the server greets with one line, then echoes
every line it is sent. Three paths to the same backends: direct (alternating between the
instances' ports), the Zonal gateway, haproxy.

latency:    sequential sessions with blocking sockets; one trial = connect, read the
            greeting, send one line, read its echo, close. The paths are interleaved trial
            by trial so drift in the machine's load hits all three alike.
throughput: CONC concurrent sessions per path in two client processes (asyncio), each
            session echoing MSG-byte lines back to back; rounds in the order A B C, C B A.
"""
import argparse
import asyncio
import json
import multiprocessing as mp
import socket
import time

PING = b"ping\n"


def hostport(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def read_line(sock, buf=b""):
    while b"\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed by the server")
        buf += chunk
    line, _, rest = buf.partition(b"\n")
    return line, rest


def one_trial(addr):
    t0 = time.perf_counter_ns()
    s = socket.create_connection(addr, timeout=5)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        greeting, rest = read_line(s)
        if greeting.startswith(b"busy"):
            raise ConnectionError(greeting.decode())
        s.sendall(PING)
        echo, _ = read_line(s, rest)
        t1 = time.perf_counter_ns()
        if echo + b"\n" != PING:
            raise ConnectionError(f"unexpected echo {echo!r}")
    finally:
        s.close()
    return (t1 - t0) / 1000.0  # µs


def pct(sorted_values, q):
    i = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[i]


def latency(paths, trials, warmup=100):
    samples = {name: [] for name in paths}
    for t in range(warmup + trials):
        for name, addrs in paths.items():
            v = one_trial(addrs[t % len(addrs)])
            if t >= warmup:
                samples[name].append(v)
    out = {}
    for name, vs in samples.items():
        vs.sort()
        out[name] = {"p50_us": pct(vs, 0.50), "p90_us": pct(vs, 0.90), "p99_us": pct(vs, 0.99),
                     "mean_us": sum(vs) / len(vs), "n": len(vs)}
    return out


async def session(addr, msg, start_at, stop_at, counts):
    reader, writer = await asyncio.open_connection(*addr, limit=4 * len(msg))
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    greeting = await reader.readline()
    if greeting.startswith(b"busy") or not greeting:
        writer.close()
        counts["refused"] += 1
        return
    await asyncio.sleep(max(0.0, start_at - time.time()))
    n = 0
    while time.time() < stop_at:
        writer.write(msg)
        await reader.readexactly(len(msg))
        n += 1
    counts["round_trips"] += n
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass


def throughput_worker(addrs, conc, msg_len, start_at, secs, queue):
    msg = b"x" * (msg_len - 1) + b"\n"
    counts = {"round_trips": 0, "refused": 0}

    async def main():
        await asyncio.gather(*(session(addrs[i % len(addrs)], msg, start_at, start_at + secs, counts)
                               for i in range(conc)))

    asyncio.run(main())
    queue.put(counts)


def throughput(addrs, conc, msg_len, secs, procs=2):
    queue = mp.Queue()
    start_at = time.time() + 1.0  # every session connected and greeted by then
    workers = []
    for p in range(procs):
        share = conc // procs + (1 if p < conc % procs else 0)
        mine = addrs[p % len(addrs):] + addrs[:p % len(addrs)]
        w = mp.Process(target=throughput_worker, args=(mine, share, msg_len, start_at, secs, queue))
        w.start()
        workers.append(w)
    results = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    rt = sum(r["round_trips"] for r in results)
    return {"round_trips_per_s": rt / secs, "echoed_MBps": rt * msg_len / secs / 1e6,
            "refused": sum(r["refused"] for r in results)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", required=True, help="comma-separated ports on 127.0.0.1")
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--haproxy", required=True)
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--conc", type=int, default=64)
    ap.add_argument("--secs", type=float, default=8)
    ap.add_argument("--msg", type=int, default=16384)
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()
    paths = {
        "direct": [("127.0.0.1", int(p)) for p in a.backends.split(",")],
        "gateway": [hostport(a.gateway)],
        "haproxy": [hostport(a.haproxy)],
    }

    print(f"== latency: connect + greeting + one echoed line, {a.trials} sequential sessions per path "
          "(after 100 warm-up), interleaved")
    lat = latency(paths, a.trials)
    print(f"  {'path':8} {'p50':>9} {'p90':>9} {'p99':>9} {'mean':>9}   added p50 / p99 over direct")
    for name, r in lat.items():
        added = "" if name == "direct" else \
            f"   {r['p50_us'] - lat['direct']['p50_us']:+7.0f} / {r['p99_us'] - lat['direct']['p99_us']:+7.0f} µs"
        print(f"  {name:8} {r['p50_us']:7.0f}µs {r['p90_us']:7.0f}µs {r['p99_us']:7.0f}µs {r['mean_us']:7.0f}µs{added}")

    print(f"== throughput: {a.conc} concurrent sessions per path, {a.msg}-byte lines echoed back to back, "
          f"{a.secs:g} s per round, rounds direct gateway haproxy, haproxy gateway direct")
    tp = {name: [] for name in paths}
    for name in list(paths) + list(reversed(paths)):
        r = throughput(paths[name], a.conc, a.msg, a.secs)
        tp[name].append(r)
        print(f"  {name:8} {r['echoed_MBps']:8.1f} MB/s echoed  {r['round_trips_per_s']:9.0f} round trips/s"
              f"  refused {r['refused']}")
    mean = {n: sum(r["echoed_MBps"] for r in rs) / len(rs) for n, rs in tp.items()}
    for n, v in mean.items():
        print(f"  mean {n:8} {v:8.1f} MB/s")

    added_p99 = lat["gateway"]["p99_us"] - lat["direct"]["p99_us"]
    ratio = mean["gateway"] / mean["haproxy"]
    print("== against the aims")
    print(f"  gateway added latency p50 {lat['gateway']['p50_us'] - lat['direct']['p50_us']:+.0f} µs, "
          f"p99 {added_p99:+.0f} µs (aim < 100 µs): {'met' if added_p99 < 100 else 'MISSED'}")
    print(f"  haproxy added latency p50 {lat['haproxy']['p50_us'] - lat['direct']['p50_us']:+.0f} µs, "
          f"p99 {lat['haproxy']['p99_us'] - lat['direct']['p99_us']:+.0f} µs (for comparison)")
    print(f"  gateway / haproxy throughput {100 * ratio:.1f} % (aim ≥ 90 %): {'met' if ratio >= 0.9 else 'MISSED'}"
          f";  gateway / direct {100 * mean['gateway'] / mean['direct']:.1f} %")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"latency": lat, "throughput": tp}, f, indent=1)


if __name__ == "__main__":
    main()
