"""BentoML's no-op model for bench/router_throughput.py --peers bentoml, served by `bentoml serve`:

    cd bench/peers && bentoml serve bentoml_noop:Noop --host 127.0.0.1 --port PORT

One worker, one API at the bench's predict path that echoes the JSON body ({"text": ...}); BentoML
parses and validates it as a typed field, as a BentoML user's service would.
"""

from __future__ import annotations

import bentoml

ROUTE = "/models/mdl_bench/development/predict"


@bentoml.service(workers=1)
class Noop:
    @bentoml.api(route=ROUTE)
    async def predict(self, text: str) -> dict[str, str]:
        return {"text": text}
