from central.db import run_migrations
from central.parking.tables import metadata

run_migrations(metadata)
