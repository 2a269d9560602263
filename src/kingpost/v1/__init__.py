"""Generated from protos/kingpost/v1 by scripts/gen_protos.py. Do not edit."""
