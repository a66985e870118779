"""`python -m durable_jobs`: the `jobs` command."""

from durable_jobs._cli import main

main()
