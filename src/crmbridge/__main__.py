"""``python -m crmbridge`` is the ``crmbridge`` command."""

from crmbridge.cli import main

if __name__ == "__main__":  # not when a worker process (spawn) imports this module again
    main()
