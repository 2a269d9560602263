"""Other serving frameworks' no-op models, for bench/router_throughput.py --peers (see manage.py)."""
