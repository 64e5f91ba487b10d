"""`python -m evpark ...` is the `evpark` command."""

from evpark.cli import main

main()
