"""`python -m runner`: train one variant, or `python -m runner -m ...` to sweep."""

from runner.app import cli

if __name__ == "__main__":
    cli()
