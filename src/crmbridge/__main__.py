"""``python -m crmbridge`` is the ``crmbridge`` command."""

from crmbridge.cli import main

main()
