"""EXPLAIN (ANALYZE, BUFFERS) of the SQL the API itself runs for each dashboard read.

Run through scripts/read-costs/run.sh. The statements are not copies of the API's: an
`decision-views api` process runs on a database the bench filled, with every statement of its
sessions logged (log_min_duration_statement=0, set per connection in the URL), and each read of
the bench's report is requested once at days=90. The statements are read back from
PostgreSQL's log with their parameters, then each is run again under EXPLAIN with the
parameters as literals. Nothing here needs to change when a read's SQL does.
"""
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

DB = os.environ["DV_READ_COSTS_DB"]
LOG = os.environ.get("DV_READ_COSTS_PG_LOG", "/var/log/postgresql/postgresql-15-main.log")
REPORT = os.environ.get("DV_READ_COSTS_REPORT", "target/bench/report.md")
BINARY = os.environ.get("DV_READ_COSTS_BINARY", "target/release/decision-views")
SERVER = os.environ.get("DV_READ_COSTS_POSTGRES", "postgres://postgres@127.0.0.1:5432")
TENANT = "tenant_0"
WHY_NOT_OFFER = "off_0007"


def psql(sql):
    out = subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-U", "postgres", "-d", DB, "-tAc", sql],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return out.stdout.strip()


def reads():
    """(type, parameters) of every read row of the bench's report, in its order."""
    seen = []
    for line in open(REPORT, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not re.fullmatch(r"[a-z_]+", cells[0]) or not cells[2].isdigit():
            continue
        # The report writes the parameters as `a=1, b=2`.
        kind, params = cells[0], "".join("&" + p.strip() for p in cells[1].split(",") if p.strip())
        if (kind, params) not in seen:
            seen.append((kind, params))
    if not seen:
        sys.exit(f"no read rows in {REPORT}: run the bench's reads stage first")
    return seen


def path(kind, params):
    extra = f"&offerId={WHY_NOT_OFFER}" if kind == "why_not_ranked" else ""
    return f"/api/v1/dashboard-data?type={kind}&days=90{extra}{params}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def statements(since):
    """The `execute` statements of the log from byte `since`, of this database, with their
    parameters, split at the marker statements: [[(sql, {n: literal})]]."""
    with open(LOG, encoding="utf-8", errors="replace") as f:
        f.seek(since)
        text = f.read()
    entries = re.split(r"\n(?=\d{4}-\d\d-\d\d \S+ \S+ \[\d+\] )", text)
    groups, current = [], None
    for i, e in enumerate(entries):
        m = re.match(r"\S+ \S+ \S+ \[\d+\] \S*@(\S+) LOG:  duration: [\d.]+ ms  (?:execute [^:]*|statement): (.*)",
                     e, re.S)
        if not m or m.group(1) != DB:
            continue
        sql = re.sub(r"\n\t", "\n", m.group(2)).strip()
        if "read-costs mark" in sql:
            current = []
            groups.append(current)
            continue
        params = {}
        if i + 1 < len(entries) and "DETAIL:  parameters:" in entries[i + 1]:
            detail = entries[i + 1].split("DETAIL:  parameters:", 1)[1]
            for n, v in re.findall(r"\$(\d+) = ('(?:[^']|'')*'|NULL)", detail, re.S):
                params[int(n)] = v
        if current is not None:
            current.append((sql, params))
    return groups


def explain(sql, params):
    for n in sorted(params, reverse=True):
        sql = re.sub(rf"\${n}(?!\d)", lambda _: params[n], sql)
    plan = json.loads(psql(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}"))[0]
    scans, rows = [], 0
    def walk(node):
        nonlocal rows
        if "Relation Name" in node or "Index Name" in node:
            scans.append(f"{node['Node Type']} {node.get('Index Name') or node.get('Relation Name')}")
            loops = node.get("Actual Loops", 1)
            rows += (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * loops
        for child in node.get("Plans", []):
            walk(child)
    walk(plan["Plan"])
    top = plan["Plan"]
    buffers = f"{top.get('Shared Hit Blocks', 0)} hit / {top.get('Shared Read Blocks', 0)} read"
    distinct = list(dict.fromkeys(scans))
    return ", ".join(distinct[:4]) + (" …" if len(distinct) > 4 else ""), rows, buffers, plan["Execution Time"]


def main():
    cases = reads()
    key = subprocess.run([BINARY, "create-api-key", "--tenant", TENANT, "--name", "read-costs"],
                         env={**os.environ, "DV_DATABASE_URL": f"{SERVER}/{DB}"},
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    port = free_port()
    logged = f"{SERVER}/{DB}?options=-c%20log_min_duration_statement%3D0"
    env = {**os.environ, "DV_DATABASE_URL": logged, "DV_HTTP_ADDR": f"127.0.0.1:{port}", "DV_REDIS_URL": "",
           "DV_CACHE_TTL_MS": "0", "DV_CACHE_VERSION_POLL_MS": "3600000", "RUST_LOG": "warn",
           "DV_RATE_LIMIT_READS_PER_SEC": "1000000", "DV_RATE_LIMIT_READS_BURST": "1000000"}
    since = os.path.getsize(LOG)
    api = subprocess.Popen([BINARY, "api"], env=env, stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        for i, (kind, params) in enumerate(cases):
            # A logged statement of its own between two reads: where the next one starts.
            subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-U", "postgres", "-d", DB, "-qtAc",
                            f"SELECT 'read-costs mark {i}'"],
                           env={**os.environ, "PGOPTIONS": "-c log_min_duration_statement=0"}, check=True,
                           capture_output=True)
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path(kind, params)}",
                                         headers={"X-API-Key": key, "X-Tenant-Id": TENANT})
            urllib.request.urlopen(req, timeout=30).read()
    finally:
        api.terminate()
        api.wait()
    time.sleep(0.5)
    groups = statements(since)
    print("| read (days=90) | # | access paths | rows read | buffers | ms |")
    print("|---|---|---|---|---|---|")
    for (kind, params), group in zip(cases, groups):
        name = f"{kind} {params.lstrip('&')}".strip()
        for j, (sql, values) in enumerate(group, 1):
            try:
                paths, rows, buffers, ms = explain(sql, values)
                print(f"| {name} | {j} | {paths} | {rows} | {buffers} | {ms:.2f} |")
            except Exception as e:  # a statement that cannot be replayed is reported, not hidden
                print(f"| {name} | {j} | (not replayed: {str(e).splitlines()[0][:80]}) | | | |")


main()
