"""Per-deployment figures from Envoy's admin stats, for the requests Envoy sends straight to a
deployment's replicas (issue 20): the router never sees those, so it reads what Envoy counted.

    text = GET http://<admin>/stats/prometheus?usedonly&filter=<STATS_FILTER>   (envoy_poll.py)
    figures = parse(text)                 # cluster name → Figures, as Envoy has them now
    totals.update(figures)                # EnvoyTotals: counters kept monotonic across resets
    totals.get(deployment_id)             # Figures: answers by status, latency, in flight, queued

Prometheus text, not JSON: it is the one admin format that carries a histogram's sum, and it names
the cluster and the status code as labels. Counters are exact at the read; histograms are merged at
each read (kingpost's bootstrap sets `stats_flush_on_admin`). What Envoy 1.40 counts, per cluster
(a deployment's cluster is named by its id, xds.py), measured (tests/unit/router/data/):

- `upstream_rq_<code>`: one per answered request, by the status the client got from upstream, or
  Envoy's own (503: no reachable replica or queue full, 504: timeout); a retry is counted once. A
  request its client abandoned before the answer is not counted (the router counts it CANCELLED).
  With a gRPC runner (HTTP/2 through the transcoder) every answer is a 200 to Envoy, errors
  included (measured: the gRPC status rides in trailers): status codes are exact with the runner's
  HTTP data plane (`Replica.http_address`), or would need Envoy's grpc_stats filter on the listener.
- `upstream_rq_pending_overflow`: the 503s for a full queue; the listener answers them 429, so they
  are counted as such (the router's own answer to a full queue).
- `upstream_rq_time`: from the request's start in Envoy (its queue included) to the answer's last
  byte, in whole milliseconds, for answers that came from a replica (not Envoy's own 503/504).
- `upstream_rq_active`, `upstream_rq_pending_active`: requests at a replica, and queued, now.

Resets: a cluster's stats start again from zero when its deployment loses its last replica and the
cluster is removed, then added back, and when Envoy restarts. EnvoyTotals adds what each earlier
life of a cluster counted (as last read: requests in the second before a restart are lost), so
that the router's counters only grow. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kingpost.errors import (Conflict, DeadlineExceeded, Internal, InvalidArgument, NotFound, PayloadTooLarge,
                             PermissionDenied, TooManyRequests, Unauthenticated, Unavailable)
from kingpost_router.routes import DEVELOPMENT, PRODUCTION, RouteSnapshot

# Only what is read here, and only stats that were ever used (`usedonly`): an idle platform's
# read is a few lines.
STATS_FILTER = (r"^(cluster\.[^.]+\.upstream_rq_([0-9][0-9][0-9]|active|pending_active|pending_overflow|time)"
                r"|server\.uptime)$")
STATS_PATH = "/stats/prometheus"


# The gRPC status name a client's HTTP status stands for in the router's `code` label: the
# platform's own table (kingpost.errors); any other 4xx/5xx is a model's own error, which the
# router counts as INTERNAL (ModelError).
_WIRE_CODES = {cls.http_status: cls.wire_code for cls in (
    InvalidArgument, Unauthenticated, PermissionDenied, NotFound, Conflict, PayloadTooLarge, TooManyRequests,
    DeadlineExceeded, Unavailable, Internal)}


def wire_code(http_status: int) -> str:
    """200 → "OK", 429 → "RESOURCE_EXHAUSTED", 418 → "INTERNAL" (as the router's `code` label)."""
    return "OK" if http_status < 400 else _WIRE_CODES.get(http_status, "INTERNAL")


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts per upper bound (seconds), then +Inf; and the sum (seconds)."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]  # len(bounds) + 1: the last one is +Inf (the count)
    sum: float

    @property
    def count(self) -> int:
        return self.cumulative[-1]

    def onto(self, bounds: tuple[float, ...]) -> Histogram:
        """The same observations in other buckets: each new bucket counts what the largest old bound
        at or below it counted (exact when the bounds are the same; never counts a value too low)."""
        if bounds == self.bounds:
            return self
        counts, i = [], -1
        for bound in bounds:
            while i + 1 < len(self.bounds) and self.bounds[i + 1] <= bound:
                i += 1
            counts.append(self.cumulative[i] if i >= 0 else 0)
        return Histogram(bounds, (*counts, self.count), self.sum)

    def plus(self, other: Histogram) -> Histogram:
        other = other.onto(self.bounds)
        return Histogram(self.bounds, tuple(a + b for a, b in zip(self.cumulative, other.cumulative, strict=True)),
                         self.sum + other.sum)


@dataclass(frozen=True)
class Figures:
    """One cluster's figures. `codes`: answers by HTTP status; `overflow`: of the 503s, those for a
    full queue."""

    active: int = 0
    pending: int = 0
    codes: Mapping[int, int] = field(default_factory=dict)
    overflow: int = 0
    latency: Histogram | None = None

    def wire_codes(self) -> dict[str, int]:
        """Answers by the router's `code` label (a full queue's 503 as the 429 the client got)."""
        out: dict[str, int] = {}
        for status, count in self.codes.items():
            if status == 503:
                count = max(0, count - self.overflow)
            code = wire_code(status)
            out[code] = out.get(code, 0) + count
        if self.overflow:
            out["RESOURCE_EXHAUSTED"] = out.get("RESOURCE_EXHAUSTED", 0) + self.overflow
        return {code: count for code, count in out.items() if count}

    def _counts_less_than(self, before: Figures) -> bool:
        """True when a counter went down: the cluster's stats started again."""
        return (self.overflow < before.overflow
                or any(self.codes.get(status, 0) < count for status, count in before.codes.items())
                or (before.latency is not None and (self.latency is None or self.latency.count < before.latency.count)))

    def _plus_counts(self, other: Figures) -> Figures:
        """Counters added; gauges are `other`'s (the newer)."""
        codes = dict(self.codes)
        for status, count in other.codes.items():
            codes[status] = codes.get(status, 0) + count
        latency = self.latency if other.latency is None else (
            other.latency if self.latency is None else self.latency.plus(other.latency))
        return Figures(other.active, other.pending, codes, self.overflow + other.overflow, latency)


@dataclass(frozen=True)
class Read:
    """One admin read: figures per cluster name, and Envoy's uptime (None when absent)."""

    clusters: Mapping[str, Figures]
    uptime: float | None


def parse(text: str) -> Read:
    """Envoy's `/stats/prometheus` text (with STATS_FILTER) → figures per cluster. Latency in seconds.
    A line that is not `name{labels} value` is refused with a ValueError naming it."""
    active: dict[str, int] = {}
    pending: dict[str, int] = {}
    overflow: dict[str, int] = {}
    codes: dict[str, dict[int, int]] = {}
    buckets: dict[str, list[tuple[float, int]]] = {}
    sums: dict[str, float] = {}
    uptime = None
    # String methods rather than a regular expression per line: a read of 200 deployments' stats is
    # some 5,000 lines, every second (BENCHMARKS.md).
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        close = line.rfind("} ")
        if brace < 0 or close < brace:
            raise ValueError(f"Envoy's stats: cannot read the line {line[:200]!r}")
        name, labels, value = line[:brace], line[brace + 1:close], line[close + 2:]
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"Envoy's stats: cannot read the line {line[:200]!r}") from None
        if name == "envoy_server_uptime":
            uptime = number
            continue
        cluster = _label(labels, 'envoy_cluster_name="')
        if cluster is None:
            continue
        if name == "envoy_cluster_upstream_rq_time_bucket":
            le = _label(labels, 'le="')
            if le is not None and le != "+Inf":
                buckets.setdefault(cluster, []).append((float(le) / 1000, int(number)))
        elif name == "envoy_cluster_upstream_rq":
            code = _label(labels, 'envoy_response_code="')
            if code is not None:
                codes.setdefault(cluster, {})[int(code)] = int(number)
        elif name == "envoy_cluster_upstream_rq_active":
            active[cluster] = int(number)
        elif name == "envoy_cluster_upstream_rq_pending_active":
            pending[cluster] = int(number)
        elif name == "envoy_cluster_upstream_rq_pending_overflow":
            overflow[cluster] = int(number)
        elif name == "envoy_cluster_upstream_rq_time_sum":
            sums[cluster] = number / 1000
        elif name == "envoy_cluster_upstream_rq_time_count":
            buckets.setdefault(cluster, []).append((float("inf"), int(number)))
    clusters = {}
    for cluster in {*active, *pending, *overflow, *codes, *buckets}:
        latency = None
        if cluster in buckets:
            ordered = sorted(buckets[cluster])
            if ordered[-1][0] != float("inf"):
                raise ValueError(f"Envoy's stats: the latency of cluster {cluster!r} has buckets but no count")
            latency = Histogram(tuple(b for b, _ in ordered[:-1]), tuple(c for _, c in ordered), sums.get(cluster, 0.0))
        clusters[cluster] = Figures(active.get(cluster, 0), pending.get(cluster, 0), codes.get(cluster, {}),
                                    overflow.get(cluster, 0), latency)
    return Read(clusters, uptime)


