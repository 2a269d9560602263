"""The builder's Prometheus metrics, all in one place."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

BUILDS = Counter(
    "kingpost_builder_builds_total", "Builds by outcome (rejected: refused before a build began).", ["state"]
)
BUILD_SECONDS = Histogram(
    "kingpost_builder_build_seconds", "From the first upload byte to the build's answer.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
UPLOAD_BYTES = Histogram(
    "kingpost_builder_upload_bytes", "Size of uploaded source archives.",
    buckets=tuple(float(1 << n) for n in range(10, 31, 2)),
)
