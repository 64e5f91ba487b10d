from central.infra.db import run_migrations
from central.notification.tables import metadata

run_migrations(metadata)
