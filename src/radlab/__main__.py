"""`python -m radlab` is the `radlab` command."""

from radlab.cli import main

main()
