"""The dashboard's pages: HTML rendered from the store, for people.

``index(store, ...)`` lists the projects; ``project(store, namespace, name, ...)`` shows one:
its versions with the primary metric over versions, each deployment's traffic split and analysis
over time, each monitor's drift per feature over time with links to the analyses' reports, the
trainings still running with their progress, and the Events of all of these.

Every text that comes from the cluster is escaped here (names, messages, feature names). Pages
refresh themselves every ``refresh`` seconds (a meta refresh: no script, so the server's policy
can forbid scripts). Links stay inside ``links``' paths, which the server routes.

Must not: read the cluster, the clock or files. ``now`` comes from the caller.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Sequence
from typing import Any

from mlkube.common import timestamps
from mlkube.dashboard import links, store
from mlkube.ml import charts

HISTORY_ROWS = 20
EVENT_ROWS = 50
GOOD = {"Ready", "Healthy", "Champion", "Eligible", "Succeeded", "Passing", "Approved", "Normal"}
BAD = {"Failed", "Degraded", "RolledBack", "Drifting", "Failing", "Rejected", "Warning"}

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;color:#1f2933;margin:0;background:#f5f7fa}
header{background:#1f2933;color:#fff;padding:10px 24px}header a{color:#fff;text-decoration:none;font-weight:600}
main{padding:8px 24px 40px;max-width:1200px}section{background:#fff;border:1px solid #e4e7eb;border-radius:6px;
padding:12px 16px;margin:14px 0}h1{font-size:22px;margin:14px 0 4px}h2{font-size:17px;margin:4px 0 10px}
h3{font-size:15px;margin:10px 0 6px}table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:3px 8px;
border-bottom:1px solid #e4e7eb;vertical-align:top}th{color:#52606d;font-weight:600}.muted{color:#7b8794}
.good{color:#2b8a3e;font-weight:600}.bad{color:#c92a2a;font-weight:600}.busy{color:#e67700;font-weight:600}
.bar{display:flex;height:22px;border-radius:4px;overflow:hidden;margin:6px 0;max-width:640px}
.bar span{color:#fff;font-size:12px;padding:2px 6px;white-space:nowrap;overflow:hidden}
.role-stable{background:#1c7ed6}.role-canary,.role-b,.role-preview{background:#d9480f}.role-shadow{background:#868e96}
svg text{font-size:11px;fill:#52606d}.charts{display:flex;flex-wrap:wrap;gap:16px}
"""


def index(data: store.Store, *, namespaces: str, now: datetime.datetime, refresh: int) -> str:
    """Every project the dashboard sees, a row each: phase, champion, versions, deployments' splits."""
    rows = []
    for project in data.all("mlprojects"):
        meta, status = project["metadata"], project.get("status") or {}
        namespace, name = meta.get("namespace", ""), meta["name"]
        deployments = [d for d in data.all("modeldeployments", namespace) if (d.get("spec") or {}).get("projectRef") == name]
        versions = [v for v in data.all("modelversions", namespace) if (v.get("spec") or {}).get("projectRef") == name]
        splits = "<br>".join(
            f"{_e(d['metadata']['name'])}: {_e(split_text(store.traffic_sample(d.get('status') or {}, at='').split))}"
            for d in deployments
        )
        champion = status.get("championVersion")
        rows.append(
            f"<tr id='project-{_e(namespace)}-{_e(name)}'><td>{_e(namespace)}</td>"
            f"<td><a href='{links.project(namespace, name)}'>{_e(name)}</a></td><td>{_phase(status.get('phase'))}</td>"
            f"<td>{f'v{champion}' if champion else '-'}</td><td>{len(versions)}</td><td>{splits or '-'}</td></tr>"
        )
    body = (
        "<table><tr><th>namespace</th><th>project</th><th>phase</th><th>champion</th><th>versions</th><th>traffic</th></tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else "<p class='muted'>No MLProject yet.</p>"
    )
    waiting = "" if data.synced >= set(store.KINDS) else "<p class='busy'>Reading the cluster…</p>"
    return _page("Projects", f"<h1>Projects</h1><p class='muted'>{_e(namespaces)}</p>{waiting}<section>{body}</section>", refresh)


