"""`python -m hub.cli`: the same commands as the `hub` script."""

from hub.cli import main

main()
