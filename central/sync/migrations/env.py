from central.infra.db import run_migrations
from central.sync.tables import metadata

run_migrations(metadata)
