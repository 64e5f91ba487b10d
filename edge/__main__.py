"""`python -m edge run --config FILE` runs the daemon without the rest of the product."""

from edge.cli import edge_app

edge_app()
