"""The database: tables, the adapter every SQL statement goes through, history series from the rollups."""
