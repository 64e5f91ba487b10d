from central.infra.db import run_migrations
from central.parking.tables import metadata

run_migrations(metadata)
