-- One database per part of central (each owns its tables, never reads another's):
-- the names EVPARK_CENTRAL_DATABASE_URL's {service} becomes. The postgres image runs
-- this once, as POSTGRES_USER (evpark), on an empty data volume.
CREATE DATABASE evpark_gateway;
CREATE DATABASE evpark_parking;
CREATE DATABASE evpark_charging;
CREATE DATABASE evpark_notification;
CREATE DATABASE evpark_analytics;
CREATE DATABASE evpark_sync;
