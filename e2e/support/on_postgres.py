#!/usr/bin/python3
"""Runs an e2e script against PostgreSQL instead of SQLite: starts a throwaway PostgreSQL and
passes its DSN as MK_TEST_PG_DSN, which admin/mockarty_proc.py turns into a database of its own
for every node the script starts.
Usage: on_postgres.py SCRIPT ARG...   (exits with the script's exit code)"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from support import services  # noqa: E402


def main():
    services.install_signal_handlers()
    pg = services.Postgres()
    try:
        pg.start()
        env = dict(os.environ, MK_TEST_PG_DSN=pg.dsn)
        code = subprocess.run([sys.executable] + sys.argv[1:], env=env).returncode
    finally:
        services.cleanup_all()
    sys.exit(code)


if __name__ == "__main__":
    main()
