"""`python -m nexus` runs the server."""

from nexus.server.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
