"""`python -m edge ...` is the `evpark` command."""

from edge.cli import main

main()