def project(data: store.Store, namespace: str, name: str, *, now: datetime.datetime, refresh: int) -> str | None:
    """One project's page; None when the store has no such MLProject."""
    obj = data.get("mlprojects", namespace, name)
    if obj is None:
        return None
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    metric = (spec.get("problem") or {}).get("primaryMetric", "")
    versions = sorted(
        (v for v in data.all("modelversions", namespace) if (v.get("spec") or {}).get("projectRef") == name),
        key=lambda v: int(v["spec"].get("version") or 0),
    )
    deployments = [d for d in data.all("modeldeployments", namespace) if (d.get("spec") or {}).get("projectRef") == name]
    deployment_names = {d["metadata"]["name"] for d in deployments}
    monitors = [m for m in data.all("driftmonitors", namespace) if (m.get("spec") or {}).get("deploymentRef") in deployment_names]
    trainings = [t for t in data.all("trainingjobs", namespace) if (t.get("spec") or {}).get("projectRef") == name]
    champion = status.get("championVersion")
    goal = (spec.get("goal") or {}).get("description")
    head = (
        f"<h1>{_e(name)} {_phase(status.get('phase'))}</h1><p>namespace {_e(namespace)} · champion "
        f"<b id='champion'>{f'v{champion}' if champion else 'none yet'}</b> · primary metric {_e(metric)} · promotion "
        f"{_e((spec.get('promotion') or {}).get('policy', 'auto'))}{f' · {_e(goal)}' if goal else ''}</p>"
    )
    involved = {("MLProject", name)} | {("ModelVersion", v["metadata"]["name"]) for v in versions}
    involved |= {("ModelDeployment", n) for n in deployment_names} | {("DriftMonitor", m["metadata"]["name"]) for m in monitors}
    involved |= {("TrainingJob", t["metadata"]["name"]) for t in trainings}
    events = [
        e
        for e in data.all("events", namespace)
        if ((e.get("involvedObject") or {}).get("kind"), (e.get("involvedObject") or {}).get("name")) in involved
    ]
    body = (
        head
        + _versions(versions, metric, champion)
        + _deployments(data, deployments)
        + _monitors(data, monitors)
        + _trainings(trainings, now)
        + _events(events)
    )
    return _page(f"{name} · {namespace}", body, refresh)


def _versions(versions: Sequence[dict[str, Any]], metric: str, champion: int | None) -> str:
    if not versions:
        return "<section id='versions'><h2>Versions</h2><p class='muted'>No version registered yet.</p></section>"
    labels = [f"v{v['spec']['version']}" for v in versions]
    series = [
        (f"{metric} ({partition})", [((v["spec"].get("metrics") or {}).get(partition) or {}).get(metric) for v in versions])
        for partition in ("test", "validation")
    ]
    chart = charts.lines(labels, [s for s in series if any(x is not None for x in s[1])], y_label=metric)
    rows = []
    for v in reversed(versions):
        meta, spec, status = v["metadata"], v["spec"], v.get("status") or {}
        number = spec["version"]
        card = (
            f"<a href={_q(links.card(meta.get('namespace', ''), meta['name']))}>model card</a>" if status.get("cardUri") else "-"
        )
        rows.append(
            f"<tr id='version-{number}'><td><b>v{number}</b>{' ★' if number == champion else ''}</td>"
            f"<td>{_e(status.get('primaryMetric') or '-')}</td><td>{_e(spec.get('algorithm') or '-')}</td>"
            f"<td>{_e(spec.get('trigger', '-'))}</td><td>{_phase(status.get('phase'))}</td>"
            f"<td>{_e({True: 'eligible', False: 'not eligible'}.get(status.get('eligible'), '-'))}</td>"
            f"<td>{_phase((spec.get('approval') or {}).get('state'))}</td><td>{_e(', '.join(status.get('aliases') or []))}</td>"
            f"<td>{_e(', '.join(status.get('servedBy') or []))}</td>"
            f"<td>{card}</td></tr>"
        )
    return (
        f"<section id='versions'><h2>Versions</h2><div class='charts'><figure>{chart}<figcaption class='muted'>"
        f"{_e(metric)} over versions</figcaption></figure></div><table><tr><th>version</th><th>primary metric</th>"
        "<th>algorithm</th><th>trigger</th><th>phase</th><th>criteria</th><th>approval</th><th>aliases</th><th>served by</th>"
        "<th>card</th></tr>" + "".join(rows) + "</table></section>"
    )


