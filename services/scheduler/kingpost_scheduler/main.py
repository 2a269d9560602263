"""`kingpost scheduler --config FILE`: the scheduler as a process."""

from __future__ import annotations

import pathlib

from kingpost import service
from kingpost.unparsable import UnparsableRequestInterceptor
from kingpost_scheduler import app
from kingpost_scheduler.settings import SchedulerSettings


def main(config: pathlib.Path | None) -> None:
    settings = SchedulerSettings.load(config)
    service.configure("scheduler", settings)
    service.setup_tracing("scheduler")

    async def run() -> None:
        scheduler = await app.create(settings)
        await service.serve(
            name="scheduler", settings=settings, register=scheduler.register,
            # The management API's JSON, transcoded by Envoy, can make a request protobuf refuses: 400.
            interceptors=[UnparsableRequestInterceptor(), scheduler.interceptor],
            loops=[scheduler.control.run, scheduler.management.router_metrics.run], on_stop=scheduler.close,
        )

    service.run(run)


if __name__ == "__main__":
    import sys

    main(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else None)
