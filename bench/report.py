"""Statistics and report files of a benchmark run (markdown and JSON).

Numbers per target are medians over the pairs; ratios are the median of the per-pair
ratios, each pair being runs of the contenders adjacent in time (see docs/benchmarks.md).
"""

import json
import os
import statistics

TARGET_LABELS = {"pgring": "pgring", "pgbouncer": "PgBouncer", "direct": "direct"}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=2):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def summarize_target(runs):
    """runs: this target's result dicts, one per pair. Returns the target's summary."""
    ok = [r for r in runs if "error" not in r]
    errors = [r["error"] for r in runs if "error" in r]
    summary = {"runs": len(runs), "ok_runs": len(ok)}
    if not ok:
        summary["fails"] = errors[0] if errors else "not run"
        return summary
    for key in ("tps", "avg_latency_ms", "p99_latency_ms", "proxy_cpu_per_1k_tx",
                "proxy_sleeps_per_tx", "proxy_preemptions_per_tx"):
        summary[key] = median(r.get(key) for r in ok)
    if errors:
        summary["errors"] = errors
    return summary


def pair_ratios(pairs, key, a, b):
    """Per-pair ratios pairs[i][a][key] / pairs[i][b][key] where both runs succeeded."""
    out = []
    for pair in pairs:
        ra, rb = pair.get(a, {}), pair.get(b, {})
        va, vb = ra.get(key), rb.get(key)
        if "error" in ra or "error" in rb or va is None or not vb:
            out.append(None)
        else:
            out.append(va / vb)
    return out


def summarize_scenario(scenario):
    pairs = scenario["pairs"]
    targets = scenario["targets"]
    summary = {t: summarize_target([p[t] for p in pairs if t in p]) for t in targets}
    ratios = {}
    if "pgring" in targets:
        for other in ("pgbouncer", "direct"):
            if other not in targets:
                continue
            for key, name in (("tps", "tps"), ("p99_latency_ms", "p99"),
                              ("avg_latency_ms", "avg_latency")):
                per_pair = pair_ratios(pairs, key, "pgring", other)
                ratios[f"{name}_pgring_over_{other}"] = {"median": median(per_pair),
                                                         "per_pair": per_pair}
        if "pgbouncer" in targets:
            per_pair = pair_ratios(pairs, "proxy_cpu_per_1k_tx", "pgring", "pgbouncer")
            ratios["cpu_per_tx_pgring_over_pgbouncer"] = {"median": median(per_pair),
                                                          "per_pair": per_pair}
    return summary, ratios


def ratio_cell(ratios, key, summary, other):
    if key not in ratios:
        return "-"
    if "fails" in summary.get("pgring", {}):
        return "pgring fails"
    if "fails" in summary.get(other, {}):
        return f"{TARGET_LABELS[other]} fails"
    value = ratios[key]["median"]
    return "-" if value is None else f"{value:.2f}x"


