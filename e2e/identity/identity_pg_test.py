"""Runs the identity scenarios (identity_test.py) against PostgreSQL instead of SQLite: starts a
throwaway PostgreSQL and points every node the scenarios start at a database of its own.
Usage: identity_pg_test.py <mockarty binary>"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from support import services  # noqa: E402


def main():
    services.install_signal_handlers()
    pg = services.Postgres()
    try:
        pg.start()
        env = dict(os.environ, MK_TEST_PG_DSN=pg.dsn)
        code = subprocess.run([sys.executable, os.path.join(HERE, "identity_test.py"),
                               sys.argv[1]], env=env).returncode
    finally:
        services.cleanup_all()
    sys.exit(code)


if __name__ == "__main__":
    main()
