"""Shared infrastructure: database, servers, environments, processes, statistics, files."""