def without_uptime(text: str) -> tuple[str, float | None]:
    """A read's text less its uptime line (which changes every second, whatever else does), and the
    uptime: what tells an unchanged read from a changed one."""
    start = text.find("envoy_server_uptime{")
    if start < 0:
        return text, None
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    try:
        uptime: float | None = float(text[start:end].rsplit(" ", 1)[1])
    except (IndexError, ValueError):
        uptime = None
    return text[:start] + text[end:], uptime


class EnvoyTotals:
    """Each cluster's counters since this router started reading, across the clusters' and Envoy's
    resets; the gauges as last read. Latency in `bounds` (the router's buckets)."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self._earlier: dict[str, Figures] = {}  # what the earlier lives of each cluster counted
        self._last: Mapping[str, Figures] = {}
        self._uptime: float | None = None

    def update(self, read: Read) -> None:
        restarted = read.uptime is not None and self._uptime is not None and read.uptime < self._uptime
        for name, before in self._last.items():
            now = read.clusters.get(name)
            if restarted or now is None or now._counts_less_than(before):
                self._earlier[name] = self._earlier[name]._plus_counts(before) if name in self._earlier else before
        self._last = {name: self._in_bounds(f) for name, f in read.clusters.items()}
        self._uptime = read.uptime if read.uptime is not None else self._uptime

    def unchanged(self, uptime: float | None) -> bool:
        """For a read whose stats are the same as the last one's: True (and its uptime kept) unless
        Envoy restarted since, in which case it must be `update`d all the same."""
        if uptime is not None and self._uptime is not None and uptime < self._uptime:
            return False
        self._uptime = uptime if uptime is not None else self._uptime
        return True

    def get(self, name: str) -> Figures | None:
        """Counters since the first read, gauges now (0 once gone); None if never seen."""
        last, earlier = self._last.get(name), self._earlier.get(name)
        if earlier is None:
            return last
        return earlier._plus_counts(last or Figures())

    def names(self) -> set[str]:
        return {*self._last, *self._earlier}

    def retain(self, names: Iterable[str]) -> None:
        """Forget the clusters not named (deployments deleted from the route table)."""
        keep = set(names)
        self._earlier = {n: f for n, f in self._earlier.items() if n in keep}

    def _in_bounds(self, figures: Figures) -> Figures:
        if figures.latency is None or figures.latency.bounds == self._bounds:
            return figures
        return Figures(figures.active, figures.pending, figures.codes, figures.overflow,
                       figures.latency.onto(self._bounds))


def _label(labels: str, key: str) -> str | None:
    """The value of `key="` in a line's labels (Envoy's: cluster names and codes have no quotes)."""
    start = labels.find(key)
    if start < 0 or (start and labels[start - 1] != ","):
        return None
    start += len(key)
    return labels[start:labels.find('"', start)]


def environment_of(snapshot: RouteSnapshot, deployment_id: str) -> str:
    """The `environment` label of a request Envoy carried to this deployment (Envoy's cluster stats
    do not say which path the client took): production if it serves production, else the first
    environment by name that it serves, "development" for the development deployment, else ""."""
    deployment = snapshot.by_deployment.get(deployment_id)
    model = snapshot.by_id.get(deployment.model_id) if deployment is not None else None
    if model is None:
        return ""
    production = model.environments.get(PRODUCTION)
    if production is not None and any(did == deployment_id for did, _ in production.split):
        return PRODUCTION
    for name in sorted(model.environments):
        if any(did == deployment_id for did, _ in model.environments[name].split):
            return name
    return DEVELOPMENT if model.development_deployment_id == deployment_id else ""
