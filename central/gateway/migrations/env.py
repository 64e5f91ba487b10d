from central.db import run_migrations
from central.gateway.tables import metadata

run_migrations(metadata)