def _deployments(data: store.Store, deployments: Sequence[dict[str, Any]]) -> str:
    parts = []
    for mdep in deployments:
        meta, spec, status = mdep["metadata"], mdep.get("spec") or {}, mdep.get("status") or {}
        name, namespace = meta["name"], meta.get("namespace", "")
        now = store.traffic_sample(status, at="")
        history = list(data.traffic.get((namespace, name), ()))
        strategy = (spec.get("strategy") or {}).get("type", "Canary")
        bar = "".join(
            f"<span class='role-{_e(role)}' style='width:{max(percent, 4)}%'>v{version} {percent}%</span>"
            for version, role, percent in now.split
            if percent > 0 or role == "shadow"
        )
        line = (
            f"{_e(strategy)} · {_phase(now.phase)}"
            + (f" · step {now.step + 1}" if now.step is not None and now.candidate is not None else "")
            + (f" · candidate v{now.candidate}" if now.candidate is not None else "")
            + f" · verdict {_phase(now.verdict) if now.verdict else '-'}"
            + (f" ({now.requests} requests)" if now.verdict else "")
        )
        tone = "bad" if now.phase in BAD or now.phase == "Paused" else "muted"
        message = f"<p class='{tone}'>{_e(status['message'])}</p>" if status.get("message") and now.phase != "Healthy" else ""
        parts.append(
            f"<div id='deployment-{_e(name)}'><h3>{_e(name)}</h3><p>{line}</p>{message}"
            f"<p>traffic <b class='split'>{_e(split_text(now.split))}</b></p><div class='bar'>{bar}</div>"
            f"{_traffic_chart(history)}{_traffic_table(history)}</div>"
        )
    body = "".join(parts) or "<p class='muted'>No ModelDeployment serves this project.</p>"
    return f"<section id='deployments'><h2>Deployments</h2>{body}</section>"


def split_text(split: Sequence[tuple[int, str, int]]) -> str:
    """``v1 75% stable, v2 25% canary``; ``-`` when nothing is served."""
    return ", ".join(f"v{version} {percent}% {role}" for version, role, percent in split) or "-"


def _traffic_chart(history: Sequence[store.TrafficSample]) -> str:
    if len(history) < 2:
        return ""
    versions = sorted({version for sample in history for version, _, _ in sample.split})
    series = [
        (f"v{version} %", [next((p for v, _, p in sample.split if v == version), 0) for sample in history])
        for version in versions
    ]
    labels = [_clock(sample.at) for sample in history]
    return f"<figure>{charts.lines(labels, series, y_label='percent')}<figcaption class='muted'>split over time</figcaption></figure>"


def _traffic_table(history: Sequence[store.TrafficSample]) -> str:
    if not history:
        return ""
    rows = "".join(
        f"<tr><td>{_e(sample.at)}</td><td>{_phase(sample.phase)}</td><td>{_e(split_text(sample.split))}</td>"
        f"<td>{_phase(sample.verdict) if sample.verdict else '-'}</td><td>{sample.requests}</td>"
        f"<td>{'-' if sample.error_rate is None else f'{sample.error_rate:.3f}'}</td></tr>"
        for sample in reversed(history[-HISTORY_ROWS:])
    )
    return (
        "<table class='history'><tr><th>seen at</th><th>phase</th><th>split</th><th>verdict</th><th>requests</th>"
        f"<th>error rate</th></tr>{rows}</table>"
    )


def _monitors(data: store.Store, monitors: Sequence[dict[str, Any]]) -> str:
    parts = []
    for dmon in monitors:
        meta, status = dmon["metadata"], dmon.get("status") or {}
        name, namespace = meta["name"], meta.get("namespace", "")
        history = list(data.drift.get((namespace, name), ()))
        share = status.get("driftShare")
        report = status.get("reportUri")
        latest = f" · <a href={_q(links.report(namespace, name, None))}>latest report</a>" if report else ""
        head = (
            f"<h3>{_e(name)} <span class='muted'>on {_e((dmon.get('spec') or {}).get('deploymentRef', ''))}</span></h3>"
            f"<p>{_phase(status.get('phase'))} · version {_e(_version(status.get('modelVersion')))} · drift share "
            f"<b class='share'>{'-' if share is None else f'{share:.2f}'}</b> · {_e(_or_dash(status.get('samples')))} samples{latest}</p>"
        )
        drifted = [f["name"] for f in status.get("features") or () if f.get("drifted")]
        top = f"<p>drifted features: <b class='drifted'>{_e(', '.join(drifted))}</b></p>" if drifted else ""
        chart = ""
        severities = store.features_over_time(history)
        if severities:
            labels = [_clock(sample.at) for sample in history]
            chart = (
                f"<figure>{charts.lines(labels, severities, y_label='severity', reference=1.0)}"
                "<figcaption class='muted'>drift severity per feature over analyses (1 = its threshold; above: drifted)"
                "</figcaption></figure>"
            )
        rows = "".join(
            f"<tr><td>{_e(sample.at)}</td><td>{_phase(sample.phase)}</td><td>{_e(_version(sample.model_version))}</td>"
            f"<td>{_e(_or_dash(sample.samples))}</td><td>{'-' if sample.drift_share is None else f'{sample.drift_share:.2f}'}</td>"
            f"<td>{_e(', '.join(n for n, _, d in sample.scores if d) or '-')}</td>"
            f"<td>{_report_link(namespace, name, sample)}</td></tr>"
            for sample in reversed(history[-HISTORY_ROWS:])
        )
        table = (
            "<table class='history'><tr><th>analysed at</th><th>phase</th><th>version</th><th>samples</th><th>drift share</th>"
            f"<th>drifted</th><th>report</th></tr>{rows}</table>"
            if rows
            else "<p class='muted'>No analysis yet.</p>"
        )
        parts.append(f"<div id='monitor-{_e(name)}'>{head}{top}{chart}{table}</div>")
    body = "".join(parts) or "<p class='muted'>No DriftMonitor watches this project's deployments.</p>"
    return f"<section id='drift'><h2>Drift</h2>{body}</section>"


