from central.charging.tables import metadata
from central.infra.db import run_migrations

run_migrations(metadata)
