-- Runs once, on the first start of the compose postgres container (empty data volume).
-- One server, two databases: each service owns its own.
CREATE DATABASE orders OWNER valerix;
CREATE DATABASE inventory OWNER valerix;