def throughput_markdown(meta, scenarios):
    lines = [f"# pgring benchmark {meta['started_utc']}", ""]
    lines.append(f"Machine: {meta['cpus']} CPUs ({meta['cpu_model']}), {meta['kernel']}; "
                 f"{meta['pgbench']}, {meta['postgres']}, {meta['pgbouncer']}, "
                 f"{meta['pgring']} (commit {meta['commit']}).")
    lines.append(f"Each run {meta['duration']} s, {meta['pairs']} alternating pairs per "
                 f"scenario, order rotated each pair; pool size {meta['pool_size']} "
                 f"(pgring and PgBouncer"
                 + (f"; pgring {meta['sharded_pool_size']} per shard in sharded-*"
                    if meta.get("sharded_pool_size") else "")
                 + f"), pgring workers {meta['workers']}, pgbench scale "
                 f"{meta['scale']}."
                 + (f" Load average {meta['loadavg_start']} at the start, "
                    f"{meta.get('loadavg_end')} at the end." if "loadavg_start" in meta
                    else ""))
    if any(sc["name"].startswith("sharded-") for sc in scenarios):
        lines.append("")
        lines.append(f"sharded-* scenarios: pgring in front of {meta.get('shards')} shards "
                     f"(pool size per shard), PgBouncer and direct PostgreSQL in front of one "
                     f"unsharded database holding the same rows: {meta.get('tenants')} tenants "
                     f"x {meta.get('orders_per_tenant')} orders (orders per shard "
                     f"{meta.get('orders_per_shard')}).")
    lines += ["", "## Per target (median over the pairs)", "",
              "| scenario | target | tps | avg latency ms | p99 latency ms "
              "| proxy CPU s / 1k tx | proxy sleeps / preempted per tx | runs ok |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for sc in scenarios:
        for t in sc["targets"]:
            s = sc["summary"][t]
            if "fails" in s:
                lines.append(f"| {sc['name']} | {TARGET_LABELS[t]} | fails: "
                             f"{s['fails'].replace('|', '/')} | | | | | 0/{s['runs']} |")
                continue
            cpu = "n/a" if t == "direct" else fmt(s.get("proxy_cpu_per_1k_tx"), 3)
            switches = ("n/a" if t == "direct" else
                        f"{fmt(s.get('proxy_sleeps_per_tx'), 2)} / "
                        f"{fmt(s.get('proxy_preemptions_per_tx'), 2)}")
            lines.append(f"| {sc['name']} | {TARGET_LABELS[t]} | {fmt(s['tps'], 0)} | "
                         f"{fmt(s['avg_latency_ms'], 3)} | {fmt(s['p99_latency_ms'], 3)} | "
                         f"{cpu} | {switches} | {s['ok_runs']}/{s['runs']} |")
    lines += ["", "## Ratios (median of the per-pair ratios)", "",
              "| scenario | tps pgring/PgBouncer | tps pgring/direct | p99 pgring/PgBouncer "
              "| p99 pgring/direct | CPU per tx pgring/PgBouncer |",
              "|---|---:|---:|---:|---:|---:|"]
    for sc in scenarios:
        r, s = sc["ratios"], sc["summary"]
        lines.append(
            f"| {sc['name']} | {ratio_cell(r, 'tps_pgring_over_pgbouncer', s, 'pgbouncer')} | "
            f"{ratio_cell(r, 'tps_pgring_over_direct', s, 'direct')} | "
            f"{ratio_cell(r, 'p99_pgring_over_pgbouncer', s, 'pgbouncer')} | "
            f"{ratio_cell(r, 'p99_pgring_over_direct', s, 'direct')} | "
            f"{ratio_cell(r, 'cpu_per_tx_pgring_over_pgbouncer', s, 'pgbouncer')} |")
    lines += ["", "## Every run (tps, in the order run)", "",
              "| scenario | pair | order | tps |", "|---|---:|---|---|"]
    for sc in scenarios:
        for i, pair in enumerate(sc["pairs"]):
            order = sc["orders"][i]
            cells = []
            for t in order:
                r = pair.get(t, {})
                cells.append(f"{TARGET_LABELS[t]} "
                             + ("fails" if "error" in r else fmt(r.get("tps"), 0)))
            lines.append(f"| {sc['name']} | {i + 1} | {' > '.join(TARGET_LABELS[t] for t in order)}"
                         f" | {', '.join(cells)} |")
    lines += ["", "## Scenarios", ""]
    for sc in scenarios:
        lines.append(f"- `{sc['name']}`: `pgbench {sc['command']}`")
    errors = []
    for sc in scenarios:
        for t in sc["targets"]:
            for e in sorted(set(sc["summary"][t].get("errors", []))):
                errors.append(f"- {sc['name']} / {TARGET_LABELS[t]}: {e}")
    if errors:
        lines += ["", "## Failed runs (some pairs only)", ""] + errors
    return "\n".join(lines) + "\n"


def idle_markdown(meta, idle):
    lines = [f"# pgring idle-client memory {meta['started_utc']}", ""]
    lines.append(f"Machine: {meta['cpus']} CPUs ({meta['cpu_model']}), {meta['kernel']}; "
                 f"{meta['pgbouncer']}, {meta['pgring']} (commit {meta['commit']}). "
                 f"Open-file limit {meta['fd_limit']}.")
    lines += ["", "| proxy | idle clients connected | RSS before KiB | RSS after KiB "
              "| KiB per idle client | proxy CPU s for the logins | query while connected |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for name, r in idle.items():
        if "error" in r:
            lines.append(f"| {TARGET_LABELS[name]} | fails: {r['error'].replace('|', '/')} "
                         "| | | | | |")
            continue
        lines.append(f"| {TARGET_LABELS[name]} | {r['connected']} / {r['requested']} | "
                     f"{r['rss_before_kib']:,} | {r['rss_after_kib']:,} | "
                     f"{fmt(r['kib_per_client'], 2)} | {fmt(r['login_cpu_seconds'], 2)} | "
                     f"{r['query_check']} |")
    for name, r in idle.items():
        if r.get("client_errors"):
            lines.append("")
            lines.append(f"{TARGET_LABELS[name]} login errors: "
                         + "; ".join(f"{k} (x{v})" for k, v in r["client_errors"].items()))
    return "\n".join(lines) + "\n"


def write(out_dir, basename, markdown, data):
    os.makedirs(out_dir, exist_ok=True)
    md_path = os.path.join(out_dir, basename + ".md")
    json_path = os.path.join(out_dir, basename + ".json")
    with open(md_path, "w") as f:
        f.write(markdown)
    with open(json_path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    return md_path, json_path
