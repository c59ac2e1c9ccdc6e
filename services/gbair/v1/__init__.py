"""Generated from protos/gbair/v1 by scripts/generate_protos.py; do not edit."""
