"""The `tfface` command line."""
