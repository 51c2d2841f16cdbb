"""``python -m gatekeeper``: the ``gatekeeper`` command, for where the script is not on PATH."""

from gatekeeper.cli import main

if __name__ == "__main__":
    main()
