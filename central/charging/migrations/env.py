from central.charging.tables import metadata
from central.db import run_migrations

run_migrations(metadata)
