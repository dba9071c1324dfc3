"""`python -m nexus.client` runs the terminal client, like `nexus-chat`."""

from nexus.client.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