def _report_link(namespace: str, name: str, sample: store.DriftSample) -> str:
    return f"<a href={_q(links.report(namespace, name, sample.at))}>report</a>" if sample.report_uri else "-"


def _trainings(trainings: Sequence[dict[str, Any]], now: datetime.datetime) -> str:
    running = [t for t in trainings if (t.get("status") or {}).get("phase") in (None, "Pending", "Running")]
    if not running:
        return ""
    rows = []
    for tj in running:
        status = tj.get("status") or {}
        progress = status.get("progress") or {}
        done, total = int(progress.get("trialsCompleted") or 0), int(progress.get("trialsTotal") or 0)
        rows.append(
            f"<tr><td>{_e(tj['metadata']['name'])}</td><td>{_phase(status.get('phase'))}</td><td>{_e(progress.get('stage') or '-')}</td>"
            f"<td>{done}/{total or '-'}</td><td>{_e(_or_dash(progress.get('bestScore')))}</td><td>{_e(eta(status, now))}</td></tr>"
        )
    return (
        "<section id='trainings'><h2>Running trainings</h2><table><tr><th>name</th><th>phase</th><th>stage</th><th>trials</th>"
        "<th>best</th><th>eta</th></tr>" + "".join(rows) + "</table></section>"
    )


def eta(status: dict[str, Any], now: datetime.datetime) -> str:
    """Seconds left at the pace of the trials so far (``-`` before the first trial)."""
    progress = status.get("progress") or {}
    done, total = int(progress.get("trialsCompleted") or 0), int(progress.get("trialsTotal") or 0)
    if done <= 0 or not status.get("startTime"):
        return "-"
    elapsed = (now - timestamps.parse(status["startTime"])).total_seconds()
    return f"{max(int(elapsed / done * max(total - done, 0)), 0)}s"


def _events(events: Sequence[dict[str, Any]]) -> str:
    newest = sorted(events, key=store.event_time, reverse=True)[:EVENT_ROWS]
    rows = "".join(
        f"<tr><td>{_e(store.event_time(e))}</td><td>{_phase(e.get('type'))}</td>"
        f"<td>{_e((e.get('involvedObject') or {}).get('kind', ''))}/{_e((e.get('involvedObject') or {}).get('name', ''))}</td>"
        f"<td>{_e(e.get('reason', ''))}</td><td>{_e(e.get('message', ''))}</td></tr>"
        for e in newest
    )
    table = (
        f"<table><tr><th>last seen</th><th>type</th><th>object</th><th>reason</th><th>message</th></tr>{rows}</table>"
        if rows
        else "<p class='muted'>No Events.</p>"
    )
    return f"<section id='events'><h2>Events</h2>{table}</section>"


def message(title: str, text: str) -> str:
    """A plain page for an error the server answers with (not found, method not allowed)."""
    return _page(title, f"<h1>{_e(title)}</h1><p>{_e(text)}</p>", 0)


def _page(title: str, body: str, refresh: int) -> str:
    meta = f"<meta http-equiv='refresh' content='{int(refresh)}'>" if refresh > 0 else ""
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>{meta}<title>{_e(title)} · mlkube</title>"
        f"<style>{STYLE}</style></head><body><header><a href='/'>mlkube dashboard</a></header><main>{body}</main></body></html>"
    )


def _phase(phase: Any) -> str:
    if not phase:
        return "<span class='muted'>-</span>"
    tone = "good" if phase in GOOD else "bad" if phase in BAD else "busy"
    return f"<span class='{tone}'>{_e(phase)}</span>"


def _version(number: Any) -> str:
    return "-" if number is None else f"v{number}"


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _clock(at: str) -> str:
    """The time of day of an RFC 3339 stamp (chart labels)."""
    return at[11:19] if len(at) >= 19 else at


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _q(href: str) -> str:
    """An attribute value in quotes (the links are built from checked names, escaped anyway)."""
    return f"'{_e(href)}'"
